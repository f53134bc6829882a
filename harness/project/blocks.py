"""Synthetic CNN building blocks over sampled configurations: what the latency predictor times.

A block is a few layers as CNNs use them (a convolution and its activation, a residual pair, an inverted
residual, squeeze-and-excitation, a convolution and its pool, a classifier head, and a detector's CSP stage,
upsampling and box head), built with onnx.helper at one configuration (channels, spatial size, kernel, stride)
and converted to the precision with the harness's own passes (ONNX Runtime's float16 converter, the int8 pass's
quantize_static settings), so ONNX Runtime fuses it as it fuses a real network. None is a zoo network: the
predictor is fitted without them.

Two things make a block's kernels run as a network's do. The graph is at the exporter's opset: ONNX Runtime
inlines an FP16 HardSwish into float16 Min and Max kernels at opset 18 and fuses it into the convolution at 17.
And a block runs as `copies` side by side on one input, each with its own weights: in a network, a kernel's
weights and code are evicted by the rest of the network between two runs (ResNet18's 44 MB of FP32 weights
stream from memory on every inference), and a single small block timed in a loop never sees that. The copies
set the working set a kernel's data must survive (kernels.FEATURES' `working_set`). Copies cannot make that set
large around a large kernel (MAX_MACS bounds a block), so some blocks also have other memory touched between
their runs (`evict_mb`, see harness.runtimes.onnxruntime.profile.evictor): YOLOv8-s's convolutions run with
hundreds of megabytes of feature maps between two runs of each, and a block's largest convolutions must too.
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

from harness.models.export import OPSET
from harness.optimize.passes import Int8, prepare_for_quantization
from harness.project.architectures import sample_layer
from harness.runtimes.onnxruntime.profile import standard_normal

BLOCKS = ("conv", "residual", "inverted", "squeeze_excite", "pool", "head", "csp", "upsample", "detect")
# how often each block is sampled: the single convolution spans what the others fix (a stem on the image, widening
# and narrowing, any kernel and stride), and its samples are the plan's quickest
BLOCK_WEIGHTS = {"conv": 4.0}
STEMS = 0.4  # of the convolutions: on the image's 3 channels, one per network and a large share of a small one
# (DMS-Net's stem is half of its INT8 time; at 16 outputs that time is its im2col's, per pixel, not per MAC). As a
# third of the regular dense convolutions, a 25-minute plan drew 40 stems over three precisions (1.8 % of its blocks)
# and DMS-Net pruned INT8's stem was predicted at half its time (-24 %); 200 more stems (1.5 minutes) took profile
# 14's 18 held-out cells from 67 % to 83 % within +/-10 % (offline, docs/latency-prediction.md)
ACTIVATIONS = ("none", "Relu", "HardSwish", "SiLU")  # SiLU as exported: Sigmoid and Mul (ORT fuses it)
GLOBAL_POOLS = ("GlobalAveragePool", "ReduceMean")  # PyTorch's exporter writes AdaptiveAvgPool2d(1) as either
MAX_MACS = 1e9  # a block's cap: a 640x640 detector's largest convolution (YOLOv8-s: 128 -> 128 3x3 at 80x80, 0.94 G).
# A forest cannot extrapolate: under a 200 M cap such convolutions were predicted at the rate of the largest sampled,
# fewer channels over larger maps, 12 % slower per MAC than they run (measured)
MAX_WEIGHTS = 32e6  # elements (128 MB in FP32): four times a large last-level cache, and a file a board takes
MAX_SIZE = 320  # feature maps up to a 640x640 detector's after its stem
INPUT_SIZES = (32, 64, 96, 112, 128, 160, 224, 256, 320, 416, 512, 640)  # images CNNs are commonly fed
# Half the blocks take their channels and size together, as a CNN's stages pair them (`_stage`): drawn apart, a
# network's late stages (hundreds of channels on 2-8 pixels) were as rare in a fit as any other pairing, and its
# INT8 convolutions there were predicted 14-65 % slow from the few samples near them (measured on an AMD EPYC host)
STAGE_PRIOR = 0.5
# A share of the convolutions and residual pairs is a late stage's weight-bound 3x3 convolution, 128-1024 channels on
# 2-4 pixels, which streams its weights once per output: drawn as often as other stages, ResNet18's last stage (512 ->
# 512 on 2x2, its weights past the L3; pruned, 256 -> 256, in it) had a handful of samples, and the forest put both at
# one rate, 17-20 GB/s, where the networks ran them at 12.6 and 38 GB/s. 219 such blocks (4 minutes) added to profile
# 13 took its 18 held-out cells from 44 % to 67 % within +/-10 % (offline, docs/latency-prediction.md)
LATE_STAGE = 0.15
LATE_SIZES = (2, 3, 4)
# Half the convolutions that are neither stems nor late stages are a published architecture's layer at an input size
# CNNs are fed (harness.project.architectures): the ranges above still leave a network's own kernels few near
# neighbours in a 25-minute plan
ARCHITECTURE_SHARE = 0.5
BASE_WIDTHS = (16, 24, 32, 48, 64)  # a CNN's channels after its stem
MAX_COPIES = 16  # copies of a block side by side: working sets from one block's to a large network's
MAX_EVICT_MB = 64  # memory touched between a block's runs: twice a 32 MB last-level cache, where nothing survives
# it (the AMD EPYC VM of "Measured on this host" in docs/latency-prediction.md); the Intel one's 480 MB L3 held it
# A block evicts memory between its runs for its large kernels, whose weights no number of copies surrounds with a
# network's working set. A kernel of fewer weights finds more than its weights cold after an eviction (its input,
# its code, the runtime's state) where in a network the kernel before leaves them warm: 1x1 convolutions on one
# pixel took 2-9 us in evicting blocks, 1.3-2 us in MobileNetV3-Small (Intel Xeon host, profile 17). Below 1 MB an
# evicting block's kernel is not fitted (predictor.timed_kernels), so only a block whose weights reach 1 MB evicts
# (by arithmetic, not measured, 1 MB takes 25-100 us to stream at 10-40 GB/s, well past those few microseconds):
# until 2026-12-04 any block could, and 311 of profile 18's 379 evicting blocks had no kernel left to fit
LARGE_WEIGHT_BYTES = 1 << 20
EVICTING = 0.3  # the share of such blocks that evict: each of a small block's ~60 runs does, up to a second a block
# bytes of a weight by the block's precision: an FP16 convolution runs as a float one on the host, its weights folded
WEIGHT_BYTES = {"fp32": 4, "fp16": 4, "int8": 1}
DFL_BINS = 16  # a YOLOv8 box head's distribution bins per box side
# how a detector's box distribution is written: Ultralytics' export transposes the bins to axis 1 before its softmax;
# written as a view, a softmax over axis 2 and a sum weighted by the bins, it runs in a third of the time per element
# on the Intel host (2 ns against 6-7) and a tenth on the AMD one (1.5 against 16, FP32), which a block drawing only
# the first form taught the predictor as YOLOv8-s's time
DFL_FORMS = ("transposed", "in_place")
CALIBRATION_BATCHES = 4
IR_VERSION = 10  # what torch.onnx writes beside opset 18, as in the zoo's artifacts

Config = dict[str, Any]


def sample_config(rng: np.random.Generator, precision: str, block: str | None = None) -> Config:
    """A random configuration of `block` (any block when None), within MAX_MACS and MAX_WEIGHTS."""
    if block is None:
        weights = np.array([BLOCK_WEIGHTS.get(name, 1.0) for name in BLOCKS])
        block = str(rng.choice(BLOCKS, p=weights / weights.sum()))
    while True:
        late = block in ("conv", "residual") and rng.random() < LATE_STAGE
        stem = block == "conv" and not late and rng.random() < STEMS
        if late:
            channels, size = _channels(rng, low=128), int(rng.choice(LATE_SIZES))
        else:
            channels, size = _stage(rng) if rng.random() < STAGE_PRIOR else (_channels(rng), _size(rng))
        config: Config = {"block": block, "precision": precision, "channels": channels, "size": size,
                          "copies": int(round(math.exp(rng.uniform(0, math.log(MAX_COPIES)))))}
        if block == "conv" and late:
            config |= _dense(rng, _out_channels(rng, channels), 3)
        elif block == "conv" and stem:
            config |= {"channels": 3, "size": int(rng.choice(INPUT_SIZES))}
            config |= _dense(rng, _channels(rng, high=128), int(rng.choice([3, 5, 7])))
        elif block == "conv" and rng.random() < ARCHITECTURE_SHARE:
            layer, size = sample_layer(rng, int(rng.choice(INPUT_SIZES)))
            config |= {"channels": layer.in_channels, "size": size, "out_channels": layer.out_channels,
                       "kernel": layer.kernel, "stride": layer.stride, "depthwise": layer.depthwise,
                       "activation": str(rng.choice(ACTIVATIONS)), "architecture": layer.architecture}
        elif block == "conv":
            depthwise = bool(rng.random() < 0.3)
            kernel = rng.choice([3, 5]) if depthwise else rng.choice([1, 3, 5, 7], p=[.4, .45, .1, .05])
            config |= {"out_channels": config["channels"] if depthwise else _out_channels(rng, config["channels"]),
                       "kernel": int(kernel),
                       "stride": int(rng.choice([1, 2], p=[.7, .3])), "depthwise": depthwise,
                       "activation": str(rng.choice(ACTIVATIONS))}
        elif block == "inverted":
            config |= {"expansion": int(rng.choice([1, 3, 4, 6])), "kernel": int(rng.choice([3, 5])),
                       "stride": int(rng.choice([1, 2])), "activation": str(rng.choice(ACTIVATIONS[1:]))}
        elif block == "squeeze_excite":
            config |= {"pool": str(rng.choice(GLOBAL_POOLS)), "activation": str(rng.choice(ACTIVATIONS[1:])),
                       "placement": "mbconv", "kernel": int(rng.choice([3, 5])), "stride": int(rng.choice([1, 2]))}
        elif block == "pool":
            config |= {"pool": str(rng.choice(["MaxPool", "AveragePool", *GLOBAL_POOLS])),
                       "kernel": int(rng.choice([2, 3, 5])), "stride": int(rng.choice([1, 2]))}
        elif block == "head":
            config |= {"size": int(rng.integers(1, 9)), "hidden": _channels(rng, high=2048),
                       "pool": str(rng.choice(GLOBAL_POOLS)),
                       "classes": int(rng.integers(2, 1001)), "activation": str(rng.choice(ACTIVATIONS[1:]))}
        elif block in ("csp", "upsample"):
            config |= {"activation": str(rng.choice(ACTIVATIONS[1:]))}
        elif block == "detect":
            config |= {"classes": int(rng.integers(1, 81)), "dfl": str(rng.choice(DFL_FORMS))}
        macs, weights = _per_copy(config)
        config["copies"] = min(config["copies"], int(MAX_MACS // max(macs, 1.0)),
                               int(MAX_WEIGHTS // max(weights, 1.0)))
        large = weights * WEIGHT_BYTES[precision] >= LARGE_WEIGHT_BYTES
        config["evict_mb"] = (int(round(math.exp(rng.uniform(0, math.log(MAX_EVICT_MB)))))
                              if large and rng.random() < EVICTING else 0)
        if config["copies"] >= 1:
            return config


def perturb(config: Config, rng: np.random.Generator) -> Config:
    """A neighbour of `config`: its sizes, copies and evicted memory scaled by up to +/-40 %, the rest kept but an
    architecture's name, as the neighbour is not that architecture's layer (adaptive sampling's step). Channels
    stay multiples of 8, as `_channels` samples them: ONNX Runtime's kernels run other counts at other rates per
    MAC, and samples there (a third of a fit's, measured) made the networks' predictions up to 1.5x too slow.
    Sizes stay within the sampled range."""
    for _ in range(20):
        moved = {key: value for key, value in config.items() if key != "architecture"}
        for key in ("channels", "out_channels", "size", "hidden", "classes", "copies", "evict_mb"):
            if key in moved and moved[key] > 3:
                moved[key] = max(1, int(round(moved[key] * math.exp(rng.uniform(-0.34, 0.34)))))
        for key in ("channels", "out_channels", "hidden"):
            if key in moved and moved[key] >= 8:
                moved[key] = 8 * max(1, round(moved[key] / 8))
        moved["size"] = min(moved["size"], max(config["size"], MAX_SIZE))
        if moved.get("depthwise"):
            moved["out_channels"] = moved["channels"]
        if block_macs(moved) <= MAX_MACS and block_weights(moved) <= MAX_WEIGHTS:
            return moved
    return config


def block_macs(config: Config) -> float:
    """Multiply-accumulates of the block's convolutions and matrix products, all copies (the cost that bounds a
    sample's time)."""
    return _per_copy(config)[0] * config.get("copies", 1)


def block_weights(config: Config) -> float:
    """Weight elements of all copies (what bounds a sample's file, shipped to a board per block)."""
    return _per_copy(config)[1] * config.get("copies", 1)


def _per_copy(config: Config) -> tuple[float, float]:
    """(MACs, weight elements) of one copy of the block."""
    c, size, block = config["channels"], config["size"], config["block"]
    pixels, out = size * size, math.ceil(size / config.get("stride", 1)) ** 2
    if block == "conv":
        weights = config["out_channels"] * config["kernel"] ** 2 * (1 if config["depthwise"] else c)
        return out * weights, weights
    if block == "residual":
        return 2 * pixels * c * c * 9, 2 * c * c * 9
    if block == "inverted":
        wide = c * config["expansion"]
        return pixels * c * wide + out * wide * (config["kernel"] ** 2 + c), wide * (2 * c + config["kernel"] ** 2)
    if block == "squeeze_excite":
        if config.get("placement") != "mbconv":
            return 2 * c * max(1, c // 4) + pixels * c, 2 * c * max(1, c // 4)
        around = c * config["kernel"] ** 2 + c * c  # the depthwise and the pointwise convolution
        return 2 * c * max(1, c // 4) + out * (c + around), 2 * c * max(1, c // 4) + around
    if block == "head":
        weights = c * c + c * config["hidden"] + config["hidden"] * config["classes"]
        return weights + (pixels - 1) * c * c, weights
    if block == "csp":  # 1x1, 3x3 on half the channels, 1x1 from one and a half
        weights = c * c + (c // 2) ** 2 * 9 + (c + c // 2) * c
        return pixels * weights, weights
    if block == "upsample":  # a 1x1 convolution, then one at twice the size
        return 5 * pixels * c * c, 2 * c * c
    if block == "detect":
        return pixels * c * (4 * DFL_BINS + config["classes"]), c * (4 * DFL_BINS + config["classes"])
    return pixels * c * (c * 9 + config["kernel"] ** 2), c * c * 9  # pool: its convolution and the pooling


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


def evict_bytes(config: Config) -> int:
    """The memory touched between two runs of the block (blocks sampled before it existed touch none)."""
    return int(config.get("evict_mb", 0)) << 20


def _size(rng: np.random.Generator) -> int:
    """Half the time an input size a CNN is fed, halved by its strides (where networks' feature maps are), else
    log-uniform from 2 to MAX_SIZE (everywhere else)."""
    if rng.random() < 0.5:
        return max(2, min(MAX_SIZE, int(rng.choice(INPUT_SIZES)) >> int(rng.integers(0, 6))))
    return int(round(math.exp(rng.uniform(math.log(2), math.log(MAX_SIZE)))))


def _stage(rng: np.random.Generator) -> tuple[int, int]:
    """(channels, size) of a feature map as a CNN's stages pair them: an input size a CNN is fed halved once per
    stage (1-5), and a base width doubled per stage after the first, times 0.7-1.4, at most 1024 channels."""
    stage = int(rng.integers(1, 6))
    size = max(2, int(rng.choice(INPUT_SIZES)) >> stage)
    width = float(rng.choice(BASE_WIDTHS)) * 2 ** (stage - 1) * math.exp(rng.uniform(-0.34, 0.34))
    return int(8 * max(1, round(min(1024.0, width) / 8))), size


def _out_channels(rng: np.random.Generator, channels: int) -> int:
    """A convolution's output channels: half the time a stage's transition as CNNs make it (the input's doubled,
    quadrupled or halved; a residual pair's same count the other blocks sample), else log-uniform. Drawn apart from
    the input's, 3x3 convolutions with more outputs than inputs were a sixth of a fit's, and ran 10-15 % faster per
    MAC than the same-width ones the forests predicted them from (measured)."""
    if rng.random() < 0.5:
        return 8 * max(1, round(channels * float(rng.choice([0.5, 2.0, 2.0, 4.0])) / 8))
    return _channels(rng)


def _dense(rng: np.random.Generator, out_channels: int, kernel: int) -> Config:
    """A dense convolution's keys with its stride and activation drawn (a late stage's, a stem's)."""
    return {"out_channels": out_channels, "kernel": kernel, "stride": int(rng.choice([1, 2], p=[.7, .3])),
            "depthwise": False, "activation": str(rng.choice(ACTIVATIONS))}


def _channels(rng: np.random.Generator, high: int = 1024, low: int = 8) -> int:
    """Log-uniform from `low` to `high`, a multiple of 8 as networks use them."""
    return int(8 * round(math.exp(rng.uniform(math.log(low), math.log(high))) / 8))


class _Layers:
    """Appends layers to a graph under construction, with He-initialised weights (activations stay in range)."""

    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)

    def add(self, op: str, inputs: list[str], **attributes: Any) -> str:
        return self.add_many(op, inputs, 1, **attributes)[0]

    def add_many(self, op: str, inputs: list[str], outputs: int, **attributes: Any) -> list[str]:
        names = [f"t{len(self.nodes)}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=f"{op.lower()}{len(self.nodes)}", **attributes))
        return names

    def weight(self, shape: list[int], fan_in: int) -> str:
        value = self.rng.standard_normal(shape).astype(np.float32) * np.float32(math.sqrt(2 / max(1, fan_in)))
        return self.constant(value)

    def constant(self, value: np.ndarray) -> str:
        name = f"w{len(self.weights)}"
        self.weights.append(numpy_helper.from_array(value, name))
        return name

    def conv(self, x: str, cin: int, cout: int, kernel: int, stride: int = 1, group: int = 1) -> str:
        w = self.weight([cout, cin // group, kernel, kernel], cin // group * kernel * kernel)
        b = self.weight([cout], 1)
        return self.add("Conv", [x, w, b], kernel_shape=[kernel, kernel], strides=[stride, stride],
                        pads=[kernel // 2] * 4, group=group)

    def act(self, x: str, activation: str) -> str:
        if activation == "SiLU":
            return self.add("Mul", [x, self.add("Sigmoid", [x])])
        return x if activation == "none" else self.add(activation, [x])

    def global_pool(self, x: str, op: str) -> str:
        """A global average pool as an exporter writes it: GlobalAveragePool, or ReduceMean over H and W."""
        if op == "ReduceMean":
            return self.add(op, [x, self.constant(np.array([2, 3], np.int64))], keepdims=1)
        return self.add(op, [x])

    def gemm(self, x: str, cin: int, cout: int) -> str:
        return self.add("Gemm", [x, self.weight([cout, cin], cin), self.weight([cout], 1)], transB=1)

    def upsample(self, x: str) -> str:
        """Nearest-neighbour upsampling by two, as a detector's neck does it."""
        scales = self.constant(np.array([1, 1, 2, 2], np.float32))
        return self.add("Resize", [x, "", scales], mode="nearest")


def _float_block(config: Config) -> onnx.ModelProto:
    """`copies` of the block side by side on the input `x`; every tensor no layer reads is an output."""
    g = _Layers(seed=zlib.crc32(json.dumps(config, sort_keys=True).encode()))
    for _ in range(config.get("copies", 1)):
        _add_block(g, config)
    read = {name for node in g.nodes for name in node.input}
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
               for node in g.nodes for name in node.output if name not in read]
    graph = helper.make_graph(g.nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                               block_shape(config))],
                              outputs, g.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def _add_block(g: _Layers, config: Config) -> None:
    c, size, block, act = config["channels"], config["size"], config["block"], config.get("activation", "none")
    if block == "conv":
        group = c if config["depthwise"] else 1
        g.act(g.conv("x", c, config["out_channels"], config["kernel"], config["stride"], group), act)
    elif block == "residual":
        g.add("Relu", [g.add("Add", [g.conv(g.add("Relu", [g.conv("x", c, c, 3)]), c, c, 3), "x"])])
    elif block == "inverted":
        wide = c * config["expansion"]
        y = g.act(g.conv("x", c, wide, 1), act) if config["expansion"] > 1 else "x"
        y = g.conv(g.act(g.conv(y, wide, wide, config["kernel"], config["stride"], wide), act), wide, c, 1)
        if config["stride"] == 1:
            g.add("Add", [y, "x"])
    elif block == "squeeze_excite":
        # between a depthwise and a pointwise convolution, as MobileNetV3 places it: there ONNX Runtime runs an INT8
        # network's pool and scaling on NHWC tensors (its pool 9.4 us against 1.4 on the input's NCHW one, 144
        # channels on 14x14), and the scaling is not the output the fit leaves out (predictor.timed_kernels). On the
        # input until 2026-12-05 (blocks sampled before the key existed): MobileNetV3 INT8's pools were predicted at
        # a third of their time, and refitted without the new blocks profile 29 scores 78 % within +/-10 %, with 94 %
        mbconv = config.get("placement") == "mbconv"
        y = g.act(g.conv("x", c, c, config["kernel"], config["stride"], c), act) if mbconv else "x"
        squeezed = g.add("Relu", [g.conv(g.global_pool(y, config["pool"]), c, max(1, c // 4), 1)])
        excited = g.add("Mul", [g.add("HardSigmoid", [g.conv(squeezed, max(1, c // 4), c, 1)]), y])
        if mbconv:
            g.conv(excited, c, c, 1)
    elif block == "pool":  # after a convolution, as in a network: ONNX Runtime then keeps its layout
        kernel, y = config["kernel"], g.add("Relu", [g.conv("x", c, c, 3)])
        stride = config.get("stride", 2)
        if config["pool"] in GLOBAL_POOLS:
            g.global_pool(y, config["pool"])
        else:  # padded as networks pad: none for 2x2, one for 3x3 (ResNet's), two for 5x5 (YOLOv8's SPPF)
            g.add(config["pool"], [y], kernel_shape=[kernel, kernel], strides=[stride, stride],
                  pads=[(kernel - 1) // 2] * 4)
    elif block == "head":  # after a pointwise convolution
        flat = g.add("Flatten", [g.global_pool(g.add("Relu", [g.conv("x", c, c, 1)]), config["pool"])])
        g.gemm(g.act(g.gemm(flat, c, config["hidden"]), act), config["hidden"], config["classes"])
    elif block == "csp":  # YOLOv8's C2f: split, a convolution on one half, everything concatenated
        half = max(1, c // 2)
        y = g.act(g.conv("x", c, 2 * half, 1), act)
        first, second = g.add_many("Split", [y, g.constant(np.array([half, half], np.int64))], 2, axis=1)
        z = g.act(g.conv(second, half, half, 3), act)
        g.act(g.conv(g.add("Concat", [first, second, z], axis=1), 3 * half, c, 1), act)
    elif block == "upsample":  # a detector's neck: a lateral convolution upsampled, concatenated with its own
        up = g.upsample(g.act(g.conv("x", c, c, 1), act))
        g.add("Concat", [up, g.act(g.conv(up, c, c, 1), act)], axis=1)
    else:  # detect: YOLOv8's box distribution (softmax over bins, in either form) and class scores (sigmoid)
        boxes = g.add("Reshape", [g.conv("x", c, 4 * DFL_BINS, 1),
                                  g.constant(np.array([1, 4, DFL_BINS, size * size], np.int64))])
        if config.get("dfl") == "in_place":
            bins = g.constant(np.arange(DFL_BINS, dtype=np.float32).reshape(1, 1, DFL_BINS, 1))
            g.add("ReduceSum", [g.add("Mul", [g.add("Softmax", [boxes], axis=2), bins]),
                                g.constant(np.array([2], np.int64))], keepdims=0)
        else:  # blocks sampled before the key existed are this form
            g.add("Softmax", [g.add("Transpose", [boxes], perm=[0, 2, 1, 3])], axis=1)
        g.add("Sigmoid", [g.conv("x", c, config["classes"], 1)])


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
