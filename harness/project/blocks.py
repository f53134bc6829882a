"""Synthetic CNN building blocks over sampled configurations: what the latency predictor times.

A block is a few layers as CNNs use them (a convolution and its activation, a residual pair, an inverted
residual, squeeze-and-excitation, a convolution and its pool, a classifier head), built with onnx.helper at one
configuration (channels, spatial size, kernel, stride) and converted to the precision with the harness's own
passes (ONNX Runtime's float16 converter, the int8 pass's quantize_static settings), so ONNX Runtime fuses it
as it fuses a real network. None is a zoo network: the predictor is fitted without them.
"""
from __future__ import annotations

import json
import math
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.transformers.float16 import convert_float_to_float16

from harness.optimize.passes import Int8, prepare_for_quantization
from harness.project.host import microbenchmark
from harness.runtimes.onnxruntime.profile import standard_normal

BLOCKS = ("conv", "residual", "inverted", "squeeze_excite", "pool", "head")
ACTIVATIONS = ("none", "Relu", "HardSwish")
GLOBAL_POOLS = ("GlobalAveragePool", "ReduceMean")  # PyTorch's exporter writes AdaptiveAvgPool2d(1) as either
MAX_MACS = 200e6  # a block's cap: larger ones only cost profiling time, their rate per MAC is that of these
MAX_SIZE = 320  # feature maps up to a 640x640 detector's after its stem
CALIBRATION_BATCHES = 4

Config = dict[str, Any]


def sample_config(rng: np.random.Generator, precision: str, block: str | None = None) -> Config:
    """A random configuration of `block` (any block when None), within MAX_MACS."""
    block = block or str(rng.choice(BLOCKS))
    while True:
        config: Config = {"block": block, "precision": precision, "channels": _channels(rng),
                          "size": int(round(math.exp(rng.uniform(math.log(2), math.log(MAX_SIZE)))))}
        if block == "conv":
            depthwise = bool(rng.random() < 0.3)
            kernel = rng.choice([3, 5]) if depthwise else rng.choice([1, 3, 5, 7], p=[.4, .45, .1, .05])
            config |= {"out_channels": config["channels"] if depthwise else _channels(rng), "kernel": int(kernel),
                       "stride": int(rng.choice([1, 2], p=[.7, .3])), "depthwise": depthwise,
                       "activation": str(rng.choice(ACTIVATIONS))}
            if not depthwise and rng.random() < 0.1:
                config["channels"] = 3  # a stem on the image
        elif block == "inverted":
            config |= {"expansion": int(rng.choice([1, 3, 4, 6])), "kernel": int(rng.choice([3, 5])),
                       "stride": int(rng.choice([1, 2])), "activation": str(rng.choice(ACTIVATIONS[1:]))}
        elif block == "squeeze_excite":
            config |= {"pool": str(rng.choice(GLOBAL_POOLS))}
        elif block == "pool":
            config |= {"pool": str(rng.choice(["MaxPool", "AveragePool", *GLOBAL_POOLS])),
                       "kernel": int(rng.choice([2, 3]))}
        elif block == "head":
            config |= {"size": int(rng.integers(1, 9)), "hidden": _channels(rng, high=2048),
                       "pool": str(rng.choice(GLOBAL_POOLS)),
                       "classes": int(rng.integers(2, 1001)), "activation": str(rng.choice(ACTIVATIONS[1:]))}
        if block_macs(config) <= MAX_MACS:
            return config


def perturb(config: Config, rng: np.random.Generator) -> Config:
    """A neighbour of `config`: its sizes scaled by up to +/-40 %, the rest kept (adaptive sampling's step)."""
    for _ in range(20):
        moved = dict(config)
        for key in ("channels", "out_channels", "size", "hidden", "classes"):
            if key in moved and moved[key] > 3:
                moved[key] = max(1, int(round(moved[key] * math.exp(rng.uniform(-0.34, 0.34)))))
        if moved.get("depthwise"):
            moved["out_channels"] = moved["channels"]
        if block_macs(moved) <= MAX_MACS:
            return moved
    return config


