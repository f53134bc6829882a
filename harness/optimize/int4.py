"""Weight-only INT4: 4-bit weights where ONNX Runtime can compute with them, 4-bit storage elsewhere.

ONNX Runtime's CPU provider has a 4-bit kernel only for matrix products (MatMulNBits), so MatMul
and Gemm layers go through its MatMulNBitsQuantizer. It has no INT4 convolution: Conv weights
are stored as INT4 in a QDQ graph and dequantised to float32 for the float Conv kernel. The pass
asks ORT which kernels it really runs and says so in its record.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

from harness.optimize.passes import Int8, PassContext, prepare_for_quantization
from harness.runtimes.onnxruntime.runner import session_options

ACCURACY_LEVEL = 4  # MatMulNBits: int8 activations x int4 weights, where MLAS has the kernel for this CPU


class Int4:
    """Recipe form `int4[:BLOCK]`: MatMul/Gemm weights to MatMulNBits in blocks of BLOCK (a power of two,
    at least 16; default 32) along the input dimension, Conv weights to QDQ INT4 per output channel."""

    name = precision = "int4"

    def __init__(self, block_size: int = 32, calibration_images: int = 200) -> None:
        if block_size < 16 or block_size & (block_size - 1):
            raise ValueError(f"block size {block_size} is not a power of two >= 16 (MatMulNBits needs one)")
        self.block_size = block_size
        self.conv = Int8(calibration_images=calibration_images)  # the static quantiser, with 4-bit weights

    @classmethod
    def parse(cls, arg: str | None) -> Int4:
        return cls(int(arg)) if arg else cls()

    def params(self) -> dict[str, Any]:
        return {"matmul": {"op": "MatMulNBits", "bits": 4, "block_size": self.block_size, "symmetric": True,
                           "accuracy_level": ACCURACY_LEVEL},
                "conv": {**self.conv.params(), "weight_type": "QInt4"}}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="ncap-int4-") as scratch:
            prepared = Path(scratch) / "prepared.onnx"
            upgraded_from = prepare_for_quantization(source, prepared)
            model = onnx.load(str(prepared))
            converted = gemm_to_matmul(model.graph)
            quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=self.block_size, is_symmetric=True,
                                             accuracy_level=ACCURACY_LEVEL)
            quantizer.process()
            onnx.save(quantizer.model.model, str(prepared))
            self.conv.quantize(prepared, target, context, weight_type=QuantType.QInt4, op_types=["Conv"])
        kernels = ort_kernels(target)
        return {"tool": "onnxruntime.quantization MatMulNBitsQuantizer + quantize_static(weight_type=QInt4)",
                "opset_upgraded_from": upgraded_from, "gemm_converted_to_matmul": converted,
                "ort_kernels": dict(kernels), "compute": describe_compute(kernels)}


def gemm_to_matmul(graph: onnx.GraphProto) -> int:
    """Rewrite Gemm with a constant B (alpha = beta = 1, A not transposed) as MatMul (+ Add), in place.

    MatMulNBitsQuantizer only quantises MatMul; a classifier head is usually a Gemm.
    """
    weights = {init.name: init for init in graph.initializer}
    rewritten, nodes = 0, []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in weights or attrs.get("transA", 0)
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            nodes.append(node)
            continue
        b = weights[node.input[1]]
        if attrs.get("transB", 0):
            b.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(b).T), b.name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", node.input[:2], [product], name=node.name))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_bias"))
        rewritten += 1
    graph.ClearField("node")
    graph.node.extend(nodes)
    return rewritten


def ort_kernels(model: Path) -> Counter[str]:
    """The operators ONNX Runtime's CPU provider runs after its graph optimisations (QDQ fusion included)."""
    with tempfile.TemporaryDirectory(prefix="ncap-ort-") as scratch:
        options = session_options(1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # no NCHWc layout ops
        options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
        ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        return Counter(node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node)


def describe_compute(kernels: Counter[str]) -> str:
    """One sentence for the report: what runs in 4 bits and what only stores 4 bits."""
    parts = []
    if kernels["MatMulNBits"]:
        parts.append(f"{kernels['MatMulNBits']} MatMul/Gemm as MatMulNBits (4-bit weights, "
                     f"accuracy_level {ACCURACY_LEVEL}: int8 activations where MLAS supports this CPU)")
    if kernels["Conv"]:
        parts.append(f"{kernels['Conv']} Conv in float32 on INT4-stored weights dequantised by DequantizeLinear "
                     "(ONNX Runtime CPU has no INT4 convolution)")
    if kernels["QLinearConv"]:
        parts.append(f"{kernels['QLinearConv']} Conv as QLinearConv (8-bit)")
    return "; ".join(parts) or "no 4-bit layer found (no Conv, MatMul or Gemm with constant weights)"
