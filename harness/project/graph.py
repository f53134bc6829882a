"""Per-layer cost of an ONNX graph: operations and bytes moved at batch 1, on harness.models.graph's shapes."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from pathlib import Path

import onnx

from harness.models.graph import shaped_graph

# Nodes a runtime folds away (views, shape arithmetic): no cost. A DequantizeLinear of a weight is
# folded into the integer kernel too (see `graph_cost`); one of an activation is real work.
FREE_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Shape", "Constant", "Dropout"}
MATMUL_OPS = {"MatMul", "MatMulInteger", "QLinearMatMul", "Gemm"}
CONV_OPS = {"Conv", "ConvInteger", "QLinearConv"}


@dataclass(frozen=True)
class LayerCost:
    name: str
    op: str
    ops: float  # arithmetic operations (a multiply-accumulate is two)
    bytes: float  # tensors read and written, weights included, at their stored precision


@dataclass(frozen=True)
class GraphCost:
    layers: list[LayerCost]
    weight_bytes: float
    peak_activation_bytes: float  # the largest set of activations one layer reads and writes

    @property
    def ops(self) -> float:
        return sum(layer.ops for layer in self.layers)


def graph_cost(path: Path) -> GraphCost:
    """The cost of every layer of the model at `path`, at batch 1 (harness.models.graph's shapes)."""
    graph = shaped_graph(path)
    shapes = {name: ([d or 1 for d in tensor.dims], tensor.itemsize) for name, tensor in graph.tensors.items()}
    # A weight reaching a layer through DequantizeLinear is stored (and read) at the quantised width.
    stored = {output: source for output, source in graph.dequantised.items() if source in graph.weights}

    def nbytes(name: str) -> float:
        dims, size = shapes.get(stored.get(name, name), ([], 0))
        return float(prod(dims) * size)

    layers, peak = [], 0.0
    for node in graph.nodes:
        if node.op_type in FREE_OPS or node.output[0] in stored:
            continue
        inputs, outputs = [n for n in node.input if n], [n for n in node.output if n]
        activations = sum(nbytes(n) for n in inputs + outputs if stored.get(n, n) not in graph.weights)
        peak = max(peak, activations)
        layers.append(LayerCost(node.name or node.op_type, node.op_type, _ops(node, shapes),
                                sum(nbytes(n) for n in inputs + outputs)))
    return GraphCost(layers, float(sum(nbytes(name) for name in graph.weights)), peak)


def _ops(node: onnx.NodeProto, shapes: dict[str, tuple[list[int], int]]) -> float:
    def dims(index: int, outputs: bool = False) -> list[int]:
        names = node.output if outputs else node.input
        return shapes.get(names[index], ([], 0))[0] if index < len(names) else []
    out = dims(0, outputs=True)
    if node.op_type in CONV_OPS:
        weight = dims(3 if node.op_type == "QLinearConv" else 1)  # [Cout, Cin/group, kH, kW]
        return 2.0 * prod(out) * prod(weight[1:])
    if node.op_type in MATMUL_OPS:
        a = dims(0)
        transposed = node.op_type == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute)
        k = (a[-2] if transposed else a[-1]) if a else 0
        return 2.0 * prod(out) * k
    if node.op_type in {"MaxPool", "AveragePool"}:
        kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), [1])
        return float(prod(out) * prod(kernel))
    if node.op_type.startswith("Global"):
        return float(prod(dims(0)))
    return float(prod(out))  # element-wise and the rest: one operation per output element
