"""The scenario layer's own tests: each decision rule fires where the protocol says and stays quiet where it must,
a stub network with a fixed latency gives the warning time computed by hand, frames are dropped while busy, the
judge claims only what N runs show, and a user's recording (labels.csv and OpenLABEL) plays the same path."""
from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cell import Cell
from harness.data.synthetic import ATTENTIVE, CLASSES, EYES_CLOSED, LOOKING_AWAY
from harness.errors import NcapError
from harness.scenarios import sequences as scripted
from harness.scenarios.decision import DecisionLayer, Output
from harness.scenarios.judge import judge_state, quantile_bounded_by_max, rate_bounds, share_bounds
from harness.scenarios.plan import ScenarioPlan
from harness.scenarios.play import play
from harness.scenarios.protocol import load_protocol
from harness.scenarios.recording import load_recording
from harness.scenarios.run import scenario_records
from harness.scenarios.timing import Latency, schedule

FPS = 30.0
PROTOCOL = load_protocol()


def alerts_for(script: list[tuple[str, float]], fps: float = FPS, latency_s: float = 0.0, protocol=PROTOCOL):
    """Alerts of the decision layer on a perfectly classified script [(state, seconds)], every frame processed."""
    labels = [scripted.Segment(CLASSES.index(state), seconds) for state, seconds in script]
    frames = scripted.frame_segments(labels, fps)
    layer = DecisionLayer(protocol.decision)
    return [(a.kind, a.at_s) for a in layer.run(
        Output(i / fps, i / fps + latency_s, CLASSES[s.state]) for i, s in enumerate(frames))]


def kinds(alerts) -> list[str]:
    return [kind for kind, _ in alerts]


# --- decision rules: each fires, and each stays quiet where the protocol says it must -----------------------------

def test_long_distraction_fires_after_its_threshold_and_not_before():
    assert kinds(alerts_for([("attentive", 1), ("looking_away", 2.6), ("attentive", 2)])) == ["distraction"]
    assert alerts_for([("attentive", 1), ("looking_away", 2.3), ("attentive", 2)]) == []


def test_one_wrong_frame_restarts_a_glance_unless_the_filter_bridges_it(tmp_path):
    glance = [("attentive", 1), ("looking_away", 1.5), ("attentive", 1 / FPS), ("looking_away", 1.5),
              ("attentive", 2)]
    assert alerts_for(glance) == []  # no filter (the default): 1.5 s + 1.5 s, neither reaches 2.5 s
    oem = tmp_path / "oem.yaml"
    oem.write_text("decision: {state_gap_s: 0.1}\n")
    filtered = load_protocol(oem)
    assert kinds(alerts_for(glance, protocol=filtered)) == ["distraction"]
    two_glances = [("attentive", 1), ("looking_away", 2.0), ("attentive", 0.5), ("looking_away", 2.0),
                   ("attentive", 2)]
    assert alerts_for(two_glances, protocol=filtered) == []  # a real return of 0.5 s still ends a glance


@pytest.mark.parametrize("blink_s", [0.1, 0.25, 0.4])
def test_a_blink_does_not_alert(blink_s):
    script = [("attentive", 2), ("eyes_closed", blink_s)] * 10 + [("attentive", 2)]
    assert alerts_for(script) == []


def test_an_eye_closure_is_a_microsleep_then_a_sleep():
    assert kinds(alerts_for([("attentive", 1), ("eyes_closed", 1.5), ("attentive", 2)])) == ["microsleep"]
    assert kinds(alerts_for([("attentive", 1), ("eyes_closed", 3.4), ("attentive", 2)]))[:2] == ["microsleep", "sleep"]


def test_vats_fires_at_ten_seconds_within_thirty():
    script = [("attentive", 1)] + [("looking_away", 2.0), ("attentive", 1.0)] * 6
    alerts = alerts_for(script)
    assert kinds(alerts) == ["vats"]
    # glances at 1-3, 4-6, 7-9, 10-12 and from 13 s, each return adding the 0.1 s adaptation: 4 x 2.1 = 8.4 s by
    # 13 s, so 10 s is reached 1.6 s into the 5th glance, at 14.6 s
    assert alerts[0][1] == pytest.approx(14.6, abs=1 / FPS)


