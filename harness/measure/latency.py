"""Single-stream batch-1 latency: warm up, then run until both a count and a duration are reached."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.measure.power import PowerMeter, PowerReading
from harness.runtimes.base import Runner


@dataclass(frozen=True)
class LatencyPlan:
    warmup_runs: int = 20
    min_runs: int = 300  # 299 is the least that gives a distribution-free 95 % bound on p99
    min_seconds: float = 2.0

    def describe(self) -> str:
        return (f"batch 1, single stream; {self.warmup_runs} warm-up runs, then at least {self.min_runs} "
                f"runs and {self.min_seconds:g} s; wall time per session.run (perf_counter_ns)")


@dataclass(frozen=True)
class LatencyRun:
    samples_ms: np.ndarray
    power: PowerReading | None


def time_inferences(runner: Runner, sample: np.ndarray, plan: LatencyPlan, meter: PowerMeter | None = None,
                    on_sample: Callable[[float], None] | None = None) -> LatencyRun:
    """Time `runner.infer(sample)` one call at a time; the power meter covers exactly the timed runs.
    `on_sample` gets each latency (ms) as it is taken, outside the timed call: a device streams them."""
    for _ in range(plan.warmup_runs):
        runner.infer(sample)
    samples: list[int] = []
    if meter is not None:
        meter.start()
    deadline = time.perf_counter_ns() + int(plan.min_seconds * 1e9)
    while len(samples) < plan.min_runs or time.perf_counter_ns() < deadline:
        samples.append(_timed_call(runner, sample))
        if on_sample is not None:
            on_sample(samples[-1] / 1e6)
    power = meter.stop() if meter is not None else None
    return LatencyRun(_as_ms(samples), power)


def time_alternating(first: Runner, second: Runner, sample: np.ndarray, plan: LatencyPlan,
                     block: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Time two runners in alternating blocks of `block` calls over the same stretch of time, each to the
    plan's count and duration. A shared machine has slow spells of seconds (measured here: one artifact's
    median 0.84-1.05 ms between consecutive 1 s timings), which timing one runner after the other reads as a
    difference between them; alternating every few milliseconds spreads each spell over both alike."""
    runners = (first, second)
    for runner in runners:
        for _ in range(plan.warmup_runs):
            runner.infer(sample)
    samples: tuple[list[int], list[int]] = ([], [])
    deadline = time.perf_counter_ns() + int(2 * plan.min_seconds * 1e9)
    while min(map(len, samples)) < plan.min_runs or time.perf_counter_ns() < deadline:
        for runner, taken in zip(runners, samples, strict=True):
            taken.extend(_timed_call(runner, sample) for _ in range(block))
    return _as_ms(samples[0]), _as_ms(samples[1])


def _timed_call(runner: Runner, sample: np.ndarray) -> int:
    started = time.perf_counter_ns()
    runner.infer(sample)
    return time.perf_counter_ns() - started


def _as_ms(samples_ns: list[int]) -> np.ndarray:
    return np.asarray(samples_ns, dtype=np.float64) / 1e6
