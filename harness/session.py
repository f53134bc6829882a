"""One compliance run: which cells exist, how each figure is obtained, and where it is recorded.

A cell is (model, recipe, platform); a recipe's last step is its precision. Each figure is
measured at most once per run, recorded in the results store the moment it exists (pass, fail,
skip or error alike), and handed to the test that asserts it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from harness.catalog import REFERENCE_RECIPE, is_reference, is_requirement
from harness.data.dataset import Dataset, ImageSet, SyntheticSpec, embedded_dataset, folder_dataset
from harness.device.address import DeviceAddress
from harness.device.remote import DeviceJob, DeviceRun, run_on_device
from harness.errors import NcapError
from harness.gate.baseline import Baseline, gated_figures, machine_fingerprint, sample_summary
from harness.gate.compare import SecondLook, Thresholds, regression_verdict
from harness.gate.paired import time_beside_baseline
from harness.measure import accuracy, memory, quiet
from harness.measure.latency import LatencyPlan, LatencyRun, time_inferences
from harness.measure.meters import meter_for
from harness.measure.stats import InputSpread, LatencyStats
from harness.models import preprocess, zoo
from harness.models.card import ModelCard, load_card
from harness.models.train import TrainedModel, class_names, reference_model, trained_model
from harness.optimize.passes import PassContext
from harness.optimize.recipe import Artifact, build_artifact, cached_artifact, parse_recipe
from harness.platform import ArticleBaseline, Platform
from harness.project.calibration import CalibratedRoofline, calibrated_roofline
from harness.project.projection import project
from harness.requirements import Limit, Requirements
from harness.results.store import ResultsStore
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner
from harness.verdict import Verdict, judge

HOST_GRADE = "host-measured"
DEVICE_GRADE = "measured"  # on the target board itself
PROJECTION_CAVEAT = "projected, provisional: a projection is not homologation evidence"
# The method's error where it can be checked: benchmarks/projection_error.py on the host. No chip here
# to check a target projection against, so its error on a target is unknown.
PROJECTION_ERROR = ("unknown on the target; on the host the same method's error is measured by "
                    "benchmarks/projection_error.py (see the README)")
METRICS = ("latency", "memory", "power", "accuracy")
# Latency is timed over the evaluation images in this seeded order, as many as fit this budget once preprocessed
# (all 1000 embedded images at 64x64 take 49 MB; at 640x640 the budget holds 54)
TIMING_ORDER_SEED = 0
TIMING_INPUTS_BYTES = 256 * 2**20
# what every record carries about its artifact (from the manifest): size and complexity before/after the recipe
ARTIFACT_FIGURES = ("size_bytes", "params_before", "params_after", "macs_before", "macs_after")


@dataclass(frozen=True)
class RunOptions:
    platform: Platform
    models: tuple[str, ...]  # zoo names or model-card paths
    recipes: tuple[str, ...]  # e.g. ("fp32", "int8", "fuse,int8"); each ends in a precision
    requirements: Requirements
    report_dir: Path
    dataset_dir: Path | None = None
    latency_plan: LatencyPlan = LatencyPlan()
    threads: int = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    assert_estimates: bool = False
    requirements_file: Path | None = None
    baseline: Baseline | None = None  # --ncap-baseline: adds the regression gate
    gate: Thresholds = Thresholds()
    strict: bool = False  # homologation mode: only `measured` (on-target) evidence can pass
    power_meter: str | None = None  # --ncap-power-meter SPEC, read on the board with a device; else RAPL or estimate
    device: DeviceAddress | None = None  # --device or the profile's `device:`: figures are measured on that board
    denormals_as_zero: bool = False  # --ncap-denormals-as-zero: off, as deployed runtimes run


@dataclass(frozen=True)
class Cell:
    model: str
    recipe: str
    platform: str

    @property
    def precision(self) -> str:
        """The precision the recipe's last step ends in: `qat` and `mixed` end in int8."""
        return parse_recipe(self.recipe)[-1].precision

    @property
    def id(self) -> str:
        return f"{self.model}-{self.recipe.replace(',', '+')}-{self.platform}"


