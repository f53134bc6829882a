"""The kernels a runtime really runs for a model: ONNX Runtime's graph after its fusions, node by node, with the
shapes each node saw and the time it took.

ONNX Runtime fuses before it runs (Conv+Relu into one NCHWc Conv on x86, QDQ pairs into QLinearConv, FP16 weights
folded to FP32 with Casts inserted where the CPU has no FP16 kernel), so a latency model must count the fused
kernels, not the exported nodes. Its optimised graph (`optimized_model_filepath`) names them and holds their
attributes and weights; its per-node profile (`enable_profiling`) gives each one's runtime input and output shapes,
which Python's shape inference cannot compute for ONNX Runtime's NCHWc contrib ops, and its time. The same
profile from a board (harness.device) is a set of per-layer samples of that board's kernels.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from harness.errors import NcapError
from harness.runtimes.onnxruntime.profile import layer_profile, quiet_runs, standard_normal

# One row of numbers per kernel, the regressors' input (log-scaled there): what decides a CPU kernel's time.
FEATURES = ("macs", "input_elements", "output_elements", "weight_elements", "kernel_area", "stride", "groups",
            "in_channels", "out_channels", "output_pixels", "working_set")
ELEMENT_BYTES = {"float": 4, "float16": 2, "uint8": 1, "int8": 1}  # by a kernel type's element type
CONV_OPS = {"Conv", "FusedConv", "QLinearConv", "ConvInteger", "ConvTranspose"}
MATMUL_OPS = {"MatMul", "Gemm", "FusedGemm", "FusedMatMul", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
              "DynamicQuantizeMatMul", "QGemm"}
FUSED_ADD_INPUT = 3  # a fused convolution's residual input: X, W, B, then Sum (NCHWc Conv) or Z (FusedConv)
POOL_OPS = {"MaxPool", "AveragePool", "QLinearAveragePool", "NhwcMaxPool"}  # NhwcMaxPool: ORT's INT8 max pool


@dataclass(frozen=True)
class Kernel:
    """One executed node of the optimised graph."""

    name: str
    kind: str  # the kernel type: op after fusion, its domain and its input's element type, e.g. nchwc.Conv:float
    features: dict[str, float]
    microseconds: float | None = None  # its mean time over the profiled runs; None where not timed
    writes_output: bool = False  # one of its outputs is the graph's: written to memory handed to the caller each run

    def row(self) -> list[float]:
        return [self.features[name] for name in FEATURES]

    @property
    def weight_bytes(self) -> float:
        """The bytes of the weights (and other constants) it reads, at their stored width."""
        return element_bytes(self.kind) * self.features["weight_elements"]


def element_bytes(kind: str) -> int:
    """The bytes of one element of a kernel type's data, by its input's element type (the end of its name)."""
    return ELEMENT_BYTES.get(kind.rsplit(":", 1)[-1], 4)


def profile_model(model: Path | bytes, feeds: dict[str, np.ndarray], threads: int, runs: int = 3,
                  warmup: int = 2, disabled_optimizers: tuple[str, ...] = (), sessions: int = 1) -> list[Kernel]:
    """Run the model `runs` times under ONNX Runtime's profiler and return its kernels with their quiet times (in the
    fastest of `sessions` sessions, see `layer_profile`)."""
    events, graph = layer_profile(model, feeds, threads, runs, warmup, disabled_optimizers, sessions=sessions)
    return kernels_from_profile(onnx.load_from_string(graph).graph, events, skip_runs=warmup)


def kernels_from_profile(graph: onnx.GraphProto, events: list[dict[str, Any]], skip_runs: int = 0,
                         evict_bytes: int = 0, block: bool = False) -> list[Kernel]:
    """The kernels of an ONNX Runtime profile (its JSON events) joined with the optimised graph it ran, in order of
    execution; each kernel's time is its mean over the quiet runs after the first `skip_runs` (`_quiet_times`).
    `evict_bytes`: the memory touched between runs besides the graph's (runtimes.onnxruntime.profile.evictor);
    `block`: the graph is a profiling plan's block, not a network (its working set is summed another way)."""
    nodes = {node.name: node for node in graph.node}
    weights = {init.name: list(init.dims) for init in graph.initializer}
    runs: list[dict[str, float]] = []  # each run's kernel times by node name
    shapes: dict[str, dict[str, Any]] = {}
    for event in events:
        if not event.get("name", "").endswith("_kernel_time"):
            continue
        name = event["name"][: -len("_kernel_time")]
        if name not in shapes:
            shapes[name] = event["args"]
        if name == next(iter(shapes)):
            runs.append({})  # the first node of the graph starts a run
        runs[-1][name] = float(event["dur"])
    times = _quiet_times(runs[skip_runs:])
    # a node the saved graph leaves unnamed (the session names it when it loads) is the next unnamed one of its op
    unnamed: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        if node.name not in shapes:
            unnamed[node.op_type].append(node)
    known = {name: nodes.get(name) if name in nodes else _next(unnamed[args.get("op_name", "?")], name, args)
             for name, args in shapes.items()}
    if shapes and not any(node.input for node in known.values()):
        raise NcapError("the profile names none of the optimised graph's nodes; profile and graph must come from "
                        "the same session")
    kinds = {name: _kind(known[name], args) for name, args in shapes.items()}
    features = {name: _features(known[name], args, weights) for name, args in shapes.items()}
    held = [(element_bytes(kinds[name]) * features[name]["weight_elements"],
             element_bytes(kinds[name]) * features[name]["output_elements"]) for name in shapes]
    working_set = evict_bytes + (sum(w + o for w, o in held) if block else _network_working_set(held))
    graph_outputs = {output.name for output in graph.output}
    return [Kernel(name, kinds[name], features[name] | {"working_set": working_set}, times.get(name),
                   writes_output=bool(graph_outputs.intersection(known[name].output)))
            for name in shapes]


