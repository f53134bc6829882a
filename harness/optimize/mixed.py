"""Accuracy-aware mixed precision: INT8 everywhere except the layers that cost too much accuracy.

In the spirit of Intel Neural Compressor's per-op fallback and NNCF's quantize_with_accuracy_control:
measure each layer's real sensitivity with ONNX Runtime, then revert the most sensitive layers to
float32 until the top-1 drop against FP32 is within the budget, and keep the fastest assignment
that meets it. ONNX Runtime's static quantiser builds every candidate (`nodes_to_exclude`); only
the search is written here.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from harness.data.dataset import ImageSet
from harness.measure.accuracy import top1
from harness.measure.latency import LatencyPlan, time_inferences
from harness.models import preprocess
from harness.optimize.passes import Int8, PassContext, prepare_for_quantization
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner

LAYER_OPS = ("Conv", "Gemm", "MatMul")  # the layers whose precision the search chooses
FALLBACK = "fp32"  # ORT's CPU provider runs a float layer between QDQ layers; a mixed INT8/FP16 graph it does not fuse
SEARCH_LATENCY = LatencyPlan(warmup_runs=5, min_runs=50, min_seconds=0.2)  # enough to rank candidates, not to report


class Mixed:
    """Recipe form `mixed[:BUDGET_PT]`: INT8 with float fallbacks, top-1 drop <= BUDGET_PT (default 1.0)."""

    name = "mixed"
    precision = "int8"  # an INT8 model with float fallbacks

    def __init__(self, budget_pt: float = 1.0, search_images: int = 300, int8: Int8 | None = None) -> None:
        if not math.isfinite(budget_pt) or budget_pt < 0:
            raise ValueError(f"accuracy budget {budget_pt} pt is not a finite, non-negative number of points")
        self.accuracy_budget_pt = budget_pt  # the drop bound the suite asserts for this recipe
        self.search_images = search_images
        self.int8 = int8 or Int8()

    @classmethod
    def parse(cls, arg: str | None) -> Mixed:
        return cls(float(arg)) if arg else cls()

    def params(self) -> dict[str, Any]:
        return {"budget_pt": self.accuracy_budget_pt, "search_images": self.search_images, "fallback": FALLBACK,
                "layer_ops": list(LAYER_OPS), "int8": self.int8.params()}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        # the calibration split, never the evaluation split: a search that picked its layers on the images the
        # accuracy test then scores would report a drop biased by that selection
        split = ImageSet(context.calibration.images[:self.search_images],
                         context.calibration.labels[:self.search_images])
        with tempfile.TemporaryDirectory(prefix="ncap-mixed-") as scratch:
            prepared = Path(scratch) / "prepared.onnx"
            upgraded_from = prepare_for_quantization(source, prepared)
            layers = _name_layers(prepared)
            candidates = _Candidates(self.int8, prepared, Path(scratch), context, split)
            sensitivity, alone = candidates.sensitivity(layers)
            order = sorted(layers, key=lambda layer: (-sensitivity[layer], alone[layer]))
            chosen, trace = _search(candidates, order, self.accuracy_budget_pt)
            shutil.copyfile(chosen.path, target)
        return {"tool": "onnxruntime.quantization.quantize_static(nodes_to_exclude=...) per candidate",
                "opset_upgraded_from": upgraded_from, "budget_pt": self.accuracy_budget_pt,
                "search_images": len(split), "reference_accuracy": candidates.reference,
                "sensitivity": sensitivity, "sensitivity_alone": alone,
                "sensitivity_meaning": ("sensitivity: top-1 points regained by reverting the layer alone to "
                                        f"{FALLBACK} in the all-INT8 model; sensitivity_alone: top-1 change in "
                                        "points when only that layer is INT8"),
                "assignment": {layer: FALLBACK if layer in chosen.float_layers else "int8" for layer in layers},
                "drop_pt": chosen.drop_pt, "within_budget": chosen.drop_pt <= self.accuracy_budget_pt,
                "trace": trace}


@dataclass
class _Candidate:
    float_layers: frozenset[str]
    path: Path
    accuracy: float
    drop_pt: float  # against FP32 on the search split
    latency_ms: float | None = None  # median, measured only for candidates of the search


class _Candidates:
    """Builds, evaluates and times one model per set of float layers, each at most once."""

    def __init__(self, int8: Int8, prepared: Path, scratch: Path, context: PassContext, split: ImageSet) -> None:
        self.int8, self.prepared, self.scratch, self.context, self.split = int8, prepared, scratch, context, split
        self._built: dict[frozenset[str], _Candidate] = {}
        self.reference = self._top1(prepared)

    def get(self, float_layers: Sequence[str]) -> _Candidate:
        key = frozenset(float_layers)
        if key not in self._built:
            path = self.scratch / f"candidate-{len(self._built)}.onnx"
            self.int8.quantize(self.prepared, path, self.context, nodes_to_exclude=sorted(key),
                               extra_options={"QDQKeepRemovableActivations": True})  # see _feed_float
            _feed_float(path, key)
            accuracy = self._top1(path)
            self._built[key] = _Candidate(key, path, accuracy, (self.reference - accuracy) * 100)
        return self._built[key]

    def timed(self, float_layers: Sequence[str]) -> _Candidate:
        candidate = self.get(float_layers)
        if candidate.latency_ms is None:
            sample = preprocess.to_tensor(self.split.images[:1], self.context.card.input)
            with self._runner(candidate.path) as runner:
                candidate.latency_ms = float(np.median(time_inferences(runner, sample, SEARCH_LATENCY).samples_ms))
        return candidate

    def sensitivity(self, layers: list[str]) -> tuple[dict[str, float], dict[str, float]]:
        """Per layer: points regained by reverting it alone, and points changed by quantising it alone."""
        all_int8 = self.get([])
        regained = {layer: (self.get([layer]).accuracy - all_int8.accuracy) * 100 for layer in layers}
        alone = {layer: -self.get([other for other in layers if other != layer]).drop_pt for layer in layers}
        return regained, alone

    def _top1(self, model: Path) -> float:
        with self._runner(model) as runner:
            return top1(runner, self.context.card, self.split)

    def _runner(self, model: Path) -> OnnxRuntimeRunner:
        card = self.context.card
        return OnnxRuntimeRunner(model, input_name=card.input.name, output_name=card.output.name, threads=1)


def _search(candidates: _Candidates, order: list[str], budget_pt: float) -> tuple[_Candidate, list[dict[str, Any]]]:
    """Greedy fallback in sensitivity order until within budget, then try re-quantising each reverted
    layer (least sensitive first); the fastest candidate within budget wins."""
    tried: list[_Candidate] = []

    def within(float_layers: list[str]) -> bool:
        tried.append(candidates.timed(float_layers))
        return tried[-1].drop_pt <= budget_pt

    reverted: list[str] = []
    fits = within(reverted)
    for layer in order:
        if fits:
            break
        reverted.append(layer)
        fits = within(reverted)
    for layer in reversed(reverted[:-1] if fits else []):  # the last one reverted brought the drop within budget
        trial = [other for other in reverted if other != layer]
        if within(trial):
            reverted = trial
    passing = [c for c in tried if c.drop_pt <= budget_pt]
    chosen = (min(passing, key=lambda c: c.latency_ms or 0.0) if passing
              else min(tried, key=lambda c: c.drop_pt))  # nothing fits: the most accurate, and the suite fails it
    trace = [{"float_layers": sorted(c.float_layers), "accuracy": c.accuracy, "drop_pt": c.drop_pt,
              "latency_ms": c.latency_ms, "within_budget": c.drop_pt <= budget_pt, "chosen": c is chosen}
             for c in tried]
    return chosen, trace


def _feed_float(model_path: Path, layers: frozenset[str]) -> None:
    """Give the float layers the float activation instead of its Quantize-Dequantize copy.

    Excluding a node is not enough: ONNX Runtime's WeightBiasQuantization optimiser quantises the
    weights of any Conv/Gemm whose input comes from a DequantizeLinear, which undoes the fallback.
    The quantiser must keep Relu/Clip nodes (QDQKeepRemovableActivations), else the tensor before
    the QuantizeLinear lacks the activation the clamp stood for.
    """
    model = onnx.load(str(model_path))
    producer = {output: node for node in model.graph.node for output in node.output}
    for node in model.graph.node:
        dequantize = producer.get(node.input[0]) if node.name in layers else None
        if dequantize is not None and dequantize.op_type == "DequantizeLinear":
            quantize = producer.get(dequantize.input[0])
            if quantize is not None and quantize.op_type == "QuantizeLinear":
                node.input[0] = quantize.input[0]
    _drop_unread(model.graph)
    onnx.save(model, str(model_path))


def _drop_unread(graph: onnx.GraphProto) -> None:
    """Remove nodes none of whose outputs is read (the Quantize/Dequantize pairs left behind)."""
    while True:
        read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
        kept = [node for node in graph.node if any(output in read for output in node.output)]
        if len(kept) == len(graph.node):
            return
        graph.ClearField("node")
        graph.node.extend(kept)


def _name_layers(model_path: Path) -> list[str]:
    """Names of the layers the search chooses for, naming unnamed nodes (nodes_to_exclude matches by name)."""
    model = onnx.load(str(model_path))
    for index, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_{index}"
    onnx.save(model, str(model_path))
    return [node.name for node in model.graph.node if node.op_type in LAYER_OPS]
