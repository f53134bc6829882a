"""Single-stream batch-1 latency over a set of inputs: warm up, then run the inputs in turn until a count, a
duration and a number of full passes over the inputs are all reached.

A network's time on a CPU depends on what it is fed (denormals, data-dependent kernels: one small CNN read
0.33 ms on zeros and 0.76 ms on noise), so the inputs are the evaluation images in a seeded random order,
after MLPerf LoadGen's sample library, not one image repeated."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.measure.power import PowerMeter, PowerReading
from harness.runtimes.base import Runner

MIN_RUNS_FOR_P99_BOUND = 299  # the fewest samples whose largest is a distribution-free 95 % bound on p99


@dataclass(frozen=True)
class LatencyPlan:
    warmup_runs: int = 20
    min_runs: int = 300  # at least MIN_RUNS_FOR_P99_BOUND
    min_seconds: float = 2.0
    min_passes: int = 2  # every input timed at least twice: the per-input spread ranks on one pass, reads another

    def describe(self) -> str:
        return (f"batch 1, single stream; {self.warmup_runs} warm-up runs, then at least {self.min_runs} runs, "
                f"{self.min_seconds:g} s and {self.min_passes} full passes over the inputs in a seeded random "
                "order; wall time per inference (perf_counter_ns)")


@dataclass(frozen=True)
class LatencyRun:
    samples_ms: np.ndarray
    power: PowerReading | None
    input_index: np.ndarray  # which of the timed inputs each sample ran (its row in `inputs`)
    outputs: dict[int, np.ndarray] = field(default_factory=dict)  # the last timed output of each kept row


def time_inferences(runner: Runner, inputs: np.ndarray, plan: LatencyPlan, meter: PowerMeter | None = None,
                    on_sample: Callable[[float, int], None] | None = None,
                    keep_outputs: frozenset[int] = frozenset()) -> LatencyRun:
    """Time `runner.infer` one batch-1 input at a time, taking the rows of `inputs` in turn (a stack of N
    batch-1 inputs; N = 1 repeats one input); the power meter covers exactly the timed runs. The run ends on
    a full pass, so every input weighs the same. `on_sample` gets each latency (ms) and its input's row as
    it is taken, outside the timed call: a device streams them. The outputs of the rows in `keep_outputs` are
    kept for the self-audit (harness.measure.audit)."""
    feeds = _batch1_views(inputs)
    for index in range(plan.warmup_runs):
        runner.infer(feeds[index % len(feeds)])
    samples: list[int] = []
    outputs: dict[int, np.ndarray] = {}
    if meter is not None:
        meter.start()
    deadline = time.perf_counter_ns() + int(plan.min_seconds * 1e9)
    while not _done(len(samples), len(feeds), plan) or time.perf_counter_ns() < deadline:
        row = len(samples) % len(feeds)
        elapsed, output = timed_call(runner, feeds[row])
        samples.append(elapsed)
        if row in keep_outputs:
            outputs[row] = output
        if on_sample is not None:
            on_sample(samples[-1] / 1e6, row)
    power = meter.stop() if meter is not None else None
    return LatencyRun(_as_ms(samples), power, np.arange(len(samples)) % len(feeds), outputs)


def time_alternating(first: Runner, second: Runner, inputs: np.ndarray, plan: LatencyPlan,
                     block: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Time two runners in alternating blocks of `block` calls over the same stretch of time, each to the
    plan's count and duration. A shared machine has slow spells of seconds (measured here: one artifact's
    median 0.84-1.05 ms between consecutive 1 s timings), which timing one runner after the other reads as a
    difference between them; alternating every few milliseconds spreads each spell over both alike. Both
    runners get the same inputs in the same order, block by block, so the comparison stays paired."""
    runners, feeds = (first, second), _batch1_views(inputs)
    for runner in runners:
        for index in range(plan.warmup_runs):
            runner.infer(feeds[index % len(feeds)])
    samples: tuple[list[int], list[int]] = ([], [])
    deadline = time.perf_counter_ns() + int(2 * plan.min_seconds * 1e9)
    # both sides see the same inputs, so a pass need not end exactly: the comparison is paired either way
    while not _done(len(samples[0]), len(feeds), plan, whole_passes=False) or time.perf_counter_ns() < deadline:
        rows = [(len(samples[0]) + offset) % len(feeds) for offset in range(block)]
        for runner, taken in zip(runners, samples, strict=True):
            taken.extend(timed_call(runner, feeds[row])[0] for row in rows)
    return _as_ms(samples[0]), _as_ms(samples[1])


def _batch1_views(inputs: np.ndarray) -> list[np.ndarray]:
    """Row i of the stack as a batch of one (views: no copy, nothing allocated inside the timed loop)."""
    return [inputs[row:row + 1] for row in range(len(inputs))]


def _done(taken: int, inputs: int, plan: LatencyPlan, whole_passes: bool = True) -> bool:
    """Enough runs, at least `min_passes` passes over the inputs, and (`whole_passes`) the last pass complete."""
    return taken >= max(plan.min_runs, plan.min_passes * inputs) and (taken % inputs == 0 or not whole_passes)


def timed_call(runner: Runner, sample: np.ndarray) -> tuple[int, np.ndarray]:
    """One inference: its wall time (ns) and its output."""
    started = time.perf_counter_ns()
    output = runner.infer(sample)
    return time.perf_counter_ns() - started, output


def _as_ms(samples_ns: list[int]) -> np.ndarray:
    return np.asarray(samples_ns, dtype=np.float64) / 1e6
