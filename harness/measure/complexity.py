"""Parameters and multiply-accumulates of an ONNX model, read from its graph (any model, zoo or user's).

Parameters are the constant tensors that compute ops learn: weights and biases of Conv, ConvTranspose,
Gemm and MatMul (followed back through DequantizeLinear, so an INT8 model counts as many as its float
source; a MatMul's bias is the Add after it), ONNX Runtime's 4-bit MatMulNBits (K x N weights, whatever
their packing) and BatchNormalization's scale and shift (its running statistics are not learnt). MACs are
those of Conv, ConvTranspose, Gemm, MatMul and MatMulNBits for one image; the rest (pooling, activations,
adds) is small beside them and is left out, as most published MAC counts do. Shapes come from ONNX
Runtime's symbolic shape inference, which knows its own contrib ops (onnx's loses every shape after one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import numpy_helper
from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

WEIGHTED_OPS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (0, 1),
                "BatchNormalization": (1, 2)}  # op -> positions of inputs that may be learnt tensors


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int | None  # None when a compute op's shapes could not be inferred


def measure(path: Path) -> Complexity:
    """Shapes are inferred with the batch fixed to 1, so MACs are per image."""
    model = onnx.load(str(path))
    _fix_batch(model.graph)
    del model.graph.value_info[:]  # stale symbolic shapes from the exporter; inference recomputes them
    graph = SymbolicShapeInference.infer_shapes(model, auto_merge=True).graph
    sizes = {init.name: list(init.dims) for init in graph.initializer}
    sizes |= {node.output[0]: list(numpy_helper.to_array(node.attribute[0].t).shape)
              for node in graph.node if node.op_type == "Constant" and node.attribute[0].name == "value"}
    dequantised = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    shapes = {info.name: _dims(info) for info in [*graph.input, *graph.value_info, *graph.output]}
    shapes |= sizes

    matmul_outputs = {node.output[0] for node in graph.node if node.op_type in ("MatMul", "MatMulNBits")}
    params, macs = 0, 0
    counted: set[str] = set()
    for node in graph.node:
        for position in WEIGHTED_OPS.get(node.op_type, ()):
            name = node.input[position] if position < len(node.input) else ""
            name = dequantised.get(name, name)
            if name in sizes and name not in counted:  # a tensor shared by two ops is one set of parameters
                counted.add(name)
                params += math.prod(sizes[name])
        if node.op_type == "MatMulNBits" and node.input[1] not in counted:
            counted.add(node.input[1])
            params += math.prod(_nbits_weight(node))
        if node.op_type == "Add" and matmul_outputs & set(node.input):  # a MatMul's bias is the Add after it
            for name in node.input:
                if name in sizes and name not in counted:
                    counted.add(name)
                    params += math.prod(sizes[name])
        if macs is not None and node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul", "MatMulNBits"):
            macs = _add(macs, _macs(node, shapes))
    return Complexity(params, macs)


def _macs(node: onnx.NodeProto, shapes: dict[str, list[int | None]]) -> int | None:
    first, second, out = shapes.get(node.input[0]), shapes.get(node.input[1]), shapes.get(node.output[0])
    if not first or not second or not out or None in first + second + out:
        return None
    if node.op_type == "Conv":  # each output element: in_channels/group x kernel products
        return math.prod(out) * math.prod(second[1:])
    if node.op_type == "ConvTranspose":  # each input element scatters into out_channels/group x kernel
        return math.prod(first) * math.prod(second[1:])
    if node.op_type == "MatMulNBits":  # the packed weight's shape says nothing: K comes from the attributes
        return math.prod(out) * _nbits_weight(node)[0]
    trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
    inner = first[0] if node.op_type == "Gemm" and trans_a else first[-1]
    return math.prod(out) * inner


def _nbits_weight(node: onnx.NodeProto) -> tuple[int, int]:
    """(K, N) of a MatMulNBits, the float weight it stands for."""
    attributes = {a.name: a.i for a in node.attribute}
    return attributes["K"], attributes["N"]


def _add(total: int, macs: int | None) -> int | None:
    return None if macs is None else total + macs


def _dims(info: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]


def _fix_batch(graph: onnx.GraphProto) -> None:
    """Set each graph input's symbolic first dimension (the batch) to 1."""
    initialisers = {init.name for init in graph.initializer}
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in initialisers and dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