def test_two_seconds_back_on_the_road_resets_vats():
    glances = [("looking_away", 2.0), ("attentive", 1.0)] * 4
    with_reset = [("attentive", 1)] + glances + [("attentive", 1.5)] + glances
    assert alerts_for(with_reset) == []
    without_reset = [("attentive", 1)] + glances + [("attentive", 0.5)] + glances
    assert kinds(alerts_for(without_reset)) == ["vats"]


def test_unresponsive_after_six_seconds_away_or_no_return_after_a_warning():
    away = alerts_for([("attentive", 1), ("looking_away", 7), ("attentive", 1)])
    assert kinds(away) == ["distraction", "unresponsive"]
    # no return within 3 s of the distraction warning at 2.5 s: unresponsive at 5.5 s into the glance
    assert away[1][1] == pytest.approx(1 + 5.5, abs=1 / FPS)
    assert "unresponsive" not in kinds(alerts_for([("attentive", 1), ("looking_away", 4), ("attentive", 3)]))


def test_perclos_over_the_window_is_drowsiness():
    drowsy = [("attentive", 1.5), ("eyes_closed", 0.5)] * 40  # 25 % closed
    assert "drowsiness" in kinds(alerts_for(drowsy))
    alert = [("attentive", 3.5), ("eyes_closed", 0.3)] * 25  # 8 % closed
    assert alerts_for(alert) == []


def test_normal_driving_scripts_do_not_alert_on_their_ground_truth():
    for sequence in scripted.sequences(PROTOCOL, 3)["normal_driving"]:
        layer = DecisionLayer(PROTOCOL.decision)
        assert layer.run(Output(i / FPS, i / FPS, CLASSES[x]) for i, x in enumerate(sequence.labels)) == []


# --- timing: frames dropped while the network is busy --------------------------------------------------------------

def test_a_frame_arriving_while_busy_is_dropped():
    rng = np.random.default_rng(0)
    fast = schedule(30, FPS, Latency(np.array([20.0]), "host-measured", "test"), rng)
    assert fast.dropped == 0 and fast.done_s[3] == pytest.approx(3 / FPS + 0.020)
    slow = schedule(30, FPS, Latency(np.array([50.0]), "host-measured", "test"), rng)
    assert list(slow.processed[:4]) == [0, 2, 4, 6] and slow.dropped == 15


def test_latency_must_be_finite_and_positive():
    for bad in ([], [float("nan")], [0.0], [-1.0]):
        with pytest.raises(NcapError, match="finite positive"):
            Latency(np.array(bad), "host-measured", "test")


# --- the known answer: a stub network and a fixed latency give a warning time computed by hand -----------------

class Truthful:
    """A stand-in network whose output is known exactly: the ground truth of the sequence it is given."""

    def __init__(self, sequence: scripted.Sequence, wrong_from_s: float | None = None, wrong: str = "attentive"):
        self.sequence, self.wrong_from_s, self.wrong = sequence, wrong_from_s, wrong

    def __call__(self, frames: np.ndarray) -> list[str]:
        return [self.wrong if self.wrong_from_s is not None and i / FPS >= self.wrong_from_s
                else CLASSES[self.sequence.labels[i]] for i in frames[:, 0, 0, 0].astype(int)]


def indexed_frames(sequence: scripted.Sequence) -> np.ndarray:
    """Frames that carry their own index (the stub reads it back), so no rendering is needed."""
    frames = np.zeros((len(sequence.labels), 1, 1, 3), dtype=np.int64)
    frames[:, 0, 0, 0] = np.arange(len(sequence.labels))
    return frames


def long_glance(seconds_before: float = 2.0) -> scripted.Sequence:
    segments = (scripted.Segment(ATTENTIVE, seconds_before), scripted.Segment(LOOKING_AWAY, 5.0, "left (owl)"),
                scripted.Segment(ATTENTIVE, 2.0))
    labels = tuple(s.state for s in scripted.frame_segments(segments, FPS))
    sequence = scripted.Sequence("long_distraction", 0, segments, scripted.Conditions(), FPS, 64, labels=labels)
    return scripted.with_onset(sequence, PROTOCOL)