def _network_working_set(held: list[tuple[float, float]]) -> float:
    """A network's working set from its kernels' (weight bytes, output bytes): its weights and twice its largest
    output (a layer's input and output, live at once). Between two runs of a kernel the rest of the graph touches
    the whole set, so its data stays in a cache only where the whole set fits. A network is a chain, and ONNX
    Runtime's memory plan reuses its activation buffers; summed as a block's are (every copy's output kept), its
    outputs put YOLOv8-s at 444 MB and predicted every network's kernels as if colder: +4 to +7 % on average over
    five profiles' held-out cells, 50-72 % of them within +/-10 %, against +3 to +5 % and 56-83 % with this (Intel
    Xeon host, 2026-12-04; docs/latency-prediction.md). A block is still summed: its rule for blocks too scored
    44 % and 72 % on two of the profiles."""
    return sum(w for w, _ in held) + 2 * max((o for _, o in held), default=0.0)


def _next(candidates: list[onnx.NodeProto], name: str, args: dict[str, Any]) -> onnx.NodeProto:
    """The first of `candidates`, taken; where there is none (a function such as HardSwish the session inlined
    after saving the graph), a stand-in known by the profile's op name and shapes alone."""
    return candidates.pop(0) if candidates else onnx.helper.make_node(args.get("op_name", "?"), [], [], name=name)


def _kind(node: onnx.NodeProto, args: dict[str, Any]) -> str:
    domain = node.domain.rsplit(".", 1)[-1] + "." if node.domain and node.domain != "ai.onnx" else ""
    inputs = args.get("input_type_shape") or [{"none": []}]
    return f"{domain}{node.op_type}:{next(iter(inputs[0]))}"


