"""The gate's paired timing: the baseline's artifact and the current one timed in alternation, on the same inputs.

One function used by the session and by benchmarks/gate_quality.py, so the published gate quality is
measured on the gate's own code path.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import numpy as np

from harness.gate.baseline import sample_summary
from harness.measure.latency import LatencyPlan, time_alternating
from harness.runtimes.base import Runner

Model = TypeVar("Model")  # whatever the caller opens a runner on: a model card, a path


def time_beside_baseline(open_runner: Callable[[Model, bool], AbstractContextManager[Runner]], baseline: Model,
                         current: Model, inputs: np.ndarray, plan: LatencyPlan) -> tuple[list[float], list[float]]:
    """Samples (as stored) of both artifacts, timed in alternating blocks. `open_runner(model, spinning)`: the two
    sessions take turns, so neither may keep idle workers spinning on the CPU the other needs (measured: with
    spinning on, the same artifact's ratio spread over 0.92-1.05x instead of 0.98-1.02x)."""
    with open_runner(baseline, False) as first, open_runner(current, False) as second:
        timings = time_alternating(first, second, inputs, plan)
    return sample_summary(timings[0]), sample_summary(timings[1])
