"""A board (`--device ssh://...`): the cell's artifact runs there once, and every figure is the board's."""
from __future__ import annotations

from typing import Any

import numpy as np

from harness import cache
from harness.cell import Cell
from harness.device.remote import DeviceJob, DeviceRun, run_on_device
from harness.gate.baseline import sample_summary
from harness.gate.compare import SecondLook
from harness.measure import accuracy
from harness.models import preprocess
from harness.sources.base import Evidence
from harness.sources.measured import input_wording, latency_evidence, memory_evidence, power_evidence
from harness.workspace import Workspace

GRADE = "measured"  # on the target itself


class BoardSource:
    def __init__(self, run: Workspace) -> None:
        self.run, self.options = run, run.options
        self.where = f"on the board {self.options.device}"

    def latency(self, cell: Cell) -> Evidence:
        board = self._board_run(cell)
        card = self.run.artifact(cell).card
        settings = board.settings | {"input": input_wording(card)}
        # a board is identified by its address and runtime settings; the file it ran is recorded beside them
        machine, shipped = {"device": str(self.options.device), **settings}, self.run.deployed_model(cell)
        settings |= {"model": shipped.name, "model_sha256": cache.file_sha256(shipped)}
        return latency_evidence(board.latency_run(), GRADE, f"{self.options.latency_plan.describe()}; {self.where}",
                                settings, machine)

    def latency_samples(self, cell: Cell) -> np.ndarray | None:
        board = self.run.memo.get(("board-run", cell.id))
        return np.asarray(board.samples_ms) if isinstance(board, DeviceRun) else None

    def memory(self, cell: Cell) -> Evidence:
        return memory_evidence(self._board_run(cell).memory, GRADE, self.run.deployed_model(cell).stat().st_size)

    def power(self, cell: Cell) -> Evidence:
        return power_evidence(self._board_run(cell).power, (
            f"no power meter was named for {self.options.device}; pass --ncap-power-meter SPEC, read on the board"))

    def top1(self, cell: Cell) -> Evidence:
        card, board = self.run.artifact(cell).card, self._board_run(cell)
        evaluation = self.run.split_for(card, "evaluation")
        top1 = accuracy.top1_of_predictions(board.top1, board.score_shapes, card, evaluation, board.nonfinite_scores)
        return Evidence(top1, "top-1", GRADE, f"top-1 on the evaluation split of {self.run.dataset.name} "
                                              f"({len(evaluation)} images), run with "
                                              f"{self.options.platform.runtime.name}; {self.where}")

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
        # the file the profile's runtime loads: the .tflite on a LiteRT board, else the ONNX artifact
        job = DeviceJob(self.run.deployed_model(cell), preprocess.to_tensor(evaluation.images, card.input),
                        self.run.timing_order(card), self.options.platform.runtime, cell.precision,
                        self.options.threads, self.options.latency_plan, self.options.power_meter, card.input.name,
                        card.output.name, self.options.denormals_as_zero)
        self.run.progress(f"running {cell.id} on {self.options.device}")
        return run_on_device(self.options.device, job)