def _features(node: onnx.NodeProto, args: dict[str, Any], weights: dict[str, list[int]]) -> dict[str, float]:
    inputs = [next(iter(shape.values())) for shape in args.get("input_type_shape", [])]
    outputs = [next(iter(shape.values())) for shape in args.get("output_type_shape", [])]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    # a weight's shape from the graph: an int8 kernel's prepacked weight is missing from the profile
    weight_shapes = [weights[name] for name in node.input if name in weights]
    out = outputs[0] if outputs else []
    out_elements = float(math.prod(out)) if outputs else 0.0
    groups = float(attributes.get("group", 1))
    kernel = attributes.get("kernel_shape") or []
    strides = attributes.get("strides") or [1]
    channel_axis = -1 if node.op_type.startswith("Nhwc") or attributes.get("channels_last") else 1
    in_channels = out_channels = float(inputs[0][channel_axis]) if inputs and len(inputs[0]) == 4 else 0.0
    macs = out_elements
    if node.op_type in CONV_OPS:
        weight = _conv_weight(weight_shapes, inputs)
        kernel = kernel or weight[2:]
        in_channels, out_channels = float(weight[1] * groups), float(weight[0])
        macs = out_elements * math.prod(weight[1:])
    elif node.op_type in MATMUL_OPS and inputs and inputs[0]:
        transposed = bool(attributes.get("transA", 0))
        depth = inputs[0][-2] if transposed and len(inputs[0]) > 1 else inputs[0][-1]
        macs, in_channels, out_channels = out_elements * depth, float(depth), float(out[-1]) if out else 0.0
    elif node.op_type in POOL_OPS:
        macs = out_elements * math.prod(kernel or [1])
    elif node.op_type.startswith(("Global", "QLinearGlobal")) and inputs:
        macs = float(math.prod(inputs[0]))
    # A residual Add fused into a convolution (NCHWc Conv's Sum, FusedConv's Z: a 4th input, which ONNX's Conv
    # lacks, and the last the profile lists, as it leaves out an absent bias) is not its input: counted, it made
    # ResNet18's 512 -> 512 convolutions on 2x2 pixels look like ones of twice the input, predicted 32 % too fast;
    # none of the fit's 19 837 convolutions had an Add fused
    fused_add = node.op_type in ("Conv", "FusedConv") and len(node.input) > FUSED_ADD_INPUT
    read = inputs[:-1] if fused_add else inputs
    activations = [shape for name, shape in zip(node.input, read, strict=False) if name not in weights]
    return {"macs": macs, "input_elements": float(sum(math.prod(s) for s in activations)),
            "output_elements": out_elements, "weight_elements": float(sum(math.prod(s) for s in weight_shapes)),
            "kernel_area": float(math.prod(kernel or [1])), "stride": float(max(strides)), "groups": groups,
            "in_channels": in_channels, "out_channels": out_channels,
            "output_pixels": out_elements / out_channels if out_channels else out_elements}


def _conv_weight(weight_shapes: list[list[int]], inputs: list[list[int]]) -> list[int]:
    """[Cout, Cin/group, kH, kW]: the first 4-D weight of the node, else its second runtime input."""
    return next((shape for shape in weight_shapes if len(shape) == 4),
                inputs[1] if len(inputs) > 1 and len(inputs[1]) == 4 else [1, 1, 1, 1])


def _quiet_times(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each kernel's mean time over the runs at the machine's quiet speed, the fastest by their kernels' total
    (`quiet_runs`), as a block's wall time and the held-out truth are timed. Whole runs are chosen, not each
    kernel's fastest times: the profile counts whole microseconds, and a kernel's own fastest would be its
    rounded-down ones."""
    quiet = [runs[index] for index in quiet_runs([sum(run.values()) for run in runs])] if runs else []
    names = {name for run in quiet for name in run}
    return {name: float(np.mean([run[name] for run in quiet if name in run])) for name in names}


def network_kernels(model: Path, threads: int, disabled_optimizers: tuple[str, ...] = ()) -> list[Kernel]:
    """The kernels ONNX Runtime runs for `model` at batch 1 (one profiled run: their shapes, not their times),
    without the graph transformers in `disabled_optimizers` (those the predictor's machine lacks)."""
    kernels = profile_model(model, standard_normal_feeds(model), threads, runs=1, warmup=0,
                            disabled_optimizers=disabled_optimizers)
    return [Kernel(k.name, k.kind, k.features) for k in kernels]


def standard_normal_feeds(model: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded standard-normal batch-1 input for each of the model's float inputs (the blocks are timed on the
    same kind of input, so a network and its kernels see alike data)."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return {i.name: standard_normal([d if isinstance(d, int) else 1 for d in i.shape], seed)
            for i in session.get_inputs()}
