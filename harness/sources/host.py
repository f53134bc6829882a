"""The host: a runtime on this machine times, probes and predicts the cell's artifact."""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.cell import Cell
from harness.gate.baseline import machine_fingerprint, sample_summary
from harness.gate.compare import SecondLook
from harness.gate.paired import time_beside_baseline
from harness.measure import accuracy, quiet
from harness.measure.audit import SelfAudit, repeated_input_speed, spot_rows, timed_outputs_agree
from harness.measure.latency import LatencyRun, time_inferences
from harness.measure.memory import measure_peak_memory
from harness.measure.meters import meter_for
from harness.models.card import ModelCard
from harness.optimize.recipe import cached_artifact
from harness.runtimes.base import Runner
from harness.runtimes.registry import RunnerSpec, open_runner
from harness.sources.base import Evidence
from harness.sources.measured import input_wording, latency_evidence, memory_evidence, power_evidence
from harness.workspace import Workspace

GRADE = "host-measured"


class HostSource:
    def __init__(self, run: Workspace) -> None:
        self.run, self.options = run, run.options

    def runner(self, card: ModelCard, spinning: bool = True) -> Runner:
        return open_runner(card.onnx, self._spec(card, spinning))

    def _spec(self, card: ModelCard, spinning: bool = True) -> RunnerSpec:
        """The profile's runtime, opened with the run's settings."""
        runtime = self.options.platform.runtime
        return RunnerSpec(runtime.name, self.options.threads, runtime.execution_provider or "CPUExecutionProvider",
                          card.input.name, card.output.name, spinning, self.options.denormals_as_zero,
                          runtime.delegate)

    def latency(self, cell: Cell) -> Evidence:
        card = self.run.artifact(cell).card
        settings = self.runner(card).settings | {"input": input_wording(card)}
        return latency_evidence(self._timed(cell), GRADE, self.options.latency_plan.describe(), settings,
                                machine_fingerprint(self.options.threads))

    def latency_samples(self, cell: Cell) -> np.ndarray | None:
        timed = self.run.memo.get(("latency-run", cell.id))
        return timed.samples_ms if isinstance(timed, LatencyRun) else None

    def memory(self, cell: Cell) -> Evidence:
        artifact = self.run.artifact(cell)
        return memory_evidence(self._probe(artifact.card), GRADE, artifact.manifest["size_bytes"])

    def power(self, cell: Cell) -> Evidence:
        return power_evidence(self._timed(cell).power, (
            f"no power meter here (no readable powercap/RAPL) and {cell.platform}'s profile gives no per-core "
            "power to estimate from"))

    def top1(self, cell: Cell) -> Evidence:
        def evaluate() -> float:
            card = self.run.artifact(cell).card
            with self.runner(card) as runner:
                return accuracy.top1(runner, card, self.run.split_for(card, "evaluation"))
        images = len(self.run.dataset.evaluation)
        return Evidence(self.run.once(("top1", cell.model, cell.recipe), evaluate, heavy=True), "top-1", GRADE,
                        f"top-1 on the evaluation split of {self.run.dataset.name} ({images} images), run with "
                        f"{self.options.platform.runtime.name}")

    def audit(self, cell: Cell) -> SelfAudit:
        """TEST01 on the outputs kept from the timed runs, and TEST04 timed now."""
        timed, card = self._timed(cell), self.run.artifact(cell).card
        inputs = self.run.timing_inputs(card)
        with self.runner(card) as reference:
            outputs = timed_outputs_agree(timed.outputs, lambda row: reference.infer(inputs[row:row + 1]))
        with quiet.timing(), self.runner(card) as runner:
            return SelfAudit((outputs, repeated_input_speed(runner, inputs)), GRADE)

    def paired_timing(self, cell: Cell, stored: dict[str, Any]) -> tuple[list[float], list[float]] | None:
        """The baseline's artifact (found in this machine's cache by its sha256) and the cell's, timed in
        alternation now; None where the cache no longer has it."""
        before = self._baseline_card(cell, stored)
        if before is None:
            return None
        current, inputs = self.run.artifact(cell).card, self.run.timing_inputs(before)
        self.run.progress(f"timing {cell.id} beside the baseline's artifact")
        with quiet.timing():
            return time_beside_baseline(self.runner, before, current, inputs, self.options.latency_plan)

    def second_look(self, cell: Cell, stored: dict[str, Any]) -> SecondLook:
        def remeasure() -> tuple[list[float], list[float]]:
            return self.paired_timing(cell, stored) or ([], sample_summary(self._time(cell).samples_ms))

        def reprobe() -> tuple[float, float]:
            current = self._probe(self.run.artifact(cell).card).peak_mb
            before = self._baseline_card(cell, stored)
            if before is None:
                return stored["peak_mb"], current
            self.run.progress(f"confirming the memory growth of {cell.id}: probing the baseline's artifact beside it")
            return self._probe(before).peak_mb, current
        return SecondLook(remeasure, reprobe)

    def _timed(self, cell: Cell) -> LatencyRun:
        return self.run.once(("latency-run", cell.id), lambda: self._time(cell))

    def _time(self, cell: Cell) -> LatencyRun:
        """A fresh timing of the cell's artifact, holding the machine's timing lock."""
        card = self.run.artifact(cell).card
        inputs, meter = self.run.timing_inputs(card), meter_for(self.options.platform, self.options.power_meter)
        with quiet.timing(), self.runner(card) as runner:
            return time_inferences(runner, inputs, self.options.latency_plan, meter,
                                   keep_outputs=spot_rows(len(inputs)))

    def _probe(self, card: ModelCard):
        return measure_peak_memory(card.onnx, self.run.timing_inputs(card)[:1], self._spec(card))

    def _baseline_card(self, cell: Cell, stored: dict[str, Any]) -> ModelCard | None:
        before = cached_artifact(stored.get("artifact_sha256"))
        return None if before is None else self.run.artifact(cell).card.model_copy(update={"onnx": before})
