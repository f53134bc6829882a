"""Where quantisation loses accuracy: each layer's output in the quantised model against the same tensor in FP32,
over the same inputs, so the layers that drift most can be named.

Polygraphy runs both models with every tensor marked as an output (`polygraphy run --onnxrt --onnx-outputs mark
all`) and compares them (its SimpleCompareFunc: mean and p99 absolute error per tensor; the error over the
tensor's mean FP32 magnitude ranks the layers, since per-element relative error is unbounded near zero). The name map
survives QDQ: a quantised tensor `t` is read back as `t_DequantizeLinear_Output`, the value the next layer sees
(ONNX Runtime's quantiser names it so). A tensor fused away before quantisation (a BatchNorm folded into its Conv)
has no counterpart: it is listed as unmatched, not compared. A tensor that only feeds a ReLU is not compared either: the
quantiser folds the ReLU into the producer's output range, so the quantised copy is clipped at zero by design (55 %
"error" on dmsnet's pre-activations); the ReLU's output carries that layer's drift.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

DEQUANTIZED = "{}_DequantizeLinear_Output"  # onnxruntime.quantization's name for a tensor after its QDQ pair
DRIFT_IMAGES = 16  # evaluation images a compliance run compares over: ResNet18 at 64x64 took 10 s
DRIFT_TOP = 5  # layers an accuracy record names
METHOD = ("each tensor of the quantised ONNX artifact against FP32's, both run by ONNX Runtime on the host CPU "
          "through Polygraphy (every tensor marked as an output), ranked by mean absolute error over the tensor's mean "
          "FP32 magnitude (harness/measure/drift.py)")


@dataclass(frozen=True)
class LayerDrift:
    tensor: str  # the FP32 model's tensor name
    producer: str  # the node that writes it, `name (op)`
    mean_abs_error: float
    p99_abs_error: float
    relative_error: float  # mean absolute error over the tensor's mean magnitude in FP32: comparable across layers


@dataclass(frozen=True)
class DriftReport:
    layers: list[LayerDrift]  # in the FP32 graph's order
    unmatched: list[str]  # FP32 tensors the quantised model has no counterpart of
    before_relu: list[str]  # pre-activations clipped by a folded ReLU: compared at the ReLU's output instead

    def worst(self, count: int = 10) -> list[LayerDrift]:
        return sorted(self.layers, key=lambda layer: layer.relative_error, reverse=True)[:count]


def counterpart(tensor: str, quantised_tensors: set[str]) -> str | None:
    """The quantised model's tensor that carries FP32's `tensor`: its dequantised copy where QDQ wraps it."""
    for name in (DEQUANTIZED.format(tensor), tensor):
        if name in quantised_tensors:
            return name
    return None


def layer_drift(fp32: Path, quantised: Path, inputs: list[np.ndarray]) -> DriftReport:
    """Per-layer drift of `quantised` against `fp32` over `inputs` (each a batch for the first graph input), errors
    averaged over them."""
    from polygraphy import constants
    from polygraphy.backend.onnx import BytesFromOnnx, ModifyOutputs, OnnxFromPath
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
    from polygraphy.comparator import Comparator, CompareFunc
    from polygraphy.logger import G_LOGGER

    def runner(path: Path, name: str) -> OnnxrtRunner:
        marked = BytesFromOnnx(ModifyOutputs(OnnxFromPath(str(path)), outputs=constants.MARK_ALL))
        return OnnxrtRunner(SessionFromOnnx(marked, providers=["CPUExecutionProvider"]), name=name)
    with G_LOGGER.verbosity():  # Polygraphy logs every tensor's comparison, and "fails" any difference
        name = onnx.load(str(fp32), load_external_data=False).graph.input[0].name
        feeds = [{name: batch} for batch in inputs]
        results = Comparator.run([runner(fp32, "fp32"), runner(quantised, "quantised")], data_loader=feeds)
        quantised_tensors = set(results[1][1][0].keys())
        reference = list(results[0][1][0].keys())
        mapped = {tensor: counterpart(tensor, quantised_tensors) for tensor in reference}

        def find(name: str, index: int, iteration: object) -> list[str]:
            return [mapped[name]] if mapped.get(name) else []
        (compared,) = Comparator.compare_accuracy(results, compare_func=CompareFunc.simple(
            find_output_func=find, check_error_stat="quantile", error_quantile=0.99))
    per_input = compared[("fp32", "quantised")]
    producers, before_relu = _producers(fp32), _only_into_relu(fp32)
    layers = []
    for tensor in (name for name in reference if mapped[name] and name not in before_relu):
        stats = [comparison[tensor] for comparison in per_input]
        # Polygraphy's relative error divides by each element, unbounded where FP32 is near zero (after a ReLU):
        # the layer's error is put over its mean magnitude instead
        magnitude = float(np.mean([np.abs(outputs[tensor]).mean() for outputs in results[0][1]]))
        mean_abs = float(np.mean([s.mean_absdiff for s in stats]))
        layers.append(LayerDrift(tensor, producers.get(tensor, "?"), mean_abs,
                                 float(np.mean([s.quantile_absdiff for s in stats])),
                                 mean_abs / magnitude if magnitude > 0 else float("inf")))
    return DriftReport(layers, [name for name in reference if not mapped[name]],
                       [name for name in reference if mapped[name] and name in before_relu])


def kept_in_float(manifest: dict[str, Any]) -> set[str]:
    """The layers a `mixed` search left out of INT8 (the `assignment` in its artifact's manifest)."""
    return {layer for step in manifest["steps"]
            for layer, precision in step["did"].get("assignment", {}).items() if precision != "int8"}


def drift_figures(report: DriftReport, kept_float: set[str], images: int, seconds: float,
                  top: int = DRIFT_TOP) -> dict[str, Any]:
    """What a record says of the drift: the `top` layers that drift most, each marked if `mixed` kept it in float.
    A tensor that is zero throughout in FP32 (no relative error) or has non-finite outputs is counted, not ranked:
    a record holds finite numbers only."""
    ranked = [layer for layer in report.worst(len(report.layers))
              if all(map(math.isfinite, (layer.relative_error, layer.mean_abs_error, layer.p99_abs_error)))]
    return {"images": images, "compared": len(report.layers), "unmatched": len(report.unmatched),
            "unranked": len(report.layers) - len(ranked), "seconds": seconds, "method": METHOD,
            "kept_in_float": sorted(kept_float),
            "worst": [{**dataclasses.asdict(layer), "kept_float": layer.producer.split(" (")[0] in kept_float}
                      for layer in ranked[:top]]}


def _producers(model: Path) -> dict[str, str]:
    graph = onnx.load(str(model), load_external_data=False).graph
    return {output: f"{node.name} ({node.op_type})" for node in graph.node for output in node.output}


def _only_into_relu(model: Path) -> set[str]:
    graph = onnx.load(str(model), load_external_data=False).graph
    consumers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    outputs = {output.name for output in graph.output}
    return {name for name, ops in consumers.items() if ops == {"Relu"} and name not in outputs}