@pytest.mark.parametrize("latency_ms", [20.0, 50.0, 120.0])
def test_known_answer_warning_time(latency_ms):
    """By hand: the glance starts at frame 60 (2.0 s) and the decision threshold is 2.5 s. With 20 ms every frame
    runs: frame 135 (4.5 s) is the first 2.5 s into the glance, ready 20 ms later: 2.5 + 0.020 = 2.520 s. With 50 ms
    every other frame runs (0, 2, 4, ...): frame 135 is dropped, frame 136 (4.533 s) warns: 2.533 + 0.050 s. With
    120 ms every 4th frame runs (0, 4, ..., 60, ..., 136): 2.533 + 0.120 s."""
    by_hand = {20.0: 2.520, 50.0: 2.5 + 1 / FPS + 0.050, 120.0: 2.5 + 1 / FPS + 0.120}[latency_ms]
    sequence = long_glance()
    played = play(sequence, indexed_frames(sequence), Truthful(sequence),
                  Latency(np.array([latency_ms]), "host-measured", "fixed"), PROTOCOL, np.random.default_rng(0))
    assert sequence.onset_s == pytest.approx(2.0)
    assert played.warning_s == pytest.approx(by_hand, abs=1 / FPS)  # the tolerance: one frame
    assert played.warning_s == pytest.approx(by_hand, abs=1e-9)  # and in fact exactly
    assert played.on_time and played.correct == played.frames - played.dropped


def test_known_answer_fails_when_the_network_stops_seeing_the_glance():
    sequence = long_glance()
    played = play(sequence, indexed_frames(sequence), Truthful(sequence, wrong_from_s=3.0),
                  Latency(np.array([20.0]), "host-measured", "fixed"), PROTOCOL, np.random.default_rng(0))
    assert played.warning_s is None and not played.on_time


def test_too_slow_a_network_warns_late():
    sequence = long_glance()
    played = play(sequence, indexed_frames(sequence), Truthful(sequence),
                  Latency(np.array([600.0]), "projected", "fixed"), PROTOCOL, np.random.default_rng(0))
    assert played.warning_s > PROTOCOL.states["long_distraction"].warn_within_s and not played.on_time


# --- judging: only what N runs can show ---------------------------------------------------------------------------

def test_share_and_rate_bounds():
    assert share_bounds(5, 5, 0.95)[0] == pytest.approx(0.05 ** (1 / 5))
    assert share_bounds(59, 59, 0.95)[0] >= 0.95 > share_bounds(58, 58, 0.95)[0]
    assert share_bounds(0, 5, 0.95)[1] == pytest.approx(1 - 0.05 ** (1 / 5))
    assert rate_bounds(0, 1.0, 0.95)[1] == pytest.approx(-np.log(0.05))  # 3.0 events/h
    assert quantile_bounded_by_max(59, 0.95) == pytest.approx(0.95, abs=0.001)


def judged(state: str, on_time: list[bool], lower_bound: bool = False):
    sequence = long_glance()
    played = [play(sequence, indexed_frames(sequence), Truthful(sequence, None if ok else 3.0),
                   Latency(np.array([20.0]), "host-measured", "fixed", lower_bound), PROTOCOL,
                   np.random.default_rng(0)) for ok in on_time]
    return judge_state(Cell("stub", "fp32", "host"), state, played, [sequence] * len(played), PROTOCOL,
                       Latency(np.array([20.0]), "host-measured", "fixed", lower_bound), "stub")


def test_judge_passes_fails_or_says_it_cannot_tell():
    assert judged("long_distraction", [True] * 59).verdict.status == "pass"
    assert judged("long_distraction", [True] * 5).verdict.status == "skip"
    assert "59 runs" in judged("long_distraction", [True] * 5).verdict.message
    assert judged("long_distraction", [False] * 3 + [True] * 2).verdict.status == "fail"
    record = judged("long_distraction", [True] * 4 + [False])
    assert record.figures["missed"] == 1 and "warning_bound_s" not in record.figures


def test_a_lower_bound_latency_never_passes():
    assert judged("long_distraction", [True] * 59, lower_bound=True).verdict.status == "skip"
    assert judged("long_distraction", [False] * 5, lower_bound=True).verdict.status == "fail"


