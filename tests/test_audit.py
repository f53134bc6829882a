"""The self-audits (MLPerf TEST01/TEST04) catch the runtimes they exist for, and pass honest ones."""
from __future__ import annotations

import time

import numpy as np
import pytest

from harness.measure.audit import REPEAT_RUNS, repeated_input_speed, spot_rows, timed_outputs_agree
from harness.measure.latency import LatencyPlan, time_inferences

pytestmark = pytest.mark.qualification(kind="self-audit")
INPUTS = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
PLAN = LatencyPlan(warmup_runs=2, min_runs=300, min_seconds=0.0)


class Honest:
    """Works out its output from its input, taking `work_ms` of busy CPU every call."""

    name = "honest"

    def __init__(self, work_ms: float = 0.2) -> None:
        self.work_ns, self.calls = int(work_ms * 1e6), 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        until = time.perf_counter_ns() + self.work_ns
        while time.perf_counter_ns() < until:
            pass
        return np.tanh(batch.sum(axis=1, keepdims=True) * np.arange(1, 4, dtype=np.float32))


class Caching(Honest):
    """Does the work once per distinct input, then hands back the stored result."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[bytes, np.ndarray] = {}

    def infer(self, batch: np.ndarray) -> np.ndarray:
        key = batch.tobytes()
        if key not in self.seen:
            self.seen[key] = super().infer(batch)
        return self.seen[key]


class QuickerSecond(Honest):
    """Honest, but every second call takes half the time: its position in a pair decides its time, not its input
    (as with a runtime whose threads are still awake from the call just before). It never reuses a result."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.work_ns = 200_000 if self.calls % 2 else 400_000  # `calls` counts this call once super() runs
        return super().infer(batch)


class Lazy(Honest):
    """Computes for its first calls, then returns zeros without working (a runtime cutting corners when busy)."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        output = super().infer(batch)
        return output if self.calls <= 30 else np.zeros_like(output)


def _test01(timed_runner: Honest):
    run = time_inferences(timed_runner, INPUTS, PLAN, keep_outputs=spot_rows(len(INPUTS)))
    return timed_outputs_agree(run.outputs, lambda row: Honest(0).infer(INPUTS[row:row + 1]))


def test_timed_outputs_of_an_honest_runtime_match_the_accuracy_path():
    audit = _test01(Honest(0))
    assert audit.passed and audit.figures["spot_checked"] == 8 and audit.figures["worst_relative_error"] == 0


def test_a_runtime_that_stops_computing_while_timed_fails_the_timed_outputs_audit():
    audit = _test01(Lazy(0))
    assert not audit.passed and audit.figures["differing"] == 8 and "did not compute" in audit.message


def test_a_kept_output_that_is_not_finite_fails_the_audit():
    audit = timed_outputs_agree({0: np.array([[np.nan, 1.0]])}, lambda row: np.array([[0.5, 1.0]]))
    assert not audit.passed


def test_a_repeated_input_is_not_faster_on_an_honest_runtime():
    audit = repeated_input_speed(Honest(), INPUTS)
    assert audit.passed and 0.8 <= audit.figures["repeat_speed_ratio"], audit.message


def test_a_fast_network_is_audited_over_enough_pairs_for_stable_medians():
    """100 pairs of a call of a few microseconds are over in milliseconds, and their medians swing by a third:
    a fast runtime gets pairs until REPEAT_MIN_S has passed."""
    audit = repeated_input_speed(Honest(0), INPUTS)  # REPEAT_RUNS pairs of it take about a millisecond
    assert audit.passed and audit.figures["pairs"] > REPEAT_RUNS, audit.figures
    assert audit.figures["pairs"] % 2 == 0  # whole quads: each side first as often as the other


def test_a_runtime_quicker_on_the_second_call_of_a_pair_is_not_taken_for_a_result_cache():
    audit = repeated_input_speed(QuickerSecond(), INPUTS)
    assert audit.passed and 0.8 <= audit.figures["repeat_speed_ratio"] <= 1.25, audit.message


def test_a_runtime_that_caches_results_fails_the_repeated_input_audit():
    audit = repeated_input_speed(Caching(), INPUTS)
    assert not audit.passed and audit.figures["repeat_speed_ratio"] < 0.2 and "reusing results" in audit.message
