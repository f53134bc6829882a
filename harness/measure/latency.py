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
        started = time.perf_counter_ns()
        runner.infer(sample)
        samples.append(time.perf_counter_ns() - started)
        if on_sample is not None:
            on_sample(samples[-1] / 1e6)
    power = meter.stop() if meter is not None else None
    return LatencyRun(np.asarray(samples, dtype=np.float64) / 1e6, power)