@dataclass
class Record:
    """One measurement as stored: the figures, how they were obtained, and the verdict."""

    cell: Cell
    metric: str
    verdict: Verdict
    grade: str | None = None
    method: str | None = None
    limit: float | None = None
    limit_source: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)


class ComplianceRun:
    def __init__(self, options: RunOptions, progress: Callable[[str], None] = print, run_id: str | None = None) -> None:
        self.options, self.progress = options, progress
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.store = ResultsStore(options.report_dir / "results.jsonl")
        self.cards = {spec: _resolve_card(spec) for spec in options.models}  # None for a zoo model
        self._memo: dict[tuple[str, ...], Any] = {}
        self._written: set[tuple[str, str]] = set()

    # --- what the run covers -------------------------------------------------------------
    def model_name(self, spec: str) -> str:
        card = self.cards[spec]
        return card.name if card else spec

    def cells(self) -> list[Cell]:
        return [Cell(self.model_name(spec), recipe, self.options.platform.name)
                for spec in self.options.models for recipe in self.options.recipes]

    @cached_property
    def dataset(self) -> Dataset:
        if self.options.dataset_dir is not None:
            return folder_dataset(self.options.dataset_dir)
        self.progress("generating the embedded synthetic driver-state dataset")
        return embedded_dataset(SyntheticSpec())

    # --- figures, each measured once and recorded at once ----------------------------------
    def measure(self, metric: str, cell: Cell, test_id: str | None = None) -> Record:
        """The record of `metric` for `cell`, written once with the id of the test that asserts it;
        an NcapError is recorded as an error, then raised."""
        try:
            record = self._record(metric, cell)
        except NcapError as exc:  # a board lost part-way hands over what it measured (DeviceRunError.figures)
            self._write_once(Record(cell, metric, Verdict("error", str(exc)), figures=getattr(exc, "figures", {})),
                             test_id)
            raise
        self._write_once(record, test_id)
        return record

    def _record(self, metric: str, cell: Cell) -> Record:
        return self._once(("record", metric, cell.id), lambda: self._insist_on_measured(self._measure(metric, cell)))

    def _insist_on_measured(self, record: Record) -> Record:
        """--ncap-strict: a pass on anything but on-target evidence becomes a failure for insufficient evidence."""
        if (self.options.strict and record.verdict.status == "pass" and record.grade != "measured"
                and is_requirement(record.metric, record.cell.recipe)):
            record.verdict = Verdict("fail", f"insufficient evidence: {record.verdict.message}, but the figure is "
                                             f"{record.grade}; --ncap-strict accepts only measured (on-target) figures")
        return record

    def _measure(self, metric: str, cell: Cell) -> Record:
        if cell.precision not in self.options.platform.precisions:
            return Record(cell, metric, Verdict("skip", (
                f"{cell.platform} does not support {cell.precision} (its toolchain offers "
                f"{', '.join(self.options.platform.precisions)})")))
        if self.options.platform.kind != "host" and self.options.device is None:
            return self._projected(metric, cell)
        return {"latency": self._latency, "memory": self._memory, "power": self._power,
                "accuracy": self._accuracy, "regression": self._regression}[metric](cell)

    def _projected(self, metric: str, cell: Cell) -> Record:
        """A target with no device attached: a roofline projection of the cell's artifact. It can pass or
        fail, but it is provisional and never homologation evidence (--ncap-strict fails its passes)."""
        limit = {"latency": self.options.requirements.latency_ms, "memory": self.options.requirements.memory_mb,
                 "power": self.options.requirements.power_w}.get(metric)
        if limit is None:
            return Record(cell, metric, Verdict("skip", (
                f"{metric} on {cell.platform} is not projected: accuracy depends on the chip's toolchain and the "
                "regression gate compares measurements; run on the device (--device ssh://...)")))
        platform = self.options.platform
        if metric == "power":
            envelope = platform.power.envelope_w if platform.power else None
            if envelope is None:
                return Record(cell, metric, Verdict("skip", (
                    f"{cell.platform}'s profile gives no power envelope to project from; measure on the device")),
                    limit=limit.value, limit_source=limit.source)
            figure, unit, what = envelope.value, "W", "projected power (the chip's rated envelope, an upper bound)"
            method, figures = f"the chip's power envelope ({envelope.source})", {"watts": envelope.value}
        else:
            calibrated = self._roofline(cell.precision)
            projection = project(self.artifact(cell).card.onnx, calibrated.roofline)
            if metric == "latency":
                figure, unit, what = projection.latency_ms, "ms", "projected latency"
                method, figures = projection.latency_method, {"projected_ms": figure}
                if self._is_calibration_point(cell, calibrated.baseline):
                    what = "projected latency (the calibration point: the article's own figure, not a prediction)"
                    figures["calibration_point"] = True
            else:
                figure, unit, what = projection.memory_mb, "MB", "projected memory"
                method, figures = projection.memory_method, {"peak_mb": figure}
        verdict = judge(what, figure, unit, limit)
        verdict = Verdict(verdict.status, f"{verdict.message} [{PROJECTION_CAVEAT}]")
        return Record(cell, metric, verdict, "projected", f"{method}; {PROJECTION_CAVEAT}", limit.value, limit.source,
                      figures | {"known_error": PROJECTION_ERROR})

    def _roofline(self, precision: str) -> CalibratedRoofline:
        """The target's roofline for `precision`, calibrated on the article's baseline where the profile has one."""
        def reference(baseline: ArticleBaseline) -> Path:
            card = reference_model(baseline.zoo_model, baseline.input_size, class_names(baseline.zoo_model,
                                                                                        self.dataset))
            context = PassContext(card, self._split_for(card, "calibration"), self.dataset.fingerprint)
            self.progress(f"calibrating {self.options.platform.name} {precision} on {baseline.model} "
                          f"({baseline.after_ms:g} ms in the article)")
            return build_artifact(card, parse_recipe(precision), context).card.onnx
        return self._once(("roofline", precision),
                          lambda: calibrated_roofline(self.options.platform, precision, reference))

    def _is_calibration_point(self, cell: Cell, baseline: ArticleBaseline | None) -> bool:
        return (baseline is not None and cell.model == baseline.zoo_model and cell.recipe == cell.precision
                and self.source_card(cell.model).input.size == baseline.input_size)

    def _latency(self, cell: Cell) -> Record:
        run = self._latency_run(cell)
        stats = LatencyStats.from_samples(run.samples_ms)
        limit = self.options.requirements.latency_ms
        if stats.p99_ucb_ms is None:
            raise NcapError(f"{stats.n} latency samples are too few for a 95 % bound on p99 (needs 299); "
                            "raise --ncap-min-runs")
        verdict = judge("latency p99 (upper 95 % bound)", stats.p99_ucb_ms, "ms", limit)
        method = self._where(self.options.latency_plan.describe())
        settings = self._runner_settings(cell)
        # a board is identified by its address and runtime settings; the host by its CPU and versions
        machine = {"device": str(self.options.device), **settings} if self.options.device else \
            machine_fingerprint(self.options.threads)
        spread = InputSpread.from_samples(run.samples_ms, run.input_index)
        return Record(cell, "latency", verdict, self._grade, method, limit.value, limit.source,
                      {**dataclasses.asdict(stats), "settings": settings, "samples_ms": sample_summary(run.samples_ms),
                       "machine": machine, "timing_inputs": spread.inputs, "timing_order_seed": TIMING_ORDER_SEED,
                       "fastest_decile_p50_ms": spread.fastest_decile_p50_ms,
                       "slowest_decile_p50_ms": spread.slowest_decile_p50_ms})

    def _memory(self, cell: Cell) -> Record:
        artifact = self.artifact(cell)
        reading = self._device_run(cell).memory if self.options.device is not None else self._probe(artifact.card)
        limit = self.options.requirements.memory_mb
        verdict = judge("peak memory", reading.peak_mb, "MB", limit)
        figures = {"peak_mb": reading.peak_mb, "loaded_mb": reading.loaded_mb, "baseline_mb": reading.baseline_mb,
                   "probes_mb": reading.probes_mb, "model_size_bytes": artifact.manifest["size_bytes"]}
        return Record(cell, "memory", verdict, self._grade, reading.method, limit.value, limit.source, figures)

    def _power(self, cell: Cell) -> Record:
        reading = self._latency_run(cell).power
        limit = self.options.requirements.power_w
        if reading is None:
            reason = (f"no power meter was named for {self.options.device}; pass --ncap-power-meter SPEC, read on "
                      "the board" if self.options.device else
                      f"no power meter here (no readable powercap/RAPL) and {cell.platform}'s profile gives no "
                      "per-core power to estimate from")
            return Record(cell, "power", Verdict("skip", reason), limit=limit.value, limit_source=limit.source)
        figures = {"watts": reading.watts, "joules": reading.joules, "window_s": reading.seconds}
        verdict = judge("average power", reading.watts, "W", limit)
        if reading.grade == "estimated" and not self.options.assert_estimates:
            verdict = Verdict("skip", (
                f"power {reading.watts:.3g} W is only an estimate ({reading.method}); a host CPU estimate "
                "says nothing about a 5 W car chip. Use --ncap-assert-estimates to assert it anyway"))
        return Record(cell, "power", verdict, reading.grade, reading.method, limit.value, limit.source, figures)

    def _accuracy(self, cell: Cell) -> Record:
        if self.source_card(cell.model).output.kind == "detections":
            return Record(cell, "accuracy", Verdict("skip", (
                f"{cell.model} is a detector: its accuracy is mAP on labelled boxes, and {self.dataset.name} has none "
                "(the embedded data labels driver states); run with a detection set to measure it")))
        top1 = self.top1(cell)
        figures: dict[str, Any] = {"accuracy": top1, "evaluation_images": len(self.dataset.evaluation)}
        method = self._where(f"top-1 on the evaluation split of {self.dataset.name} "
                             f"({len(self.dataset.evaluation)} images), run with {self.options.platform.runtime.name}")
        if is_reference(cell.recipe):
            return Record(cell, "accuracy", Verdict("skip", (
                f"FP32 is the reference the other precisions' drops are measured against (top-1 {top1:.2%})")),
                self._grade, method, figures=figures)
        reference = self.top1(Cell(cell.model, REFERENCE_RECIPE, cell.platform))
        drop_pt = (reference - top1) * 100
        figures |= {"reference_accuracy": reference, "drop_pt": drop_pt}
        limit = self._accuracy_limit(cell)
        if limit is None:
            raise NcapError(f"no accuracy-drop limit for {cell.precision}; add accuracy_drop_pt.{cell.precision} "
                            "to the requirements file")
        verdict = judge(f"top-1 drop vs FP32 ({reference:.2%} -> {top1:.2%})", drop_pt, "pt", limit)
        for step in self.artifact(cell).manifest["steps"]:  # a mixed-precision search explains its choice
            figures |= {key: step["did"][key] for key in ("sensitivity", "assignment") if key in step["did"]}
        return Record(cell, "accuracy", verdict, self._grade, method, limit.value, limit.source, figures)

    def _accuracy_limit(self, cell: Cell) -> Limit | None:
        """A recipe that was given its own accuracy budget (mixed:0.5) is held to it; others to their precision's."""
        budget = getattr(parse_recipe(cell.recipe)[-1], "accuracy_budget_pt", None)
        if budget is not None:
            return Limit(value=budget, source=f"the accuracy budget the recipe {cell.recipe!r} was asked for")
        return self.options.requirements.accuracy_drop_pt.get(cell.precision)

    def _regression(self, cell: Cell) -> Record:
        baseline = self.options.baseline
        if baseline is None:
            return Record(cell, "regression", Verdict("skip", "no baseline to compare with; pass --ncap-baseline FILE"))
        current = gated_figures(self._record(metric, cell).figures for metric in ("latency", "memory", "accuracy"))
        stored = baseline.cells.get(cell.id)
        # With the baseline's own artifact at hand, latency is compared on the two timed in alternation now, not
        # on samples stored from another moment: a baseline saved in a slow spell hid a 1.14x slow-down in 19 of 20
        # runs of benchmarks/gate_quality.py, and one saved in a fast spell raises false alarms.
        paired = self._time_beside_baseline(cell, stored) if stored and "samples_ms" in current else None
        if paired is not None:
            stored, current = {**stored, "samples_ms": paired[0]}, {**current, "samples_ms": paired[1]}
        second_look = SecondLook(lambda: self._remeasure(cell, stored), lambda: self._reprobe(cell, stored))
        verdict, figures = regression_verdict(cell.id, stored, current, self.options.gate, second_look)
        latency = ("latency of the baseline's artifact and this one timed in alternation in this run (ONNX Runtime "
                   "workers not spinning, for both)" if paired
                   else "latency against the baseline's stored samples")
        method = f"against baseline {baseline.path} ({baseline.created}); {latency}; {self.options.gate.describe()}"
        return Record(cell, "regression", verdict, self._grade, method,
                      figures={**figures, "baseline_sha256": baseline.sha256})

    # --- shared work, done once --------------------------------------------------------------
    def trained(self, model: str) -> TrainedModel:
        return self._once(("trained", model), _heavy(lambda: trained_model(model, self.dataset, self.progress)))

    def user_card(self, model: str) -> ModelCard | None:
        """The card the user brought for `model`; None for a zoo model."""
        return next((c for c in self.cards.values() if c and c.name == model), None)

    def source_card(self, model: str) -> ModelCard:
        return self.user_card(model) or self.trained(model).card

    def artifact(self, cell: Cell) -> Artifact:
        def build() -> Artifact:
            card = self.source_card(cell.model)
            trained = None if self.user_card(cell.model) else self.trained(cell.model)
            context = PassContext(card, self._split_for(card, "calibration"), self.dataset.fingerprint,
                                  self.dataset, trained)
            return build_artifact(card, parse_recipe(cell.recipe), context)
        return self._once(("artifact", cell.model, cell.recipe), _heavy(build))

    def top1(self, cell: Cell) -> float:
        def evaluate() -> float:
            card = self.artifact(cell).card
            if self.options.device is not None:
                run = self._device_run(cell)
                return accuracy.top1_of_predictions(run.top1, run.score_shapes, card,
                                                    self._split_for(card, "evaluation"))
            with self.runner(card) as runner:
                return accuracy.top1(runner, card, self._split_for(card, "evaluation"))
        return self._once(("top1", cell.model, cell.recipe), _heavy(evaluate))

    def latency_samples(self, cell: Cell) -> np.ndarray | None:
        """The samples (ms) the cell's latency was judged on; None where it was projected, not timed."""
        key = ("latency-run", cell.id)
        return self._memo[key].samples_ms if isinstance(self._memo.get(key), LatencyRun) else None

    def _latency_run(self, cell: Cell) -> LatencyRun:
        def run() -> LatencyRun:
            if self.options.device is not None:
                return self._device_run(cell).latency_run()
            return self._time_cell(cell)
        return self._once(("latency-run", cell.id), run)

    def _remeasure(self, cell: Cell, stored: dict[str, Any]) -> tuple[list[float], list[float]]:
        """The gate's second look at a slow-down: the baseline's own artifact and the current one timed in
        alternation again; without it, a new timing of the current artifact only (no new baseline samples)."""
        return self._time_beside_baseline(cell, stored) or ([], sample_summary(self._time_cell(cell).samples_ms))

    def _time_beside_baseline(self, cell: Cell, stored: dict[str, Any]) -> tuple[list[float], list[float]] | None:
        """The baseline's artifact and the current one timed in alternating blocks; None where this machine's cache
        no longer has the baseline's artifact, or on a board."""
        before = self._baseline_card(cell, stored)
        if before is None:
            return None
        current, inputs = self.artifact(cell).card, self.timing_inputs(before)
        self.progress(f"timing {cell.id} beside the baseline's artifact")
        with quiet.timing():
            return time_beside_baseline(self.runner, before, current, inputs, self.options.latency_plan)

    def _reprobe(self, cell: Cell, stored: dict[str, Any]) -> tuple[float, float]:
        """The gate's second look at a memory growth: fresh probes of the baseline's artifact and the current one;
        without it, fresh probes (or a new board run) of the current artifact beside the stored peak."""
        current = (self._run_on_device(cell).memory.peak_mb if self.options.device is not None
                   else self._probe(self.artifact(cell).card).peak_mb)
        before = self._baseline_card(cell, stored)
        if before is None:
            return stored["peak_mb"], current
        self.progress(f"confirming the memory growth of {cell.id}: probing the baseline's artifact beside it")
        return self._probe(before).peak_mb, current

    def _baseline_card(self, cell: Cell, stored: dict[str, Any]) -> ModelCard | None:
        """The cell's card with the baseline's own artifact, found in this machine's cache by its sha256; None on a
        board (it runs what the job sends) or where the cache no longer has it."""
        before = None if self.options.device is not None else cached_artifact(stored.get("artifact_sha256"))
        return None if before is None else self.artifact(cell).card.model_copy(update={"onnx": before})

    def _time_cell(self, cell: Cell) -> LatencyRun:
        """A fresh timing of the cell's artifact (new session, or a new run on the board): the latency run,
        and the regression gate's confirmation of a slow-down."""
        if self.options.device is not None:
            return self._run_on_device(cell).latency_run()
        card = self.artifact(cell).card
        inputs, meter = self.timing_inputs(card), meter_for(self.options.platform, self.options.power_meter)
        with quiet.timing(), self.runner(card) as runner:
            return time_inferences(runner, inputs, self.options.latency_plan, meter)

    def _probe(self, card: ModelCard) -> memory.MemoryReading:
        return memory.measure_peak_memory(card.onnx, self.timing_inputs(card)[:1], input_name=card.input.name,
                                          output_name=card.output.name, provider=self._provider,
                                          threads=self.options.threads)

    def _device_run(self, cell: Cell) -> DeviceRun:
        """The cell's artifact run once on the board: timing, power, peak memory and the evaluation split."""
        return self._once(("device-run", cell.id), lambda: self._run_on_device(cell))

    def _run_on_device(self, cell: Cell) -> DeviceRun:
        card = self.artifact(cell).card
        evaluation = self._split_for(card, "evaluation")
        job = DeviceJob(card.onnx, preprocess.to_tensor(evaluation.images, card.input), self._timing_order(card),
                        self.options.platform.runtime, cell.precision, self.options.threads,
                        self.options.latency_plan, self.options.power_meter, card.input.name, card.output.name,
                        self.options.denormals_as_zero)
        self.progress(f"running {cell.id} on {self.options.device}")
        return run_on_device(self.options.device, job)

    @property
    def _grade(self) -> str:
        return DEVICE_GRADE if self.options.device is not None else HOST_GRADE

    def _where(self, method: str) -> str:
        return f"{method}; on the board {self.options.device}" if self.options.device is not None else method

    @property
    def _provider(self) -> str:
        return self.options.platform.runtime.execution_provider or "CPUExecutionProvider"

    def runner(self, card: ModelCard, spinning: bool = True) -> OnnxRuntimeRunner:
        return OnnxRuntimeRunner(card.onnx, input_name=card.input.name, output_name=card.output.name,
                                 provider=self._provider, threads=self.options.threads, spinning=spinning,
                                 denormals_as_zero=self.options.denormals_as_zero)

    def _runner_settings(self, cell: Cell) -> dict[str, Any]:
        card = self.artifact(cell).card
        settings = self._device_run(cell).settings if self.options.device is not None else self.runner(card).settings
        return settings | {"input": f"{card.input.layout} {card.input.channels}x"
                                           f"{card.input.size[0]}x{card.input.size[1]}"}

    def _timing_order(self, card: ModelCard) -> np.ndarray:
        """Which evaluation images are timed, in which order: a seeded random order of the whole split, cut to
        what fits TIMING_INPUTS_BYTES once preprocessed."""
        count = len(self._split_for(card, "evaluation").images)
        per_input = 4 * card.input.channels * card.input.size[0] * card.input.size[1]
        return np.random.default_rng(TIMING_ORDER_SEED).permutation(count)[:max(1, TIMING_INPUTS_BYTES // per_input)]

    def timing_inputs(self, card: ModelCard) -> np.ndarray:
        """The batch-1 inputs timed for latency, stacked in timing order: preprocessed once, held in memory."""
        def preprocessed() -> np.ndarray:
            images = self._split_for(card, "evaluation").images
            return preprocess.to_tensor([images[i] for i in self._timing_order(card)], card.input)
        return self._once(("timing-inputs", card.input.model_dump_json()), preprocessed)

    def _split_for(self, card: ModelCard, split: str) -> ImageSet:
        """A split with its labels renumbered into the card's class order (names must match); a detector
        takes the images only."""
        if card.output.kind == "detections":
            return getattr(self.dataset, split)
        missing = [name for name in self.dataset.classes if name not in card.classes]
        if missing:
            raise NcapError(f"dataset classes {missing} are not among {card.name}'s classes {list(card.classes)}; "
                            "rename the dataset folders or fix `classes` in the model card")
        images = getattr(self.dataset, split)
        order = np.array([card.classes.index(name) for name in self.dataset.classes])
        return ImageSet(images.images, order[images.labels])

    def _once(self, key: tuple[str, ...], compute: Callable[[], Any]) -> Any:
        """Memoise a result or the error that prevented it, so a failed step is not retried per test. Any
        exception becomes an NcapError with its type, so it is recorded like the others and the run goes on."""
        if key not in self._memo:
            try:
                self._memo[key] = compute()
            except NcapError as exc:
                self._memo[key] = exc
            except Exception as exc:  # a defect or a third-party failure: an error record, never a lost figure
                detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "no message"
                self._memo[key] = NcapError(f"unexpected {type(exc).__name__}: {detail}")
                self._memo[key].__cause__ = exc
        if isinstance(self._memo[key], NcapError):
            raise self._memo[key]
        return self._memo[key]

    def _write_once(self, record: Record, test_id: str | None) -> None:
        if (record.metric, record.cell.id) not in self._written:
            self._written.add((record.metric, record.cell.id))
            self._write(record, test_id)

    def _write(self, record: Record, test_id: str | None) -> None:
        cell = record.cell
        artifact = self._memo.get(("artifact", cell.model, cell.recipe))
        self.store.append({
            "run_id": self.run_id, "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cell": cell.id, "model": cell.model, "precision": cell.precision, "platform": cell.platform,
            "recipe": cell.recipe, "metric": record.metric, "verdict": record.verdict.status,
            "message": record.verdict.message, "grade": record.grade, "method": record.method,
            "limit": record.limit, "limit_source": record.limit_source,
            "artifact_sha256": artifact.sha256 if isinstance(artifact, Artifact) else None,
            **({key: artifact.manifest.get(key) for key in ARTIFACT_FIGURES} if isinstance(artifact, Artifact) else {}),
            "dataset": self.dataset.name if "dataset" in self.__dict__ else None,
            "dataset_sha256": self.dataset.fingerprint if "dataset" in self.__dict__ else None,
            "test_id": test_id,
            **record.figures,
        })


def _heavy(compute: Callable[[], Any]) -> Callable[[], Any]:
    """`compute` holding the machine's shared lock: no other worker times while it runs (harness.measure.quiet)."""
    def run() -> Any:
        with quiet.computing():
            return compute()
    return run


def _resolve_card(spec: str) -> ModelCard | None:
    """None for a zoo name, the parsed card for a path; anything else is an NcapError."""
    if spec in zoo.ZOO:
        return None
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_card(path)
    raise NcapError(f"--model {spec!r} is neither a zoo model ({', '.join(zoo.ZOO)}) nor a model card file")

