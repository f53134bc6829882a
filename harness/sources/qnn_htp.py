"""A Qualcomm target's numerics on the host: the cell's QDQ artifact compiled for the profile's SoC (`soc_model`)
with Qualcomm's compiler (the `.[qnn]` extra), its node placement, and its top-1 through the HTP emulator.

The emulator runs the chip's integer arithmetic on this CPU, slowly (about half a second per 64x64 ResNet18 image),
so top-1 is taken on a seeded subset of the evaluation split, with the accuracy's 95 % confidence interval. The FP32
reference is ONNX Runtime on the same subset, so the drop compares the same images. Its timings and profiling cycles
are not the chip's latency: latency stays projected.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.stats import binomtest

from harness.catalog import is_reference
from harness.cell import Cell
from harness.data.dataset import ImageSet
from harness.measure import accuracy
from harness.platform import QualcommSoc
from harness.runtimes.qnn.context import MISSING, CompiledContext, compiled_context
from harness.runtimes.qnn.runner import QnnRunner, qnn_version
from harness.runtimes.registry import RunnerSpec, open_runner
from harness.sources.base import Evidence
from harness.workspace import Workspace

GRADE = "emulated"
# Images of the evaluation split run through the emulator per cell: ResNet18 at 64x64 takes ~0.55 s each, so 200
# keep a three-model run within minutes; the 95 % interval of the accuracy (recorded) says what that costs.
EMULATED_IMAGES = 200
SUBSET_SEED = 0
NOT_A_LATENCY = "latency stays projected: the emulator's run time and profiling cycles are not the chip's latency"


def qnn_htp(run: Workspace) -> QnnHtp | Unavailable | None:
    """The NUMERICS entry: applies to a profile that names its Qualcomm SoC id."""
    soc = run.options.platform.soc_model
    if soc is None:
        return None
    return QnnHtp(run, soc) if qnn_version() else Unavailable(MISSING)


class Unavailable:
    """A Qualcomm profile without the compiler installed: each figure is a skip that says how to get it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def top1(self, cell: Cell) -> Evidence:
        return Evidence(None, "top-1", None, None, reason=f"accuracy on {cell.platform} is not emulated: {self.reason}")

    def placement(self, cell: Cell) -> Evidence:
        return Evidence(None, "NPU placement", None, None, reason=f"placement is not checked: {self.reason}")

    def beside(self, cell: Cell, metric: str) -> dict[str, Any]:
        return {}


