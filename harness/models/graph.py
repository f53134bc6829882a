"""An ONNX model's graph with every tensor's shape and element size, at batch 1: the one graph walker behind the
artifact's parameter and MAC counts (harness.measure.complexity) and the projection's per-layer costs
(harness.project.graph).

Shapes come from ONNX Runtime's symbolic shape inference, which knows ONNX Runtime's own contrib ops
(MatMulNBits, QLinear*); onnx's own inference loses every shape after one of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

from harness.errors import NcapError


@dataclass(frozen=True)
class Tensor:
    dims: list[int | None]  # None where inference could not tell
    itemsize: int  # bytes per element as stored; 0 when unknown


@dataclass(frozen=True)
class ShapedGraph:
    nodes: list[onnx.NodeProto]
    tensors: dict[str, Tensor]  # every value, initialiser and Constant output
    weights: set[str]  # initialisers and Constant outputs: stored in the file
    dequantised: dict[str, str]  # DequantizeLinear output -> its quantised input


def shaped_graph(path: Path) -> ShapedGraph:
    """The graph of the model at `path` with its symbolic batch axis set to 1, every shape inferred."""
    model = onnx.load(str(path))
    _fix_batch(model.graph)
    del model.graph.value_info[:]  # stale symbolic shapes from the exporter; inference recomputes them
    try:
        graph = SymbolicShapeInference.infer_shapes(model, auto_merge=True).graph
    except Exception as exc:  # the inference raises plain exceptions of several kinds on a graph it cannot read
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise NcapError(f"shape inference failed on {path.name}: {detail}") from exc
    tensors = {info.name: Tensor(_dims(info), _itemsize(info.type.tensor_type.elem_type))
               for info in [*graph.input, *graph.value_info, *graph.output]}
    weights = {init.name: Tensor(list(init.dims), _itemsize(init.data_type)) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            value = node.attribute[0].t
            weights[node.output[0]] = Tensor(list(numpy_helper.to_array(value).shape), _itemsize(value.data_type))
    dequantised = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    return ShapedGraph(list(graph.node), tensors | weights, set(weights), dequantised)


def _dims(info: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]


def _itemsize(elem_type: int) -> int:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize if elem_type else 0


def _fix_batch(graph: onnx.GraphProto) -> None:
    """Set each graph input's symbolic first dimension (the batch) to 1."""
    initialisers = {init.name for init in graph.initializer}
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in initialisers and dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
