"""Per-layer cost of an ONNX graph: operations and bytes moved, from ONNX shape inference at batch 1."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, shape_inference

from harness.errors import NcapError

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
    """The cost of every layer of the model at `path`, with a symbolic batch axis set to 1."""
    model = onnx.load(str(path))
    for tensor in model.graph.input:
        for dim in tensor.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = 1  # batch-1 single stream, as the latency plan runs
    try:
        model = shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises its own InferenceError and plain ValueErrors
        raise NcapError(f"ONNX shape inference failed on {path.name}: {str(exc).splitlines()[0][:200]}") from exc
    graph = model.graph
    shapes: dict[str, tuple[list[int], int]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor.shape.dim]
        shapes[info.name] = (dims, _itemsize(tensor.elem_type))
    weights = {init.name: (list(init.dims), _itemsize(init.data_type)) for init in graph.initializer}
    shapes |= weights
    # A weight reaching a layer through DequantizeLinear is stored (and read) at the quantised width.
    stored = {node.output[0]: node.input[0] for node in graph.node
              if node.op_type == "DequantizeLinear" and node.input[0] in weights}

    def nbytes(name: str) -> float:
        dims, size = shapes.get(stored.get(name, name), ([], 0))
        return float(prod(dims) * size)

    layers, peak = [], 0.0
    for node in graph.node:
        if node.op_type in FREE_OPS or node.output[0] in stored:
            continue
        inputs, outputs = [n for n in node.input if n], [n for n in node.output if n]
        activations = sum(nbytes(n) for n in inputs + outputs if stored.get(n, n) not in weights)
        peak = max(peak, activations)
        layers.append(LayerCost(node.name or node.op_type, node.op_type, _ops(node, shapes),
                                sum(nbytes(n) for n in inputs + outputs)))
    return GraphCost(layers, float(sum(prod(d) * s for d, s in weights.values())), peak)


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


def _itemsize(elem_type: int) -> int:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize if elem_type else 0
