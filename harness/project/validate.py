"""The projection's error where truth exists: the host projected from its own roofline, and predicted by its kernel
predictor, against host measurement of the same artifact."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from harness.errors import NcapError
from harness.files import read_text
from harness.measure.latency import LatencyPlan, time_inferences
from harness.platform import describe_validation_error
from harness.project.blocks import block_feeds, block_model, evict_bytes
from harness.project.drift import LARGE_PANEL_MAX_ELEMENTS, Drift, fit_drift, panel_sized
from harness.project.host import host_roofline
from harness.project.kernels import profile_model, standard_normal_feeds
from harness.project.predictor import Prediction, Predictor
from harness.project.projection import project
from harness.runtimes.onnxruntime.profile import PROFILE_SESSIONS, WALL_S, quiet_mean, seconds_per_run
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner


@dataclass(frozen=True)
class HostCheck:
    projected_ms: float  # the roofline's
    measured_ms: float  # the quiet mean of the measured latencies (profile.quiet_mean), as the fit's blocks are timed
    prediction: Prediction | None = None  # the kernel predictor's, where one was given
    drift: float = 1.0  # the machine's speed since the fit for this network's kernels (DriftPanel, Drift.at)
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
PROFILE_S = 0.5  # of the network under the profiler (10-100 runs, after two of warm-up): its kernels' own times
PANEL_BLOCKS = 60  # of the fit's own blocks, re-timed once a round: the machine's speed since the fit, by kernel size
# beside them, blocks of long kernels: the small blocks' kernels stop near 1 ms, a detector's run 4-17 ms (YOLOv8-s),
# and the line through the small ones only extrapolates there (measured: the fit's blocks of 1-5 ms a kernel read
# 0.89x their fitted time where the small panel's line said 0.93x at 4 ms)
LARGE_BLOCKS, LARGE_KERNEL_MS = 12, 1.0


class DriftPanel:
    """The machine's speed now against the fit's, read on the fit's own blocks: a seeded panel of them re-timed as
    the plan timed them (its wall time alone, back to back), now over then, fitted by kernel size (`fit_drift`).
    One probe block read the same way moved 7 % while a panel of
    the fit's blocks moved 2 % (measured on this host): its readings fall on one of two speeds 7 % apart, by where
    a session's buffers land, and read between a network's runs it took up to 8 % longer still (-1 to +8 %
    beside four networks). `size` small blocks (`panel_sized`), and LARGE_BLOCKS of long kernels."""

    def __init__(self, predictor: Predictor, threads: int, size: int = PANEL_BLOCKS, seed: int = 0) -> None:
        timed = [s for s in predictor.samples if s.wall_ms and "block" in s.block and s.kernels]
        small = [s for s in timed if panel_sized(s.block)]
        large = [s for s in timed if not panel_sized(s.block) and panel_sized(s.block, LARGE_PANEL_MAX_ELEMENTS)
                 and (s.wall_ms or 0.0) / len(s.kernels) >= LARGE_KERNEL_MS]
        rng = np.random.default_rng(seed)
        chosen = [group[i] for group, count in ((small, size), (large, LARGE_BLOCKS))
                  for i in rng.choice(len(group), min(count, len(group)), replace=False)]
        self.threads = threads
        self._blocks = [(block_model(s.block), block_feeds(s.block), evict_bytes(s.block), float(s.wall_ms or 0.0),
                         len(s.kernels)) for s in chosen]
        if not self._blocks:
            raise NcapError("the predictor holds none of its fit's blocks to re-time, so the machine's drift since "
                            "the fit cannot be measured; fit one on this machine with `ncap profile`")

    def drift(self) -> Drift:
        """Each block's wall time now over its time in the fit, against its microseconds a kernel now."""
        now_ms = [seconds_per_run(model, feeds, self.threads, WALL_S, evict) * 1e3
                  for model, feeds, evict, *_ in self._blocks]
        return fit_drift([now / then for now, (*_, then, _) in zip(now_ms, self._blocks, strict=True)],
                         [now * 1e3 / kernels for now, (*_, kernels) in zip(now_ms, self._blocks, strict=True)])


def check_on_host(model: Path, precision: str, threads: int, plan: LatencyPlan = QUICK_PLAN,
                  predictor: Predictor | None = None, drift: Drift | None = None) -> HostCheck:
    """The roofline's projection (and the predictor's, when given) beside the artifact's measured quiet time, on a
    seeded standard-normal input. With a predictor the machine's drift since the fit is taken out of the truth
    rather than read as error: `drift` as the caller read it on a DriftPanel (once a round over many networks),
    else read here on a new panel just before the artifact is timed. The artifact is then profiled: its kernels
    are what the predictor predicts, their times weigh the drift by kernel size (`Drift.at`), and split the error
    between the regressors and the rest (`HostCheck.regressor_error`, `HostCheck.overhead_error`)."""
    projected = project(model, host_roofline(precision, threads)).latency_ms
    inputs = next(iter(standard_normal_feeds(model).values()))
    if predictor is None:
        return HostCheck(projected, _quiet_ms(model, threads, inputs, plan))
    reading = DriftPanel(predictor, threads).drift() if drift is None else drift
    measured = _quiet_ms(model, threads, inputs, plan)
    # profiled as the fit's blocks are, in the faster of two sessions; a 0.2 ms network's 10 runs were too few to split
    runs = int(np.clip(PROFILE_S / PROFILE_SESSIONS / (measured / 1e3), 10, 50))
    kernels = profile_model(model, standard_normal_feeds(model), threads, runs, warmup=2,
                            disabled_optimizers=predictor.disabled_optimizers(), sessions=PROFILE_SESSIONS)
    timed = [k for k in kernels if k.microseconds is not None]
    network_drift = reading.at([k.microseconds or 0.0 for k in timed])
    at_fit_speed = [replace(k, microseconds=(k.microseconds or 0.0) / network_drift) for k in timed]
    return HostCheck(projected, measured, predictor.predict(kernels), network_drift,
                     predictor.own_profile_ms(at_fit_speed))


