"""One compliance run: which cells exist, and each figure measured once, judged, and recorded at once.

A cell is (model, recipe, platform); a recipe's last step is its precision. The run picks one figure source
(harness.sources) and asks it for each metric; harness.metrics judges the evidence against the limit; the
record goes to the results store the moment it exists (pass, fail, skip or error alike) and to the test that
asserts it.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import numpy as np

from harness import metrics
from harness.catalog import is_requirement
from harness.cell import Cell, Record, RunOptions
from harness.errors import NcapError
from harness.results.record import StoredRecord, stored
from harness.results.store import ResultsStore
from harness.runtimes.registry import RunnerSpec, open_runner
from harness.scenarios import run as scenarios
from harness.sources.base import FigureSource
from harness.sources.board import BoardSource
from harness.sources.host import HostSource
from harness.sources.numerics import target_placement
from harness.sources.projection import ProjectionSource
from harness.verdict import Verdict
from harness.workspace import Workspace

# what every record carries about its artifact (from the manifest): size and complexity before/after the recipe
ARTIFACT_FIGURES = ("size_bytes", "params_before", "params_after", "macs_before", "macs_after")


def choose_source(workspace: Workspace) -> FigureSource:
    """A board when one is named, the host runtime on the host, else a projection onto the target."""
    if workspace.options.device is not None:
        return BoardSource(workspace)
    return HostSource(workspace) if workspace.options.platform.kind == "host" else ProjectionSource(workspace)


class ComplianceRun:
    def __init__(self, options: RunOptions, progress: Callable[[str], None] = print, run_id: str | None = None) -> None:
        self.options, self.progress = options, progress
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.store = ResultsStore(options.report_dir / "results.jsonl")
        self.workspace = Workspace(options, progress)
        self.source = choose_source(self.workspace)
        self._written: set[tuple[str, str, str]] = set()
        self.protocol = scenarios.load_protocol(options.scenarios.protocol_file)
        # the scenario tests' ids: a bad protocol file or recording is a usage error now, before anything is measured
        self._scenario_states = scenarios.state_ids(self.protocol, options.scenarios)

    def cells(self) -> list[Cell]:
        return [Cell(self.workspace.model_name(spec), recipe, self.options.platform.name)
                for spec in self.options.models for recipe in self.options.recipes]

    def measure(self, metric: str, cell: Cell, test_id: str | None = None) -> Record:
        """The record of `metric` for `cell`, written once with the id of the test that asserts it;
        an error is recorded as such, then raised."""
        try:
            record = self._record(metric, cell)
        except NcapError as exc:  # a board lost part-way hands over what it measured (DeviceRunError.figures)
            self._write_once(Record(cell, metric, Verdict("error", str(exc)), figures=getattr(exc, "figures", {})),
                             test_id)
            raise
        self._write_once(record, test_id)
        return record

    def release_board(self) -> None:
        """Hand back a board taken from a labgrid pool; a no-op for any other source."""
        if isinstance(self.source, BoardSource):
            self.source.release()

    def scenario_states(self) -> list[str]:
        """The scenario tests' ids: every scripted protocol state, then each user recording."""
        return self._scenario_states

    def scenario(self, cell: Cell, state: str, test_id: str | None = None) -> Record:
        """The record of one protocol state for `cell`; the cell's states are played together, once."""
        try:
            if cell.precision not in self.options.platform.precisions:
                record = self._judge("scenario", cell)
                record.figures["state"] = state
            else:
                latency = scenarios.cell_latency(self.source, cell)
                record = self.workspace.once(("scenarios", cell.id), lambda: scenarios.scenario_records(
                    cell, self.protocol, self.options.scenarios, lambda: self._classifier(cell), latency,
                    self._classifier_wording(), self.progress), heavy=True)[state]
                record = self._insist_on_measured(record)
        except NcapError as exc:
            record = Record(cell, "scenario", Verdict("error", str(exc)), figures={"state": state})
            self._write_once(record, test_id)
            raise
        self._write_once(record, test_id)
        return record

    def _classifier(self, cell: Cell):
        """The cell's artifact on the host's runtime (the profile's on the host; ONNX Runtime's CPU provider for
        a target: its toolchain's arithmetic is not emulated here)."""
        card = self.workspace.artifact(cell).card
        if isinstance(self.source, HostSource):
            runner = self.source.runner(card)
        else:
            runner = open_runner(card.onnx, RunnerSpec("onnxruntime", self.options.threads, "CPUExecutionProvider",
                                                       card.input.name, card.output.name))
        return scenarios.classifying(runner, card)

    def _classifier_wording(self) -> str:
        runtime = self.options.platform.runtime
        if isinstance(self.source, HostSource):
            return f"per-frame states from the cell's artifact on {runtime.name} here"
        on_target = f"{runtime.name} ({runtime.execution_provider})" if runtime.execution_provider else runtime.name
        return (f"per-frame states from the cell's artifact on ONNX Runtime (CPU) on the host, not {on_target} on "
                "the target (the target's arithmetic is not emulated)")

    def latency_samples(self, cell: Cell) -> np.ndarray | None:
        """The samples (ms) the cell's latency was judged on; None where nothing was timed."""
        return self.source.latency_samples(cell)

    def _record(self, metric: str, cell: Cell) -> Record:
        def judged() -> Record:
            return self._insist_on_measured(self._judge(metric, cell))
        return self.workspace.once(("record", metric, cell.id), judged)

    def _judge(self, metric: str, cell: Cell) -> Record:
        if cell.precision not in self.options.platform.precisions:
            return Record(cell, metric, Verdict("skip", (
                f"{cell.platform} does not support {cell.precision} (its toolchain offers "
                f"{', '.join(self.options.platform.precisions)})")))
        source, options = self.source, self.options
        if metric == "accuracy":
            dataset = self.workspace.dataset
            return metrics.accuracy(cell, source, options, self.workspace.artifact(cell),
                                    self.workspace.source_card(cell.model).output.kind == "detections",
                                    dataset.name, len(dataset.evaluation), lambda: self.workspace.layer_drift(cell))
        if metric == "placement":
            return metrics.placement(cell, target_placement(self.workspace, cell), options)
        if metric == "regression":
            return metrics.regression(cell, source, options, lambda: [
                self._record(name, cell) for name in ("latency", "memory", "accuracy")])
        if metric == "audit":
            return metrics.audit(cell, source)
        per_metric = {"latency": metrics.latency, "memory": metrics.memory, "power": metrics.power}
        return per_metric[metric](cell, source, options)

    def _insist_on_measured(self, record: Record) -> Record:
        """--ncap-strict: a pass on anything but on-target evidence becomes a failure for insufficient evidence."""
        if (self.options.strict and record.verdict.status == "pass" and record.grade != "measured"
                and is_requirement(record.metric, record.cell.recipe, record.cell.platform)):
            record.verdict = Verdict("fail", f"insufficient evidence: {record.verdict.message}, but the figure is "
                                             f"{record.grade}; --ncap-strict accepts only measured (on-target) figures")
        return record

    def _write_once(self, record: Record, test_id: str | None) -> None:
        key = (record.metric, record.figures.get("state", ""), record.cell.id)
        if key not in self._written:
            self._written.add(key)
            self.store.append(self._stored(record, test_id))

    def _stored(self, record: Record, test_id: str | None) -> StoredRecord:
        cell, artifact = record.cell, self.workspace.built_artifact(record.cell)
        dataset = self.workspace.__dict__.get("dataset")  # None when the run stopped before it was made
        return stored({
            "run_id": self.run_id, "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cell": cell.id, "model": cell.model, "precision": cell.precision, "platform": cell.platform,
            "recipe": cell.recipe, "metric": record.metric, "verdict": record.verdict.status,
            "message": record.verdict.message, "grade": record.grade, "method": record.method,
            "limit": record.limit, "limit_source": record.limit_source,
            "artifact_sha256": artifact.sha256 if artifact else None,
            **({key: artifact.manifest.get(key) for key in ARTIFACT_FIGURES} if artifact else {}),
            "dataset": dataset.name if dataset else None, "dataset_sha256": dataset.fingerprint if dataset else None,
            "test_id": test_id, **(self.source.ran_on() if isinstance(self.source, BoardSource) else {}),
            **record.figures})