# --- the protocol file ------------------------------------------------------------------------------------------

def test_an_oem_overrides_a_threshold(tmp_path):
    oem = tmp_path / "oem.yaml"
    oem.write_text("decision: {long_distraction_s: 3.5}\nstates: {long_distraction: {warn_within_s: 4.0}}\n")
    protocol = load_protocol(oem)
    assert protocol.decision.long_distraction_s == 3.5 and protocol.states["long_distraction"].warn_within_s == 4.0
    assert str(oem) in protocol.source
    assert alerts_for([("attentive", 1), ("looking_away", 3.0), ("attentive", 2)], protocol=protocol) == []


@pytest.mark.parametrize("text, problem", [
    ("decision: {long_distraction_s: .nan}", "long_distraction_s"),
    ("decision: {long_distraction_s: -1}", "long_distraction_s"),
    ("nonsense: 1", "unknown key"),
    ("states: {vats: {alerts: [honk]}}", "unknown alert"),
    ("- a list", "mapping"),
    ("decision: [", "not valid YAML"),
])
def test_a_bad_protocol_file_is_one_line(tmp_path, text, problem):
    path = tmp_path / "oem.yaml"
    path.write_text(text)
    with pytest.raises(NcapError, match=problem):
        load_protocol(path)


# --- a user's recording -----------------------------------------------------------------------------------------