def _quiet_ms(model: Path, threads: int, inputs: np.ndarray, plan: LatencyPlan) -> float:
    with OnnxRuntimeRunner(model, threads=threads) as runner:
        return quiet_mean(time_inferences(runner, inputs, plan).samples_ms)


def share_within(errors: list[float], bound: float) -> float:
    return sum(abs(e) <= bound for e in errors) / len(errors) if errors else float("nan")


Measured = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class EvaluatedCell(BaseModel):
    """One cell's figures over an evaluation's rounds (benchmarks/projection_error.py, its --json file). The
    predictor's figures are NaN where there was no predictor."""

    model: str
    recipe: str
    fit: str | None = None  # when the evaluated predictor was fitted (its record's `fitted`); None: no predictor
    roofline_ms: Measured
    predicted_ms: float
    measured_ms: Measured  # the median of the rounds' times, as measured
    drift: Measured  # the machine's speed over the fit's for this network's kernels (median over the rounds)
    truth_ms: Measured  # the median of the rounds, each brought back to the fit's speed by its drift
    timed: Literal["median", "quiet"] = "median"  # a round's time: its runs' quiet mean (files before 12-04: median)
    rounds_ms: list[Measured]
    truth_spread: Finite  # the median of the odd rounds over the even ones', less 1
    roofline_error: Finite
    predictor_error: float
    undrifted_error: float  # the predictor against the measurement as taken, without the drift taken out
    own_profile_ms: float
    regressor_error: float  # the prediction against the network's own profile
    overhead_error: float  # that own profile against the truth: the rest of the method
    unknown_kernel_types: list[str]


EVALUATION = TypeAdapter(list[EvaluatedCell])


def load_evaluation(path: Path) -> list[EvaluatedCell]:
    """The cells of an earlier evaluation's --json file; a file that is not one fails with one line naming it."""
    fix = "give a file benchmarks/projection_error.py wrote with --json"
    text = read_text(path, "earlier evaluation", "--against")
    try:
        return EVALUATION.validate_python(json.loads(text))
    except ValidationError as exc:
        raise NcapError(f"{path} is not a usable evaluation: {describe_validation_error(exc)}; {fix}") from exc
    except ValueError as exc:  # not JSON
        raise NcapError(f"{path} is not an evaluation ({type(exc).__name__}); {fix}") from exc


def truth_moves(now: list[EvaluatedCell], then: list[EvaluatedCell]) -> tuple[dict[tuple[str, str], float], bool]:
    """How far each cell the two evaluations share (timed alike) moved between them: its truth now over then,
    less 1; and whether both evaluated one fit. Only then are both truths at one speed, the fit's (its drift panel
    is re-timed against the fit's own blocks); else the times as measured are compared."""
    earlier = {(cell.model, cell.recipe, cell.timed): cell for cell in then}
    shared = [(cell, earlier[key]) for cell in now if (key := (cell.model, cell.recipe, cell.timed)) in earlier]
    same = bool(shared) and all(_one_fit(a, b) for a, b in shared)
    return ({(a.model, a.recipe): (a.truth_ms / b.truth_ms if same else a.measured_ms / b.measured_ms) - 1
             for a, b in shared}, same)


def _one_fit(a: EvaluatedCell, b: EvaluatedCell) -> bool:
    """Whether two evaluations of a cell evaluated one fit: the fit each names, else (files written before cells
    named it) the same prediction, the forests being seeded."""
    if a.fit and b.fit:
        return a.fit == b.fit
    return bool(np.isclose(a.predicted_ms, b.predicted_ms, rtol=1e-9))


def pooled_truths(now: list[EvaluatedCell], earlier: list[list[EvaluatedCell]]) -> dict[tuple[str, str], list[float]]:
    """Each cell of `now` with its truths in it and in the earlier evaluations of the same fit (see
    `truth_moves`): a truth that moves between sessions is steadier as the median of several."""
    truths = {(cell.model, cell.recipe): [cell.truth_ms] for cell in now}
    for cells in earlier:
        if truth_moves(now, cells)[1]:
            for cell in cells:
                if (cell.model, cell.recipe) in truths:
                    truths[cell.model, cell.recipe].append(cell.truth_ms)
    return truths
