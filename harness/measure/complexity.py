"""Parameters and multiply-accumulates of an ONNX model, read from its graph (any model, zoo or user's).

Parameters are the constant tensors that compute ops learn: weights and biases of Conv, ConvTranspose,
Gemm and MatMul (followed back through DequantizeLinear, so an INT8 model counts as many as its float
source; a MatMul's bias is the Add after it), ONNX Runtime's 4-bit MatMulNBits (K x N weights, whatever
their packing) and BatchNormalization's scale and shift (its running statistics are not learnt). MACs are
those of Conv, ConvTranspose, Gemm, MatMul and MatMulNBits for one image; the rest (pooling, activations,
adds) is small beside them and is left out, as most published MAC counts do. Shapes come from the one graph
walker, harness.models.graph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import onnx

from harness.models.graph import ShapedGraph, shaped_graph

WEIGHTED_OPS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (0, 1),
                "BatchNormalization": (1, 2)}  # op -> positions of inputs that may be learnt tensors


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int | None  # None when a compute op's shapes could not be inferred


def measure(path: Path) -> Complexity:
    """Shapes are inferred with the batch fixed to 1, so MACs are per image."""
    graph = shaped_graph(path)
    sizes = {name: graph.tensors[name].dims for name in graph.weights}
    matmul_outputs = {node.output[0] for node in graph.nodes if node.op_type in ("MatMul", "MatMulNBits")}
    params, macs = 0, 0
    counted: set[str] = set()
    for node in graph.nodes:
        for position in WEIGHTED_OPS.get(node.op_type, ()):
            name = node.input[position] if position < len(node.input) else ""
            name = graph.dequantised.get(name, name)
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
            macs = _add(macs, _macs(node, graph))
    return Complexity(params, macs)


def _macs(node: onnx.NodeProto, graph: ShapedGraph) -> int | None:
    first, second, out = (graph.tensors[name].dims if name in graph.tensors else None
                          for name in (node.input[0], node.input[1], node.output[0]))
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
