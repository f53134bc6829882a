"""Scripted driver-state video: per protocol state, sequences of frames at a camera rate rendered by the synthetic
generator, with the ground truth (each frame's state, the onset the warning time is measured from).

A script is a list of segments (state, seconds, where the eyes go). Each sequence pins one combination of the
test matrix (lighting, eyewear, occlusion, skin type, eyelid aperture) through a synthetic.Look; gaze locations
alternate owl (head turns) and lizard (eyes only). Every frame is its own render, so the scene varies frame to
frame and a network's errors are uncorrelated in time; a user recording (recording.py) tests real video.
"""
from __future__ import annotations

import dataclasses
import io
import sys
from dataclasses import dataclass, field

import numpy as np

from harness.cache import cache_root, content_key, source_sha256
from harness.data import synthetic
from harness.data.synthetic import ATTENTIVE, CLASSES, EYES_CLOSED, LOOKING_AWAY, PHONE_USE, YAWNING, Look
from harness.scenarios.decision import DecisionLayer, Output
from harness.scenarios.protocol import Protocol

DEFAULT_FPS = 30.0
DEFAULT_SIZE = 64
SEED = 20261201

# The matrix (Euro NCAP SD 3.5: 1 to 100,000 lux, clear glasses and sunglasses, mask and hat, Fitzpatrick 1-6,
# eyelid aperture 6-14 mm). Lighting levels are brightness gains of the renderer, labelled with the lux they stand
# for; there is no photometric model behind them.
LIGHTING = {"1 lux (night, IR)": (0.55, True), "100 lux (dusk)": (0.7, False), "10,000 lux (day)": (1.0, False),
            "100,000 lux (direct sun)": (1.35, False)}
EYEWEAR = ("none", "clear", "sunglasses")
OCCLUSION = ("none", "mask", "hat")
SKIN_TYPES = (1, 2, 3, 4, 5, 6)  # Fitzpatrick
APERTURE_MM = (6, 8, 10, 12, 14)
# Gaze locations the renderer can draw: owl turns the head 45-64 degrees, lizard moves only the eyes.
GAZE = {"left (owl)": (0.52, None), "right (owl)": (-0.52, None), "left (lizard)": (0.03, 2.0),
        "right (lizard)": (-0.03, -2.0)}


@dataclass(frozen=True)
class Segment:
    state: int  # index into synthetic.CLASSES
    seconds: float
    gaze: str | None = None  # a GAZE key for looking_away


@dataclass(frozen=True)
class Conditions:
    """One cell of the test matrix."""

    lighting: str = "10,000 lux (day)"
    eyewear: str = "none"
    occlusion: str = "none"
    skin_type: int = 3
    aperture_mm: int = 10

    def describe(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != f.default]
        return ", ".join(changed) or "nominal"

    def look(self) -> Look:
        exposure, infrared = LIGHTING[self.lighting]
        return Look(skin=(self.skin_type - 1) / 5, openness=self.aperture_mm / 10, eyewear=self.eyewear,
                    mask=self.occlusion == "mask", hat=self.occlusion == "hat", exposure=exposure, infrared=infrared)


@dataclass(frozen=True)
class Sequence:
    """A scripted sequence: what it tests, its frames' ground truth and (for a state that must warn) its onset."""

    state: str
    index: int
    segments: tuple[Segment, ...]
    conditions: Conditions | None  # None: a recording, whose conditions the harness does not know
    fps: float = DEFAULT_FPS
    size: int = DEFAULT_SIZE
    onset_s: float | None = None
    labels: tuple[int, ...] = field(default=(), repr=False)

    @property
    def name(self) -> str:
        return f"{self.state}#{self.index}"

    @property
    def seconds(self) -> float:
        return len(self.labels) / self.fps

    @property
    def gazes(self) -> tuple[str, ...]:
        return tuple(sorted({s.gaze for s in self.segments if s.gaze}))


# One factor at a time: sequence 0 of every state is the nominal driver, each next one changes one dimension, so a
# failure names the condition that caused it; 12 sequences cover every level the matrix lists, then it repeats.
VARIATIONS: tuple[dict[str, str | int], ...] = (
    {}, {"lighting": "1 lux (night, IR)"}, {"eyewear": "sunglasses"}, {"occlusion": "mask"}, {"skin_type": 6},
    {"aperture_mm": 6}, {"occlusion": "hat"}, {"lighting": "100,000 lux (direct sun)"}, {"eyewear": "clear"},
    {"skin_type": 1}, {"aperture_mm": 14}, {"lighting": "100 lux (dusk)"}, {"skin_type": 2}, {"skin_type": 4},
    {"skin_type": 5}, {"aperture_mm": 8}, {"aperture_mm": 12})


