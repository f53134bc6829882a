"""A user's recording as a scenario: a folder of frames with per-frame ground truth, played through the same path
as the scripted sequences.

    RECORDING/scenario.yaml    state: long_distraction   (a protocol state), fps: 30 (optional)
    RECORDING/frames/*.png     the frames in name order (.png, .jpg)
    RECORDING/labels.csv       frame,state  (one row per frame; state one of synthetic.CLASSES), or
    RECORDING/annotations.json OpenLABEL/VCD actions as the Driver Monitoring Dataset writes them (read with `vcd`)
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from harness.data.dataset import IMAGE_SUFFIXES, read_rgb
from harness.data.synthetic import ATTENTIVE, CLASSES, EYES_CLOSED, LOOKING_AWAY, PHONE_USE, YAWNING
from harness.errors import NcapError
from harness.files import read_text
from harness.scenarios import sequences as scripted
from harness.scenarios.protocol import Protocol

OPTION = "--ncap-scenario-recording"
# OpenLABEL action types of the Driver Monitoring Dataset (DMD) -> driver state, the first match winning
# (eyes closed outranks a phone, which outranks a glance away)
DMD_ACTIONS = (("eyes_state/close", EYES_CLOSED), ("driver_actions/phonecall", PHONE_USE),
               ("driver_actions/texting", PHONE_USE), ("gaze_on_road/not_looking_road", LOOKING_AWAY),
               ("yawning/yawning", YAWNING))


@dataclass(frozen=True)
class Recording:
    folder: Path
    sequence: scripted.Sequence
    paths: tuple[Path, ...]

    def frames(self) -> np.ndarray:
        images = [read_rgb(path) for path in self.paths]
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise NcapError(f"{self.folder}/frames: frames differ in size ({sorted(shapes)[:2]}); give one size")
        return np.stack(images)


def load_recording(folder: Path, protocol: Protocol, default_fps: float) -> Recording:
    """The recording in `folder`; a missing or malformed part is an NcapError naming it and the fix."""
    meta = _meta(folder)
    state, fps = meta.get("state"), meta.get("fps", default_fps)
    if state not in protocol.states:
        raise NcapError(f"{folder}/scenario.yaml: state {state!r} is not a protocol state; known: "
                        f"{', '.join(protocol.states)}")
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not np.isfinite(fps) or fps <= 0:
        raise NcapError(f"{folder}/scenario.yaml: fps {fps!r} is not a positive number; give e.g. 30")
    paths = tuple(sorted(p for p in (folder / "frames").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
    if not paths:
        raise NcapError(f"{folder}/frames holds no .png or .jpg frames; put the recording's frames there ({OPTION})")
    if (folder / "labels.csv").is_file():
        labels = _csv_labels(folder / "labels.csv", len(paths))
    elif (folder / "annotations.json").is_file():
        labels = vcd_labels(folder / "annotations.json", len(paths))
    else:
        raise NcapError(f"{folder} has neither labels.csv nor annotations.json (OpenLABEL); add one ({OPTION})")
    segments = _segments(labels, fps)
    sequence = scripted.Sequence(state, 0, segments, None, float(fps), 0, labels=tuple(labels))
    expected = protocol.states[state]
    if expected.must_warn:
        if all(label == ATTENTIVE for label in labels):
            raise NcapError(f"{folder}: the labels show no {state} (every frame attentive); check the labels")
        try:
            sequence = scripted.with_onset(sequence, protocol)
        except ValueError as exc:
            raise NcapError(f"{folder}: {exc}; check the labels against the state") from exc
    return Recording(folder, sequence, paths)


def _meta(folder: Path) -> dict:
    path = folder / "scenario.yaml"
    if not folder.is_dir():
        raise NcapError(f"{OPTION} {folder} is not a folder")
    try:
        meta = yaml.safe_load(read_text(path, "recording description", OPTION)) or {}
    except yaml.YAMLError as exc:
        raise NcapError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the syntax") from exc
    if not isinstance(meta, dict):
        raise NcapError(f"{path}: give a mapping such as `state: long_distraction` and `fps: 30`")
    return meta


def _csv_labels(path: Path, frames: int) -> list[int]:
    rows = list(csv.DictReader(read_text(path, "labels file", OPTION).splitlines()))
    if not rows or not {"frame", "state"} <= set(rows[0]):
        raise NcapError(f"{path}: needs the columns frame,state (one row per frame)")
    labels: dict[int, int] = {}
    for line, row in enumerate(rows, start=2):
        if row["state"] not in CLASSES:
            raise NcapError(f"{path} line {line}: state {row['state']!r} is not one of {', '.join(CLASSES)}")
        try:
            labels[int(row["frame"])] = CLASSES.index(row["state"])
        except ValueError as exc:
            raise NcapError(f"{path} line {line}: frame {row['frame']!r} is not a frame number") from exc
    if sorted(labels) != list(range(frames)):
        raise NcapError(f"{path}: labels cover frames {min(labels)}..{max(labels)} ({len(labels)} rows) but the "
                        f"recording has {frames} frames (0..{frames - 1}); label every frame once")
    return [labels[i] for i in range(frames)]


def vcd_labels(path: Path, frames: int) -> list[int]:
    """Per-frame states from an OpenLABEL/VCD file's actions (DMD_ACTIONS); frames no action covers are
    attentive."""
    try:
        from vcd import core
    except ImportError as exc:
        raise NcapError("reading OpenLABEL annotations needs the `vcd` package: pip install 'dms-ncap[scenarios]'") \
            from exc
    document = core.VCD()
    try:
        document.load_from_file(str(path))
    except Exception as exc:  # the vcd package raises bare exceptions on malformed files
        raise NcapError(f"{path} is not an OpenLABEL/VCD file the vcd package reads ({type(exc).__name__}); "
                        "fix or re-export it") from exc
    labels = [ATTENTIVE] * frames
    rank = {state: i for i, (_, state) in enumerate(DMD_ACTIONS)}
    for action in (document.get_actions() or {}).values():
        kind = str(action.get("type", "")).lower()
        state = next((s for prefix, s in DMD_ACTIONS if kind.startswith(prefix)), None)
        if state is None:
            continue
        for interval in action.get("frame_intervals", []):
            for frame in range(interval["frame_start"], min(interval["frame_end"], frames - 1) + 1):
                if labels[frame] == ATTENTIVE or rank[state] < rank.get(labels[frame], len(rank)):
                    labels[frame] = state
    return labels


def _segments(labels: list[int], fps: float) -> tuple[scripted.Segment, ...]:
    """Runs of equal states as segments (what the coverage and the onset read)."""
    segments, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            segments.append(scripted.Segment(labels[start], (i - start) / fps))
            start = i
    return tuple(segments)