def block_macs(config: Config) -> float:
    """Multiply-accumulates of the block's convolutions and matrix products (the cost that bounds a sample)."""
    c, size, block = config["channels"], config["size"], config["block"]
    out = math.ceil(size / config.get("stride", 1)) ** 2
    if block == "conv":
        per_output = config["kernel"] ** 2 * (1 if config["depthwise"] else c)
        return out * config["out_channels"] * per_output
    if block == "residual":
        return 2 * size * size * c * c * 9
    if block == "inverted":
        wide = c * config["expansion"]
        return size * size * c * wide + out * wide * (config["kernel"] ** 2 + c)
    if block == "squeeze_excite":
        return 2 * c * max(1, c // 4) + size * size * c
    if block == "head":
        return c * config["hidden"] + config["hidden"] * config["classes"] + size * size * c * c
    return size * size * c * (c * 9 + config["kernel"] ** 2)  # pool: its convolution and the pooling


def block_model(config: Config) -> bytes:
    """The block at its precision, serialised."""
    model = _float_block(config)
    if config["precision"] == "fp16":
        model = convert_float_to_float16(model, keep_io_types=True)
    elif config["precision"] == "int8":
        model = _int8(model, config)
    return model.SerializeToString()


def block_feeds(config: Config, seed: int = 0) -> dict[str, np.ndarray]:
    """A standard-normal input for the block (what the held-out evaluation feeds the networks too)."""
    return {"x": standard_normal(block_shape(config), seed)}


def block_shape(config: Config) -> list[int]:
    return [1, config["channels"], config["size"], config["size"]]


def _channels(rng: np.random.Generator, high: int = 1024) -> int:
    """Log-uniform from 8 to `high`, a multiple of 8 as networks use them."""
    return int(8 * round(math.exp(rng.uniform(math.log(8), math.log(high))) / 8))


class _Layers:
    """Appends layers to a graph under construction, with He-initialised weights (activations stay in range)."""

    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)

    def add(self, op: str, inputs: list[str], **attributes: Any) -> str:
        out = f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}{len(self.nodes)}", **attributes))
        return out

    def weight(self, shape: list[int], fan_in: int) -> str:
        name = f"w{len(self.weights)}"
        value = self.rng.standard_normal(shape).astype(np.float32) * np.float32(math.sqrt(2 / max(1, fan_in)))
        self.weights.append(numpy_helper.from_array(value, name))
        return name

    def conv(self, x: str, cin: int, cout: int, kernel: int, stride: int = 1, group: int = 1) -> str:
        w = self.weight([cout, cin // group, kernel, kernel], cin // group * kernel * kernel)
        b = self.weight([cout], 1)
        return self.add("Conv", [x, w, b], kernel_shape=[kernel, kernel], strides=[stride, stride],
                        pads=[kernel // 2] * 4, group=group)

    def act(self, x: str, activation: str) -> str:
        return x if activation == "none" else self.add(activation, [x])

    def global_pool(self, x: str, op: str) -> str:
        """A global average pool as an exporter writes it: GlobalAveragePool, or ReduceMean over H and W."""
        return self.add(op, [x], axes=[2, 3], keepdims=1) if op == "ReduceMean" else self.add(op, [x])

    def gemm(self, x: str, cin: int, cout: int) -> str:
        return self.add("Gemm", [x, self.weight([cout, cin], cin), self.weight([cout], 1)], transB=1)


def _float_block(config: Config) -> onnx.ModelProto:
    c, block = config["channels"], config["block"]
    g = _Layers(seed=zlib.crc32(json.dumps(config, sort_keys=True).encode()))
    if block == "conv":
        group = c if config["depthwise"] else 1
        y = g.act(g.conv("x", c, config["out_channels"], config["kernel"], config["stride"], group),
                  config["activation"])
    elif block == "residual":
        y = g.add("Relu", [g.add("Add", [g.conv(g.add("Relu", [g.conv("x", c, c, 3)]), c, c, 3), "x"])])
    elif block == "inverted":
        wide, act = c * config["expansion"], config["activation"]
        y = g.act(g.conv("x", c, wide, 1), act) if config["expansion"] > 1 else "x"
        y = g.conv(g.act(g.conv(y, wide, wide, config["kernel"], config["stride"], wide), act), wide, c, 1)
        y = g.add("Add", [y, "x"]) if config["stride"] == 1 else y
    elif block == "squeeze_excite":
        squeezed = g.add("Relu", [g.conv(g.global_pool("x", config["pool"]), c, max(1, c // 4), 1)])
        y = g.add("Mul", [g.add("HardSigmoid", [g.conv(squeezed, max(1, c // 4), c, 1)]), "x"])
    elif block == "pool":  # after a convolution, as in a network: ONNX Runtime then keeps its layout
        kernel, y = config["kernel"], g.add("Relu", [g.conv("x", c, c, 3)])
        y = (g.global_pool(y, config["pool"]) if config["pool"] in GLOBAL_POOLS else
             g.add(config["pool"], [y], kernel_shape=[kernel, kernel], strides=[2, 2], pads=[kernel // 2] * 4))
    else:  # head, after a pointwise convolution
        flat = g.add("Flatten", [g.global_pool(g.add("Relu", [g.conv("x", c, c, 1)]), config["pool"])])
        y = g.gemm(g.act(g.gemm(flat, c, config["hidden"]), config["activation"]), config["hidden"], config["classes"])
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, block_shape(config))]
    g.nodes[-1].output[0] = "y"  # every block ends on the layer that made `y`
    return microbenchmark(g.nodes, inputs, helper.make_tensor_value_info("y", TensorProto.FLOAT, None), g.weights)


class _Batches(CalibrationDataReader):
    def __init__(self, config: Config) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = (block_feeds(config, seed)
                                                          for seed in range(CALIBRATION_BATCHES))

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _int8(model: onnx.ModelProto, config: Config) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory(prefix="ncap-block-") as scratch:
        source, prepared, target = (Path(scratch) / name for name in ("float.onnx", "prepared.onnx", "int8.onnx"))
        onnx.save(model, str(source))
        prepare_for_quantization(source, prepared)
        Int8().quantize_with(prepared, target, _Batches(config))
        return onnx.load(str(target))