def conditions_for(index: int) -> Conditions:
    """Sequence `index`'s matrix cell (VARIATIONS)."""
    return dataclasses.replace(Conditions(), **VARIATIONS[index % len(VARIATIONS)])


def _gaze(index: int) -> str:
    """Owl left, owl right, lizard left, lizard right, in turn."""
    return list(GAZE)[index % len(GAZE)]


def _attentive_with_blinks(rng: np.random.Generator, seconds: float, mirror_checks: bool = False,
                           yawns: bool = False) -> list[Segment]:
    """Eyes on the road with blinks of 100-400 ms every 2-5 s; optionally mirror checks (0.5-1.0 s glances,
    too short and too far apart for any distraction rule) and yawns (2-4 s)."""
    segments, t = [], 0.0
    while t < seconds:
        gap = rng.uniform(2.0, 5.0)
        segments.append(Segment(ATTENTIVE, gap))
        event = rng.random()
        if mirror_checks and event < 0.3:
            side = "left (owl)" if event < 0.15 else "right (owl)"
            segments.append(Segment(LOOKING_AWAY, rng.uniform(0.5, 1.0), side))
            segments.append(Segment(ATTENTIVE, rng.uniform(2.5, 4.0)))  # past the VATS reset
        elif yawns and event < 0.4:
            segments.append(Segment(YAWNING, rng.uniform(2.0, 4.0)))
        else:
            segments.append(Segment(EYES_CLOSED, rng.uniform(0.1, 0.4)))
        t += sum(s.seconds for s in segments[-2:])
    return segments


def _glances(rng: np.random.Generator, state: int, gaze: str | None, count: int, away: tuple[float, float],
             road: tuple[float, float]) -> list[Segment]:
    out = []
    for _ in range(count):
        out += [Segment(state, rng.uniform(*away), gaze), Segment(ATTENTIVE, rng.uniform(*road))]
    return out


def script(state: str, index: int, rng: np.random.Generator) -> list[Segment]:
    """The segments of sequence `index` of `state`; a state with no script is an error naming the known ones."""
    lead = [Segment(ATTENTIVE, rng.uniform(1.5, 2.5))]
    gaze = _gaze(index)
    if state == "long_distraction":
        return lead + [Segment(LOOKING_AWAY, rng.uniform(4.0, 5.0), gaze), Segment(ATTENTIVE, 2.0)]
    if state == "vats":  # glances of 1.5-2.2 s with 0.4-1.5 s on the road: 10 s within about 17 s
        return lead + _glances(rng, LOOKING_AWAY, gaze, 7, (1.5, 2.2), (0.4, 1.5)) + [Segment(ATTENTIVE, 2.0)]
    if state == "phone_use":  # glances at the phone (held in view, at the ear)
        return lead + _glances(rng, PHONE_USE, None, 7, (1.5, 2.2), (0.4, 1.5)) + [Segment(ATTENTIVE, 2.0)]
    if state == "vats_reset":
        pattern = index % 3
        if pattern == 0:  # 8 s of glances, a 2.5-3 s reset, 8 s more: never 10 s without a reset
            block = _glances(rng, LOOKING_AWAY, gaze, 4, (1.8, 2.0), (0.4, 0.8))
            return lead + block + [Segment(ATTENTIVE, rng.uniform(2.5, 3.0))] + _glances(
                rng, LOOKING_AWAY, gaze, 4, (1.8, 2.0), (0.4, 0.8)) + [Segment(ATTENTIVE, 2.0)]
        if pattern == 1:  # 1 s glances every 3-4 s: each return is a reset
            return lead + _glances(rng, LOOKING_AWAY, gaze, 8, (0.8, 1.2), (2.3, 3.0))
        return lead + _glances(rng, LOOKING_AWAY, gaze, 4, (1.8, 2.1), (0.5, 1.0)) + [Segment(ATTENTIVE, 8.0)]
    if state == "microsleep":
        return lead + [Segment(EYES_CLOSED, rng.uniform(1.3, 2.5)), Segment(ATTENTIVE, 3.5)]
    if state == "sleep":
        return lead + [Segment(EYES_CLOSED, rng.uniform(4.5, 5.5)), Segment(ATTENTIVE, 2.0)]
    if state == "unresponsive":  # away or eyes closed for 8 s
        away = Segment(LOOKING_AWAY, 8.0, gaze) if index % 2 == 0 else Segment(EYES_CLOSED, 8.0)
        return lead + [away, Segment(ATTENTIVE, 1.0)]
    if state == "drowsiness":  # long slow blinks, 0.45-0.7 s every 1.5-2.5 s: PERCLOS about 0.25
        segments = []
        while sum(s.seconds for s in segments) < 75.0:
            segments += [Segment(ATTENTIVE, rng.uniform(1.5, 2.5)), Segment(EYES_CLOSED, rng.uniform(0.45, 0.7))]
        return segments
    if state == "blinks":
        return _attentive_with_blinks(rng, 20.0)
    if state == "normal_driving":
        return _attentive_with_blinks(rng, 60.0, mirror_checks=True, yawns=True)
    raise ValueError(f"no script for state {state!r}; known: {', '.join(SCRIPTED)}")


