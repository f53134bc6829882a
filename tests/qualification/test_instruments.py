"""Known-answer tests of the measuring instruments: each is given something whose true figure is known (a runner
with a known latency distribution, a process with a known peak, a model and dataset with a known accuracy) and
must report it within its stated error. The energy meters' known-answer tests are in tests/test_power.py, the
statistics' in tests/test_stats.py."""
from __future__ import annotations

import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from harness.data.dataset import ImageSet
from harness.measure import accuracy, latency
from harness.measure.latency import LatencyPlan, time_inferences
from harness.measure.memory import measure_peak_memory
from harness.measure.stats import LatencyStats
from harness.models.card import InputSpec, ModelCard
from harness.runtimes.registry import RunnerSpec, open_runner

pytestmark = pytest.mark.qualification(kind="known answer")

PLAN = LatencyPlan(warmup_runs=5, min_runs=300, min_seconds=0.0)


class FakeClock:
    """perf_counter_ns for the latency module: time moves only when the runner below works."""

    def __init__(self) -> None:
        self.now = 0

    def perf_counter_ns(self) -> int:
        return self.now


class KnownLatency:
    """A runner whose every inference takes the next of `durations_ms` on the fake clock."""

    name = "known"

    def __init__(self, clock: FakeClock, durations_ms: np.ndarray) -> None:
        self.clock, self.durations = clock, iter(durations_ms)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.clock.now += int(round(next(self.durations) * 1e6))
        return batch


def _timed(monkeypatch: pytest.MonkeyPatch, durations_ms: np.ndarray) -> np.ndarray:
    clock = FakeClock()
    monkeypatch.setattr(latency, "time", types.SimpleNamespace(perf_counter_ns=clock.perf_counter_ns))
    return time_inferences(KnownLatency(clock, durations_ms), np.zeros((3, 1)), PLAN).samples_ms


def test_the_timing_loop_reports_exactly_the_inference_times_and_drops_the_warm_up(monkeypatch):
    durations = np.concatenate([np.full(PLAN.warmup_runs, 1000.0), np.linspace(1.0, 3.0, 300)])
    samples = _timed(monkeypatch, durations)
    assert len(samples) == 300 and samples.max() < 1000
    np.testing.assert_allclose(samples, np.linspace(1.0, 3.0, 300), atol=1e-6)


def test_the_p99_bound_covers_the_true_p99_of_a_known_distribution_in_95_percent_of_runs(monkeypatch,
                                                                                         record_property):
    """300 samples from an exponential distribution (mean 1 ms, true p99 = ln 100 ms), 400 times: the upper bound
    claims 95 % confidence, so it must lie above the true p99 in about 95 % of runs; the median estimate must
    lie within two standard errors of the true median (ln 2 ms) as often. The sample median's standard error is
    1 / (2 f(median) sqrt(n)) = 1 / sqrt(300) ms here, f(median) = 0.5 being the density there."""
    rng, true_p99, true_p50 = np.random.default_rng(2026), np.log(100), np.log(2)
    two_standard_errors = 2 / np.sqrt(300)
    covered = close = 0
    runs = 400
    for _ in range(runs):
        stats = LatencyStats.from_samples(_timed(monkeypatch, rng.exponential(1.0, PLAN.warmup_runs + 300)))
        covered += stats.p99_ucb_ms >= true_p99
        close += abs(stats.p50_ms - true_p50) <= two_standard_errors
    record_property("p99_bound_coverage", covered / runs)
    record_property("p50_within_two_standard_errors", close / runs)
    # 95 % claimed: fewer than 366 of 400 happens with probability < 0.5 % if the claim holds
    assert covered >= 366 and close >= 366


def test_a_busy_runner_of_known_duration_is_never_read_shorter(record_property):
    """On the real clock: a runner that busy-waits 2 ms. The instrument can only add time (a slow spell, a
    preemption), never take it away, so its p50 must not read below 2 ms; the error is reported."""
    class BusyTwoMs:
        name = "busy"

        def infer(self, batch: np.ndarray) -> np.ndarray:
            until = time.perf_counter_ns() + 2_000_000
            while time.perf_counter_ns() < until:
                pass
            return batch

    p50 = LatencyStats.from_samples(time_inferences(BusyTwoMs(), np.zeros((3, 1)), PLAN).samples_ms).p50_ms
    record_property("busy_2ms_p50_error_pct", (p50 / 2.0 - 1) * 100)
    assert 2.0 <= p50 < 20.0  # below 2 ms would be an instrument reading short; 10x more is a unit error


RSS_CHILD = """
import numpy as np
from harness.measure.rss import status_bytes
before = status_bytes("VmHWM")
block = np.ones({mb} * 2**20, dtype=np.uint8)  # touched: every page resident
print(before, status_bytes("VmHWM"))
"""


def test_the_resident_memory_reader_sees_an_exact_allocation(record_property):
    mb = 200
    out = subprocess.run([sys.executable, "-c", RSS_CHILD.format(mb=mb)], capture_output=True, text=True, check=True)
    before, after = (int(value) for value in out.stdout.split())
    grown_mb = (after - before) / 2**20
    record_property("rss_error_mb", grown_mb - mb)
    assert mb <= grown_mb <= mb + 8  # a few MB of interpreter pages may join; never less than the block


def _model_with_weights(path: Path, floats: int) -> Path:
    """x -> x + sum(W): the runtime must hold W (`floats` float32) to answer."""
    weights = helper.make_tensor("w", TensorProto.FLOAT, [floats], np.ones(floats, np.float32).tobytes(), raw=True)
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["w"], ["total"], keepdims=0), helper.make_node("Add", ["x", "total"], ["y"])],
        "weights", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_the_memory_probe_sees_a_models_known_weights(tmp_path, record_property):
    """64 MB of weights more must raise the probed peak by at least 64 MB (the runtime holds them) and at most
    three times that (the file's bytes and a copy while it loads)."""
    sample, spec = np.zeros((1, 4), np.float32), RunnerSpec()
    small = measure_peak_memory(_model_with_weights(tmp_path / "small.onnx", 16), sample, spec, probes=1)
    large = measure_peak_memory(_model_with_weights(tmp_path / "large.onnx", 16 * 2**20), sample, spec, probes=1)
    grown = large.peak_mb - small.peak_mb
    record_property("weights_mb", 64)
    record_property("peak_growth_mb", grown)
    assert 64 <= grown <= 3 * 64


COLOURS = ("red", "green", "blue")


def _oracle(path: Path) -> Path:
    """Scores = the mean of each colour channel: a pure red, green or blue image is classified exactly."""
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]), helper.make_node("Flatten", ["pooled"],
                                                                                        ["scores"])],
        "oracle", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_accuracy_of_an_oracle_on_a_dataset_with_known_wrong_labels_is_exact(tmp_path):
    """30 pure-colour images, 7 of them labelled with the wrong colour: top-1 is 23/30, not approximately."""
    images, labels = [], []
    for index in range(30):
        colour = index % 3
        image = np.zeros((8, 8, 3), np.uint8)
        image[..., colour] = 255
        images.append(image)
        labels.append((colour + 1) % 3 if index < 7 else colour)
    card = ModelCard(name="oracle", onnx=_oracle(tmp_path / "oracle.onnx"), classes=COLOURS,
                     input=InputSpec(size=(8, 8), scale=1 / 255))
    with open_runner(card.onnx, RunnerSpec()) as runner:
        assert accuracy.top1(runner, card, ImageSet(images, np.asarray(labels))) == 23 / 30