class QnnHtp:
    def __init__(self, run: Workspace, soc: QualcommSoc) -> None:
        self.run, self.soc = run, soc

    def context(self, cell: Cell) -> CompiledContext:
        """The cell's artifact compiled for the SoC (cached by content, its SoC checked)."""
        def build() -> CompiledContext:
            artifact = self.run.artifact(cell)
            self.run.progress(f"compiling {cell.id} for {self.soc.soc_type} (QNN HTP)")
            return compiled_context(artifact.card.onnx, artifact.sha256, self.soc)
        return self.run.once(("qnn-context", cell.id), build, heavy=True)

    def placement(self, cell: Cell) -> Evidence:
        if (skip := self._not_compiled(cell)) is not None:
            return skip
        context = self.context(cell)
        placement = context.placement
        fallback = ", ".join(placement.fallback)
        return Evidence(len(placement.fallback), f"nodes left to the CPU{f' ({fallback})' if fallback else ''}",
                        GRADE, f"{self._compiled_how(context)}; ONNX Runtime's EP graph assignment",
                        {"fallback_nodes": len(placement.fallback), "npu_nodes": len(placement.npu),
                         "fallback": list(placement.fallback), "io_conversions_on_cpu": list(placement.io_conversions),
                         **self._context_figures(context)})

    def beside(self, cell: Cell, metric: str) -> dict[str, Any]:
        """The projected latency's record says why the emulator's time is not used: it ran for accuracy."""
        return {"latency_note": NOT_A_LATENCY} if metric == "latency" else {}

    def top1(self, cell: Cell) -> Evidence:
        """Emulated top-1 of a quantised cell; the FP32 reference is ONNX Runtime on the CPU over the same images."""
        if is_reference(cell.recipe):
            top1, _ = self.run.once(("qnn-cpu-top1", cell.id), lambda: self._cpu_top1(cell), heavy=True)
            return Evidence(top1, "top-1", "host-measured", f"ONNX Runtime CPU on {self._subset_wording()} (the "
                                                            "reference for the emulated cells' drop)",
                            {"evaluation_images": len(self._subset(cell)), "accuracy_ci95": _wilson(top1, self._n())})
        if (skip := self._not_compiled(cell)) is not None:
            return skip
        context = self.context(cell)
        top1, emulation_s = self.run.once(("qnn-top1", cell.id), lambda: self._emulated_top1(cell, context),
                                          heavy=True)
        cpu_top1, _ = self.run.once(("qnn-cpu-top1", cell.id), lambda: self._cpu_top1(cell), heavy=True)
        method = (f"{self._compiled_how(context)}, run through the HTP emulator on the host CPU over "
                  f"{self._subset_wording()}; {NOT_A_LATENCY}")
        return Evidence(top1, "emulated top-1", GRADE, method,
                        {"evaluation_images": self._n(), "accuracy_ci95": _wilson(top1, self._n()),
                         "cpu_accuracy": cpu_top1, "emulation_s": emulation_s,
                         "emulation_s_per_image": emulation_s / self._n(), "latency_note": NOT_A_LATENCY,
                         **self._context_figures(context)})

    def _not_compiled(self, cell: Cell) -> Evidence | None:
        if cell.precision == "int8":
            return None
        return Evidence(None, "emulated", None, None, reason=(
            f"the QNN HTP path here compiles quantised (QDQ int8) artifacts; {cell.precision} on {cell.platform} is "
            "neither compiled nor emulated: measure it on the device (--device ssh://...)"))

    def _emulated_top1(self, cell: Cell, context: CompiledContext) -> tuple[float, float]:
        card = self.run.artifact(cell).card
        self.run.progress(f"emulating {cell.id} on {self._subset_wording()}")
        started = time.perf_counter()
        with QnnRunner(context.onnx, self.soc.value, card.output.name) as runner:
            top1 = accuracy.top1(runner, card, self._subset(cell))
        return top1, time.perf_counter() - started

    def _cpu_top1(self, cell: Cell) -> tuple[float, float]:
        card = self.run.artifact(cell).card
        started = time.perf_counter()
        with open_runner(card.onnx, RunnerSpec(threads=self.run.options.threads, input_name=card.input.name,
                                               output_name=card.output.name)) as runner:
            top1 = accuracy.top1(runner, card, self._subset(cell))
        return top1, time.perf_counter() - started

    def _subset(self, cell: Cell) -> ImageSet:
        evaluation = self.run.split_for(self.run.source_card(cell.model), "evaluation")
        chosen = np.random.default_rng(SUBSET_SEED).permutation(len(evaluation))[:EMULATED_IMAGES]
        return ImageSet([evaluation.images[i] for i in chosen], evaluation.labels[chosen])

    def _n(self) -> int:
        return min(EMULATED_IMAGES, len(self.run.dataset.evaluation))

    def _subset_wording(self) -> str:
        return (f"{self._n()} of the {len(self.run.dataset.evaluation)} evaluation images of {self.run.dataset.name} "
                f"(seeded subset, seed {SUBSET_SEED})")

    def _compiled_how(self, context: CompiledContext) -> str:
        return (f"compiled for {self.soc.soc_type} (soc_model {self.soc.value}, HTP v{self.soc.htp_arch}; "
                f"{self.soc.source}) by onnxruntime-qnn {context.manifest['versions']['onnxruntime_qnn']}")

    @staticmethod
    def _context_figures(context: CompiledContext) -> dict[str, Any]:
        return {"context_sha256": context.manifest["files"][context.onnx.name],
                "context_bin_sha256": context.manifest["files"][context.binary.name],
                "context_bin_bytes": context.binary.stat().st_size,
                "compile_s": context.manifest["compile_s"], "soc": context.manifest["soc"]["soc_type"],
                "context_path": str(context.onnx)}


def _wilson(top1: float, n: int) -> list[float]:
    """The accuracy's 95 % Wilson score interval (the figure is a proportion of n images)."""
    interval = binomtest(round(top1 * n), n).proportion_ci(0.95, method="wilson")
    return [float(interval.low), float(interval.high)]