def write_recording(folder: Path, labels: list[int], annotations: str = "csv", state: str = "long_distraction"):
    (folder / "frames").mkdir(parents=True)
    for i in range(len(labels)):
        Image.fromarray(np.full((8, 8, 3), i % 256, dtype=np.uint8)).save(folder / "frames" / f"{i:05d}.png")
    (folder / "scenario.yaml").write_text(f"state: {state}\nfps: 10\n")
    if annotations == "csv":
        with (folder / "labels.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["frame", "state"])
            writer.writerows((i, CLASSES[label]) for i, label in enumerate(labels))
    else:
        from vcd import core

        document = core.OpenLABEL()
        runs = [(i, label) for i, label in enumerate(labels) if label != ATTENTIVE]
        first, last = runs[0][0], runs[-1][0]
        kind = "gaze_on_road/not_looking_road" if runs[0][1] == LOOKING_AWAY else "eyes_state/close"
        document.add_action("driver state", semantic_type=kind, frame_value=(first, last))
        document.save(str(folder / "annotations.json"))


GLANCE = [ATTENTIVE] * 20 + [LOOKING_AWAY] * 40 + [ATTENTIVE] * 20  # 10 fps: a 4 s glance from 2.0 s


@pytest.mark.parametrize("annotations", ["csv", "openlabel"])
def test_a_recording_loads_with_its_ground_truth(tmp_path, annotations):
    write_recording(tmp_path / "rec", GLANCE, annotations)
    recording = load_recording(tmp_path / "rec", PROTOCOL, 30.0)
    assert recording.sequence.labels == tuple(GLANCE) and recording.sequence.fps == 10
    assert recording.sequence.onset_s == pytest.approx(2.0) and recording.frames().shape == (80, 8, 8, 3)


def test_a_recording_plays_the_same_path(tmp_path):
    write_recording(tmp_path / "rec", GLANCE, "openlabel")
    sequence = load_recording(tmp_path / "rec", PROTOCOL, 30.0).sequence

    @contextlib.contextmanager
    def stub():
        yield lambda frames: [CLASSES[sequence.labels[int(f[0, 0, 0])]] for f in frames]

    plan = ScenarioPlan(runs=1, recordings=(tmp_path / "rec",))
    protocol = load_protocol()
    # only the recording: the scripted states are left to the suite (rendering them is slow)
    protocol = protocol.model_copy(update={"states": {"long_distraction": protocol.states["long_distraction"]}})
    import harness.scenarios.run as run

    original = run.scripted.sequences
    run.scripted.sequences = lambda *args, **kwargs: {}
    try:
        records = scenario_records(Cell("stub", "fp32", "host"), protocol, plan, stub,
                                   Latency(np.array([20.0]), "host-measured", "fixed"), "stub", lambda _: None)
    finally:
        run.scripted.sequences = original
    record = records["long_distraction (rec)"]
    # 10 fps: the first frame >= 2.5 s into the glance is at 4.5 s; +20 ms
    assert record.figures["warning_s"] == [pytest.approx(2.52)] and record.figures["recording"].endswith("rec")


@pytest.mark.parametrize("break_it, problem", [
    (lambda f: (f / "labels.csv").write_text("frame,state\n0,attentive\n"), "label every frame"),
    (lambda f: (f / "labels.csv").write_text("frame,state\n0,dancing\n"), "dancing"),
    (lambda f: (f / "scenario.yaml").write_text("state: flying\n"), "not a protocol state"),
    (lambda f: (f / "scenario.yaml").write_text("state: sleep\nfps: 0\n"), "fps"),
    (lambda f: (f / "labels.csv").unlink(), "neither labels.csv"),
    (lambda f: [p.unlink() for p in (f / "frames").glob("*")], "no .png"),
])
def test_a_bad_recording_is_one_line(tmp_path, break_it, problem):
    write_recording(tmp_path / "rec", GLANCE)
    break_it(tmp_path / "rec")
    with pytest.raises(NcapError, match=problem):
        load_recording(tmp_path / "rec", PROTOCOL, 30.0)


def test_a_recording_whose_labels_show_no_such_state_is_refused(tmp_path):
    write_recording(tmp_path / "rec", [ATTENTIVE] * 30)
    with pytest.raises(NcapError, match="every frame attentive"):
        load_recording(tmp_path / "rec", PROTOCOL, 30.0)


def test_a_malformed_openlabel_file_is_one_line(tmp_path):
    write_recording(tmp_path / "rec", GLANCE, "openlabel")
    (tmp_path / "rec" / "annotations.json").write_text("{not json")
    with pytest.raises(NcapError, match="OpenLABEL"):
        load_recording(tmp_path / "rec", PROTOCOL, 30.0)


def test_eyes_closed_outranks_a_glance_in_openlabel(tmp_path):
    from vcd import core

    from harness.scenarios.recording import vcd_labels

    document = core.OpenLABEL()
    document.add_action("away", semantic_type="gaze_on_road/not_looking_road", frame_value=(0, 9))
    document.add_action("closed", semantic_type="eyes_state/close", frame_value=(5, 7))
    document.save(str(tmp_path / "a.json"))
    labels = vcd_labels(tmp_path / "a.json", 12)
    assert labels == [LOOKING_AWAY] * 5 + [EYES_CLOSED] * 3 + [LOOKING_AWAY] * 2 + [ATTENTIVE] * 2


# --- the report -------------------------------------------------------------------------------------------------

def test_the_report_has_a_table_per_clause_and_merge_keeps_every_state(tmp_path):
    from harness.merge import merge_shards
    from harness.report.render import render_report
    from harness.results.record import stored
    from harness.results.store import ResultsStore

    def as_stored(record, state):
        return stored({"run_id": "r", "timestamp": "2026-12-01T00:00:00+00:00", "cell": record.cell.id,
                       "model": "stub", "precision": "fp32", "platform": "host", "recipe": "fp32",
                       "metric": record.metric, "verdict": record.verdict.status, "message": record.verdict.message,
                       "grade": record.grade, "method": record.method, "limit": record.limit,
                       "limit_source": record.limit_source, **record.figures})

    late = judged("long_distraction", [False] * 3 + [True] * 2)
    blinks = judged("long_distraction", [True] * 5)  # a second state of the same cell, under another name
    blinks.figures["state"] = "blinks"
    store = ResultsStore(tmp_path / "shard" / "results.jsonl")
    for record, state in ((late, "long_distraction"), (blinks, "blinks")):
        store.append(as_stored(record, state))
    records = store.records("r")
    render_report(records, tmp_path / "shard", [])
    assert len(merge_shards([tmp_path / "shard"])[0]) == 2  # both states survive a merge
    markdown = (tmp_path / "shard" / "report.md").read_text()
    assert "### long_distraction" in markdown and "### blinks" in markdown
    assert PROTOCOL.states["long_distraction"].clause in markdown
    assert "| stub | fp32 | host | host-measured | 2/5 |" in markdown and "NCAP-SCN-01 long_distraction" in markdown
