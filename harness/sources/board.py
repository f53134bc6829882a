"""A board (`--device ssh://...`, or one taken from a labgrid pool with `labgrid://...`): the cell's artifact runs
there once, and every figure is the board's."""
from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from harness import cache
from harness.cell import Cell
from harness.device.address import DeviceAddress
from harness.device.lab import LabAddress, LabLease
from harness.device.remote import DeviceJob, DeviceRun, run_on_device
from harness.gate.baseline import sample_summary
from harness.gate.compare import SecondLook
from harness.measure import accuracy
from harness.measure.audit import SelfAudit
from harness.models import preprocess
from harness.platform import Runtime
from harness.project.kernels import kernels_from_profile
from harness.project.predictor import PredictorRecord, Sample, add_samples, predictor_path
from harness.runtimes.qnn.context import CompiledContext
from harness.runtimes.qnn.runner import EP_NAME
from harness.sources.base import Evidence
from harness.sources.measured import input_wording, latency_evidence, memory_evidence, power_evidence
from harness.sources.numerics import target_numerics
from harness.sources.qnn_htp import QnnHtp
from harness.workspace import Workspace

GRADE = "measured"  # on the target itself


class BoardSource:
    def __init__(self, run: Workspace) -> None:
        self.run, self.options = run, run.options
        device = self.options.device
        self.lease = LabLease(device, run.progress) if isinstance(device, LabAddress) else None

    @property
    def where(self) -> str:
        held = self.lease.held if self.lease else None
        board = f"{held.board} (labgrid place {held.place})" if held else self.options.device
        return f"on the board {board}"

    def board(self) -> DeviceAddress:
        """The board's SSH address; from a labgrid pool, the place is taken now (once) and held until `release`."""
        return self.lease.acquire().board if self.lease else self.options.device

    def ran_on(self) -> dict[str, str]:
        """For each stored record: the board that ran the cell, and its labgrid place (none before one is held)."""
        if self.lease is None:
            return {"board": str(self.options.device)}
        held = self.lease.held
        return {"board": str(held.board), "lab_place": held.place, "lab_acquired_at": held.acquired_at} if held else {}

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()

    def latency(self, cell: Cell) -> Evidence:
        board = self._board_run(cell)
        card = self.run.artifact(cell).card
        settings = board.settings | {"input": input_wording(card)}
        # a board is identified by its address and runtime settings; the files it ran are recorded beside them
        machine = {"device": str(self.options.device), **settings}
        settings |= {"shipped_sha256": {path.name: cache.file_sha256(path) for path in self._shipped(cell)}}
        method = f"{self.options.latency_plan.describe()}; {self.where}{self._shipped_wording(cell)}"
        return latency_evidence(board.latency_run(), GRADE, method, settings, machine)

    def latency_samples(self, cell: Cell) -> np.ndarray | None:
        board = self.run.memo.get(("board-run", cell.id))
        return np.asarray(board.samples_ms) if isinstance(board, DeviceRun) else None

    def memory(self, cell: Cell) -> Evidence:
        shipped_bytes = sum(path.stat().st_size for path in self._shipped(cell))  # a QNN context is two files
        return memory_evidence(self._board_run(cell).memory, GRADE, shipped_bytes)

    def power(self, cell: Cell) -> Evidence:
        return power_evidence(self._board_run(cell).power, (
            f"no power meter was named for {self.options.device}; pass --ncap-power-meter SPEC, read on the board"))

    def top1(self, cell: Cell) -> Evidence:
        card, board = self.run.artifact(cell).card, self._board_run(cell)
        evaluation = self.run.split_for(card, "evaluation")
        top1 = accuracy.top1_of_predictions(board.top1, board.score_shapes, card, evaluation, board.nonfinite_scores)
        return Evidence(top1, "top-1", GRADE, f"top-1 on the evaluation split of {self.run.dataset.name} "
                                              f"({len(evaluation)} images), run with "
                                              f"{board.settings.get('runtime', self.options.platform.runtime.name)}"
                                              f"{self._shipped_wording(cell)}; {self.where}")

    def audit(self, cell: Cell) -> SelfAudit:
        return SelfAudit(reason="the board agent does not yet return the outputs of its timed runs, so the timing "
                                "on a board is not self-audited")

    def paired_timing(self, cell: Cell, stored: dict[str, Any]) -> None:
        return None  # the board runs what the job sends: the baseline's artifact is not shipped beside it

    def second_look(self, cell: Cell, stored: dict[str, Any]) -> SecondLook:
        """A new board run of the current artifact, judged against the stored figures."""
        return SecondLook(lambda: ([], sample_summary(np.asarray(self._run(cell).samples_ms))),
                          lambda: (stored["peak_mb"], self._run(cell).memory.peak_mb))

    def _board_run(self, cell: Cell) -> DeviceRun:
        """The cell's artifact run once on the board: timing, power, peak memory and the evaluation split."""
        return self.run.once(("board-run", cell.id), lambda: self._run(cell))

    def _run(self, cell: Cell) -> DeviceRun:
        card = self.run.artifact(cell).card
        evaluation = self.run.split_for(card, "evaluation")
        model, *companions = self._shipped(cell)
        job = DeviceJob(model, preprocess.to_tensor(evaluation.images, card.input), self.run.timing_order(card),
                        self.options.platform.runtime, cell.precision, self.options.threads,
                        self.options.latency_plan, self.options.power_meter, card.input.name, card.output.name,
                        self.options.denormals_as_zero, companions=tuple(companions))
        context = self._context(cell)
        if context is not None:  # the board runs exactly the context whose placement and SoC were checked here
            job = dataclasses.replace(job, soc_model=context.manifest["soc"]["value"],
                                      runtime=Runtime(name="onnxruntime-qnn", execution_provider=EP_NAME))
        board = self.board()
        self.run.progress(f"running {cell.id} on {board}")
        result = run_on_device(board, job)
        self._add_layers(cell, result)
        return result

    def _add_layers(self, cell: Cell, board: DeviceRun) -> None:
        """The run's per-layer profile joins the platform's latency predictor: every board run adds samples of the
        board's own kernels, so a lab with one board screens more models (docs/latency-prediction.md)."""
        if board.layers is None or not board.samples_ms:
            return
        graph = onnx.load_from_string(base64.b64decode(board.layers["graph"])).graph
        kernels = kernels_from_profile(graph, board.layers["events"], skip_runs=board.layers["warmup"])
        sample = Sample({"network": cell.id, "sha256": self.run.artifact(cell).sha256},
                        float(np.median(board.samples_ms)), kernels)
        platform = self.options.platform.name
        record = PredictorRecord(platform, str(self.options.device), board.settings.get("runtime", "onnxruntime"),
                                 self.options.threads, datetime.now(UTC).isoformat(timespec="seconds"), 0.0, {})
        add_samples(predictor_path(platform), [sample], record, cell.id)

    def _shipped(self, cell: Cell) -> list[Path]:
        """The files the board is sent, the model first: the context compiled for a Qualcomm SoC, the `.tflite` on
        a LiteRT profile, else the ONNX artifact."""
        context = self._context(cell)
        return [context.onnx, context.binary] if context is not None else [self.run.deployed_model(cell)]

    def _context(self, cell: Cell) -> CompiledContext | None:
        """The cell compiled for the profile's Qualcomm SoC, where .[qnn] is installed and the cell is quantised."""
        numerics = target_numerics(self.run)
        return numerics.context(cell) if isinstance(numerics, QnnHtp) and cell.precision == "int8" else None

    def _shipped_wording(self, cell: Cell) -> str:
        context = self._context(cell)
        return "" if context is None else (f", the context compiled for {context.manifest['soc']['soc_type']} "
                                           f"(context_qnn.bin sha256 {context.manifest['files'][context.binary.name]})")
