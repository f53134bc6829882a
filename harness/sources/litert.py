"""LiteRT on the host: for a platform whose runtime is LiteRT (the i.MX 8), the `.tflite` the board would run is run
here with LiteRT's own kernels (XNNPACK on this CPU, its INT8 kernels for an INT8 artifact).

Its top-1 is the projected platform's accuracy, graded `host-measured`: the runtime's numerics, not the NPU's
(the VX delegate may round differently). Its latency, peak memory and file size are recorded beside the projection
under `host_litert`, never judged: this CPU is not the chip. ONNX Runtime's top-1 of the same recipe's ONNX artifact
is recorded beside the accuracy, so the two runtimes' INT8 can be compared.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from harness.catalog import REFERENCE_RECIPE
from harness.cell import Cell
from harness.errors import NcapError
from harness.measure import accuracy, quiet
from harness.measure.latency import time_inferences
from harness.measure.memory import measure_peak_memory
from harness.measure.stats import LatencyStats
from harness.optimize.litert import converter_installed
from harness.runtimes.registry import RunnerSpec, open_runner
from harness.sources.base import Evidence
from harness.workspace import Workspace

GRADE = "host-measured"
BESIDE = "host_litert"  # the record's key for what LiteRT measured here beside a projected figure
NOT_THE_CHIP = ("LiteRT on this host's CPU (XNNPACK), not the chip: recorded beside the projection, never judged "
                "against the limit; the chip's figure stays projected until a board is attached (--device)")


def litert_on_host(run: Workspace) -> LiteRTOnHost | None:
    """The entry for NUMERICS: platforms whose runtime is LiteRT."""
    return LiteRTOnHost(run) if run.options.platform.runtime.name == "litert" else None


class LiteRTOnHost:
    def __init__(self, run: Workspace) -> None:
        self.run, self.options = run, run.options

    def top1(self, cell: Cell) -> Evidence:
        missing = converter_installed()
        if missing:
            return Evidence(None, "top-1", None, None, reason=(
                f"accuracy on {cell.platform} is measured on its LiteRT artifact, and {missing}"))
        images = len(self.run.dataset.evaluation)
        value = self.run.once(("litert-top1", cell.model, cell.recipe), lambda: self._top1(cell), heavy=True)
        tflite = self.run.litert_artifact(cell)
        figures = {"litert_artifact": _described(tflite.manifest), **self._onnxruntime_beside(cell)}
        return Evidence(value, "top-1", GRADE, (
            f"top-1 on the evaluation split of {self.run.dataset.name} ({images} images) of the .tflite that ships "
            f"to the board ({tflite.precision}, {tflite.manifest['did']['tool']}), run through LiteRT's own kernels "
            "on the host CPU; the NPU delegate on the chip may round differently"), figures)

    def placement(self, cell: Cell) -> Evidence:
        return Evidence(None, "NPU placement", None, None, reason=(
            f"op placement on {cell.platform} is not checked on the host: the VX delegate that partitions the graph "
            "for the NPU runs only on the board"))

    def beside(self, cell: Cell, metric: str) -> dict[str, Any]:
        """The `.tflite`'s latency or peak memory measured here, for the record of a projected figure; where it
        cannot be measured, why."""
        if metric not in ("latency", "memory"):
            return {}
        missing = converter_installed()
        if missing:
            return {BESIDE: {"reason": missing}}
        try:
            measured = self._host_latency(cell) if metric == "latency" else self._host_memory(cell)
            return {BESIDE: {**measured, "grade": GRADE, "note": NOT_THE_CHIP,
                             "artifact": _described(self.run.litert_artifact(cell).manifest)}}
        except NcapError as exc:  # the projection stands; the accuracy test reports the conversion's error
            return {BESIDE: {"error": str(exc)}}

    def _spec(self) -> RunnerSpec:
        """LiteRT on the CPU: the chip's delegate is not on the host."""
        return RunnerSpec("litert", self.options.threads)

    def _top1(self, cell: Cell) -> float:
        card = self.run.source_card(cell.model)
        with open_runner(self.run.litert_artifact(cell).path, self._spec()) as runner:
            return accuracy.top1(runner, card, self.run.split_for(card, "evaluation"))

    def _onnxruntime_top1(self, cell: Cell) -> float:
        def evaluate() -> float:
            card = self.run.artifact(cell).card
            with open_runner(card.onnx, RunnerSpec("onnxruntime", self.options.threads)) as runner:
                return accuracy.top1(runner, card, self.run.split_for(card, "evaluation"))
        return self.run.once(("onnxruntime-top1", cell.model, cell.recipe), evaluate, heavy=True)

    def _onnxruntime_beside(self, cell: Cell) -> dict[str, Any]:
        """ONNX Runtime's top-1 of the same recipe's ONNX artifact (and its drop vs its own FP32), host-measured."""
        figures: dict[str, Any] = {"onnxruntime_accuracy": self._onnxruntime_top1(cell)}
        if cell.recipe != REFERENCE_RECIPE:
            reference = self._onnxruntime_top1(Cell(cell.model, REFERENCE_RECIPE, cell.platform))
            figures |= {"onnxruntime_reference_accuracy": reference,
                        "onnxruntime_drop_pt": (reference - figures["onnxruntime_accuracy"]) * 100}
        return figures

    def _host_latency(self, cell: Cell) -> dict[str, Any]:
        def timed() -> dict[str, Any]:
            path, card = self.run.litert_artifact(cell).path, self.run.source_card(cell.model)
            inputs = self.run.timing_inputs(card)
            with quiet.timing(), open_runner(path, self._spec()) as runner:
                run = time_inferences(runner, inputs, self.options.latency_plan)
                settings = runner.settings
            stats = LatencyStats.from_samples(run.samples_ms)
            return {**{key: value for key, value in dataclasses.asdict(stats).items() if key != "p99_ucb_ms"},
                    "what": "latency on the host", "method": self.options.latency_plan.describe(),
                    "settings": settings}
        return self.run.once(("litert-host-latency", cell.id), timed)

    def _host_memory(self, cell: Cell) -> dict[str, Any]:
        def probed() -> dict[str, Any]:
            path, card = self.run.litert_artifact(cell).path, self.run.source_card(cell.model)
            reading = measure_peak_memory(path, self.run.timing_inputs(card)[:1], self._spec())
            return {"what": "peak memory on the host", "method": reading.method, "peak_mb": reading.peak_mb,
                    "probes_mb": list(reading.probes_mb)}
        return self.run.once(("litert-host-memory", cell.id), probed, heavy=True)


def _described(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a record says about the `.tflite`: its identity, size, conversion check and (INT8) float islands."""
    return {"sha256": manifest["sha256"], "size_bytes": manifest["size_bytes"], "pass": manifest["pass"],
            "check": manifest["did"]["check"], "versions": manifest["versions"],
            **{key: manifest["did"][key] for key in ("float_operators",) if key in manifest["did"]}}
