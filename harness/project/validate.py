"""The projection's error where truth exists: the host projected from its own roofline, and predicted by its kernel
predictor, against host measurement of the same artifact."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from harness.measure.latency import LatencyPlan, time_alternating, time_inferences
from harness.project.blocks import block_feeds, block_model
from harness.project.host import host_roofline
from harness.project.kernels import profile_model, standard_normal_feeds
from harness.project.predictor import Prediction, Predictor
from harness.project.profiling import PROBE
from harness.project.projection import project
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner


@dataclass(frozen=True)
class HostCheck:
    projected_ms: float  # the roofline's
    measured_ms: float  # median of the measured latencies: a projection predicts the typical run
    prediction: Prediction | None = None  # the kernel predictor's, where one was given
    drift: float = 1.0  # the predictor's probe now over its time at the fit: the machine's speed since
    own_profile_ms: float = float("nan")  # the network's own profile at the fit's speed (Predictor.own_profile_ms)

    @property
    def error(self) -> float:
        """Signed relative error of the roofline: +0.1 means 10 % slower than measured."""
        return self.projected_ms / self.measured_ms - 1

    @property
    def predictor_error(self) -> float:
        """Signed relative error of the predictor against the measurement brought back to the fit's speed."""
        if self.prediction is None:
            return float("nan")
        return self.prediction.ms / (self.measured_ms / self.drift) - 1

    @property
    def overhead_error(self) -> float:
        """The predictor's error had its regressors been exact: the network's own profile, brought to the wall clock
        as the fit brings the blocks', against the measurement at the fit's speed."""
        return self.own_profile_ms / (self.measured_ms / self.drift) - 1

    @property
    def regressor_error(self) -> float:
        """The regressors' error on this network's kernels: the prediction against the network's own profile.
        (1 + overhead_error) x (1 + regressor_error) = 1 + predictor_error."""
        if self.prediction is None:
            return float("nan")
        return self.prediction.ms / self.own_profile_ms - 1


QUICK_PLAN = LatencyPlan(warmup_runs=10, min_runs=200, min_seconds=0.5)
PROFILED_RUNS = 10  # of the network under the profiler, after two of warm-up: its kernels and their own times


def check_on_host(model: Path, precision: str, threads: int, plan: LatencyPlan = QUICK_PLAN,
                  predictor: Predictor | None = None) -> HostCheck:
    """The roofline's projection (and the predictor's, when given) beside the artifact's measured median, on a
    seeded standard-normal input. With a predictor the artifact is timed in alternation with the predictor's
    probe, so a slow spell of the machine since the fit is measured (`drift`) rather than read as error, and it
    is profiled first: its kernels are what the predictor predicts, and their own times split the error between the
    regressors and the rest (`HostCheck.regressor_error`, `HostCheck.overhead_error`)."""
    projected = project(model, host_roofline(precision, threads)).latency_ms
    inputs = next(iter(standard_normal_feeds(model).values()))
    if predictor is None:
        with OnnxRuntimeRunner(model, threads=threads) as runner:
            measured = float(np.median(time_inferences(runner, inputs, plan).samples_ms))
        return HostCheck(projected, measured)
    kernels = profile_model(model, standard_normal_feeds(model), threads, PROFILED_RUNS, warmup=2,
                            disabled_optimizers=predictor.disabled_optimizers())
    prediction = predictor.predict(kernels)
    with tempfile.TemporaryDirectory(prefix="ncap-probe-") as scratch:
        probe = Path(scratch) / "probe.onnx"
        probe.write_bytes(block_model(PROBE))
        with OnnxRuntimeRunner(model, threads=threads) as runner, \
                OnnxRuntimeRunner(probe, threads=threads) as reference:
            timed, probed = time_alternating(runner, _FixedInput(reference, block_feeds(PROBE)["x"]), inputs, plan)
    drift = float(np.median(probed)) / predictor.record.probe["ms"]
    at_fit_speed = [replace(k, microseconds=k.microseconds / drift) for k in kernels if k.microseconds is not None]
    return HostCheck(projected, float(np.median(timed)), prediction, drift, predictor.own_profile_ms(at_fit_speed))


def share_within(errors: list[float], bound: float) -> float:
    return sum(abs(e) <= bound for e in errors) / len(errors) if errors else float("nan")


class _FixedInput:
    """A runner that runs its own input whatever it is given: the probe beside a network of another input shape."""

    def __init__(self, runner: OnnxRuntimeRunner, batch: np.ndarray) -> None:
        self.runner, self.batch = runner, batch

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.runner.infer(self.batch)