SCRIPTED = ("long_distraction", "vats", "phone_use", "vats_reset", "microsleep", "sleep", "unresponsive", "drowsiness",
            "blinks", "normal_driving")


def frame_segments(segments: tuple[Segment, ...] | list[Segment], fps: float) -> list[Segment]:
    """The segment each frame falls in: frame i is captured at i / fps."""
    ends = np.cumsum([s.seconds for s in segments])
    times = np.arange(int(ends[-1] * fps)) / fps
    return [segments[int(np.searchsorted(ends, t, side="right"))] for t in times]


def build(state: str, index: int, protocol: Protocol, fps: float = DEFAULT_FPS, size: int = DEFAULT_SIZE) -> Sequence:
    """Sequence `index` of `state`, its ground truth and onset (no frames rendered yet)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(SEED,
                                                                     spawn_key=(SCRIPTED.index(state), index))))
    segments = script(state, index, rng)
    labels = [segment.state for segment in frame_segments(segments, fps)]
    sequence = Sequence(state, index, tuple(segments), conditions_for(index), fps, size, labels=tuple(labels))
    return with_onset(sequence, protocol) if protocol.states[state].must_warn else sequence


def with_onset(sequence: Sequence, protocol: Protocol) -> Sequence:
    return dataclasses.replace(sequence, onset_s=onset(sequence, protocol.states[sequence.state].alerts, protocol))


def onset(sequence: Sequence, alerts: tuple[str, ...], protocol: Protocol) -> float:
    """What the warning time is measured from. A timer state (a glance, a closure) starts with its first frame;
    a state defined over a window (VATS, PERCLOS) starts when the rule, run on the ground truth with no
    processing time and the protocol's criteria, is first met."""
    fps, labels = sequence.fps, sequence.labels
    if alerts[0] in ("vats", "drowsiness"):
        layer = DecisionLayer(protocol.criteria)
        layer.run(Output(i / fps, i / fps, CLASSES[label]) for i, label in enumerate(labels))
        met = [a.at_s for a in layer.alerts if a.kind in alerts]
        if not met:
            raise ValueError(f"{sequence.name}: its script never meets the {alerts[0]} criterion")
        return met[0]
    return next(i for i, label in enumerate(labels) if label != ATTENTIVE) / fps


def frames(sequence: Sequence) -> np.ndarray:
    """The sequence's frames [n, size, size, 3] uint8, rendered once and cached by content."""
    key = content_key("scenario-frames", sequence, SEED, source_sha256(synthetic, sys.modules[__name__]))
    path = cache_root() / "scenarios" / f"{key[:32]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return stored["frames"]
    look = sequence.conditions.look()
    images = np.empty((len(sequence.labels), sequence.size, sequence.size, 3), dtype=np.uint8)
    for i, segment in enumerate(frame_segments(sequence.segments, sequence.fps)):
        yaw, gaze = GAZE[segment.gaze] if segment.gaze else (None, None)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            SEED, spawn_key=(SCRIPTED.index(sequence.state), sequence.index, i, 1))))
        images[i] = synthetic.render_sample(segment.state, rng, sequence.size,
                                            dataclasses.replace(look, yaw=yaw, gaze=gaze))
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, frames=images)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(buffer.getvalue())
    temporary.replace(path)  # atomic: a parallel worker never reads half a file
    return images


def sequences(protocol: Protocol, runs: int, fps: float = DEFAULT_FPS,
              size: int = DEFAULT_SIZE) -> dict[str, list[Sequence]]:
    """`runs` sequences of every scripted state the protocol names."""
    return {state: [build(state, i, protocol, fps, size) for i in range(runs)]
            for state in protocol.states if state in SCRIPTED}

