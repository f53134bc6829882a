"""The projection's error where truth exists: the host projected from its own roofline vs host measurement."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harness.measure.latency import LatencyPlan, time_inferences
from harness.project.host import host_roofline
from harness.project.projection import project
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner


@dataclass(frozen=True)
class HostCheck:
    projected_ms: float
    measured_ms: float  # median of the measured latencies: a projection predicts the typical run

    @property
    def error(self) -> float:
        """Signed relative error of the projection: +0.1 means 10 % slower than measured."""
        return self.projected_ms / self.measured_ms - 1


QUICK_PLAN = LatencyPlan(warmup_runs=10, min_runs=200, min_seconds=0.5)


def check_on_host(model: Path, precision: str, threads: int, plan: LatencyPlan = QUICK_PLAN) -> HostCheck:
    projected = project(model, host_roofline(precision, threads)).latency_ms
    with OnnxRuntimeRunner(model, threads=threads) as runner:
        sample = np.zeros(_batch1_shape(model), np.float32)
        measured = float(np.median(time_inferences(runner, sample, plan).samples_ms))
    return HostCheck(projected, measured)


def share_within(errors: list[float], bound: float) -> float:
    return sum(abs(e) <= bound for e in errors) / len(errors) if errors else float("nan")


def _batch1_shape(model: Path) -> list[int]:
    (first,) = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_inputs()[:1]
    return [d if isinstance(d, int) else 1 for d in first.shape]
