"""The host's own roofline, measured with ONNX Runtime microbenchmarks on synthetic graphs.

None of the models being projected is timed here, so validating the projection against host
measurements of those models is a prediction, not a fit.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from harness.project.roofline import Roofline
from harness.runtimes.onnxruntime.profile import seconds_per_run

GEMM = (256, 1024, 256)  # M x K x N: the size of a mid-network convolution as a GEMM at batch 1
STREAM_ELEMENTS = 4 * 2**20  # 16 MB per float tensor: well beyond the last-level cache
CHAIN = 64  # layers in the dispatch-cost chain
ELEMENT = {"fp32": (TensorProto.FLOAT, np.float32), "fp16": (TensorProto.FLOAT16, np.float16)}


def microbenchmark(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], output: onnx.ValueInfoProto,
                   weights: list[onnx.TensorProto] | None = None) -> onnx.ModelProto:
    """A synthetic graph at opset 17 (IR 8, which every ONNX Runtime this project allows reads)."""
    model = helper.make_model(helper.make_graph(nodes, "microbenchmark", inputs, [output], weights or []),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], output: onnx.ValueInfoProto) -> bytes:
    return microbenchmark(nodes, inputs, output).SerializeToString()


def _peak_ops(precision: str, threads: int) -> float:
    m, k, n = GEMM
    rng = np.random.default_rng(0)
    if precision == "int8":
        a, b = rng.integers(0, 255, (m, k), dtype=np.uint8), rng.integers(-127, 127, (k, n), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["a", "b"], ["c"])
        types = (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32)
    else:
        onnx_type, np_type = ELEMENT[precision]
        a, b = rng.standard_normal((m, k)).astype(np_type), rng.standard_normal((k, n)).astype(np_type)
        node = helper.make_node("MatMul", ["a", "b"], ["c"])
        types = (onnx_type, onnx_type, onnx_type)
    model = _model([node], [helper.make_tensor_value_info("a", types[0], [m, k]),
                            helper.make_tensor_value_info("b", types[1], [k, n])],
                   helper.make_tensor_value_info("c", types[2], [m, n]))
    return 2.0 * m * k * n / seconds_per_run(model, {"a": a, "b": b}, threads)


@cache
def _bandwidth(threads: int) -> float:
    """Bytes per second of an element-wise Add far larger than the cache: two reads and a write."""
    x = np.ones(STREAM_ELEMENTS, np.float32)
    info = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [STREAM_ELEMENTS]) for name in "abc"]
    model = _model([helper.make_node("Add", ["a", "b"], ["c"])], info[:2], info[2])
    return 3 * x.nbytes / seconds_per_run(model, {"a": x, "b": x}, threads)


@cache
def _dispatch_costs(threads: int) -> tuple[float, float]:
    """(per-inference, per-layer) seconds: one Relu on one element, then a chain of CHAIN of them."""
    def chain(length: int) -> float:
        names = ["x", *(f"h{i}" for i in range(length))]
        nodes = [helper.make_node("Relu", [names[i]], [names[i + 1]]) for i in range(length)]
        model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                       helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [1]))
        return seconds_per_run(model, {"x": np.ones(1, np.float32)}, threads)
    one, many = chain(1), chain(CHAIN)
    per_layer = max(0.0, (many - one) / (CHAIN - 1))
    return max(0.0, one - per_layer), per_layer


@cache
def host_roofline(precision: str, threads: int) -> Roofline:
    """The host's roofline for `precision` with ONNX Runtime's CPU provider at `threads` threads."""
    ops = _peak_ops(precision, threads)
    bandwidth = _bandwidth(threads)
    overhead, per_layer = _dispatch_costs(threads)
    return Roofline(ops, bandwidth, overhead, per_layer, 1.0, (
        f"host roofline measured with ONNX Runtime {ort.__version__} microbenchmarks at {threads} thread(s): "
        f"{precision} {'MatMulInteger' if precision == 'int8' else 'MatMul'} {ops / 1e9:.3g} Gop/s, "
        f"Add stream {bandwidth / 1e9:.3g} GB/s, {overhead * 1e6:.3g} us per inference, "
        f"{per_layer * 1e6:.3g} us per layer"))
