"""The kernel-level latency predictor: fusion detection, kernel features, the regressors' sum, its file, the
profiling plan's adaptive step and the projection that names it. Nothing here asserts a timing: the predictor's
real error is measured by benchmarks/projection_error.py."""
from __future__ import annotations

import json
from dataclasses import replace
from importlib.util import find_spec
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_plugin import SUITE, records

from conftest import FAST, tiny_classifier
from harness.errors import NcapError
from harness.project import architectures, blocks, profiling, validate
from harness.project.drift import Drift
from harness.project.kernels import FEATURES, Kernel, kernels_from_profile, network_kernels, profile_model
from harness.project.predictor import (
    Predictor,
    PredictorRecord,
    Sample,
    load_predictor,
    overheads,
    predictor_path,
    timed_by_kind,
    wall_timed,
)
from harness.runtimes.onnxruntime import profile

needs_sklearn = pytest.mark.skipif(find_spec("sklearn") is None,
                                   reason="the predictor's regressors need scikit-learn: pip install '.[predict]'")

CALL_US, PER_KERNEL_US = 10.0, 1.0  # the synthetic runtime's overheads


def conv_relu(path, channels=16, size=16):
    weight = numpy_helper.from_array(np.ones((channels, 3, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "conv_relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                 [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def kernel(kind, macs, us=None):
    features = dict.fromkeys(FEATURES, 1.0) | {"macs": macs, "output_elements": macs / 10}
    return Kernel(f"k{macs:g}", kind, features, us)


def weighted_conv(weight_bytes, us, writes_output=False):
    """An FP32 NCHWc convolution reading `weight_bytes` of weights (4 bytes a weight)."""
    features = dict.fromkeys(FEATURES, 1.0) | {"macs": weight_bytes, "weight_elements": weight_bytes / 4}
    return Kernel(f"conv{weight_bytes:g}", "nchwc.Conv:float", features, us, writes_output)


def true_us(macs):
    return macs / 1000 + 2


def synthetic_predictor(held_out=None, samples=40):
    """Blocks of one Conv and one Relu each, their times a known function of the MACs: no timing involved."""
    timed = []
    for i in range(samples):
        macs = 1e4 * (i + 1)
        kernels = [kernel("Conv:float", macs, true_us(macs)), kernel("Relu:float", macs / 10, true_us(macs / 10))]
        kernels = [kernels[:1], kernels[1:], kernels][i % 3]  # so the call's and each type's overheads are told apart
        wall_us = sum(k.microseconds for k in kernels) + CALL_US + PER_KERNEL_US * len(kernels)
        timed.append(Sample({"block": "conv", "index": i}, wall_us / 1e3, kernels))
    record = PredictorRecord("host", "test CPU", "onnxruntime", 1, "2026-01-02T03:04:05+00:00", 60.0,
                             {}, held_out)
    return Predictor(record, timed)


def test_fused_conv_relu_is_one_kernel_with_the_conv_features(tmp_path):
    """ONNX Runtime fuses the Relu into the Conv: the predictor must count one convolution kernel, not two."""
    model = conv_relu(tmp_path / "conv_relu.onnx")
    kernels = profile_model(model, {"x": np.ones((1, 3, 16, 16), np.float32)}, threads=1, runs=2, warmup=1)
    assert not any(k.kind.startswith("Relu") for k in kernels)
    (conv,) = [k for k in kernels if k.kind.split(":")[0].rsplit(".", 1)[-1] in {"Conv", "FusedConv"}]
    # 8x8 outputs (stride 2) x 16 channels (a whole NCHWc block: x86 pads channels to one) x 3x3x3
    assert conv.features["macs"] == 8 * 8 * 16 * 3 * 3 * 3
    assert conv.features["stride"] == 2 and conv.features["kernel_area"] == 9
    assert conv.features["in_channels"] == 3 and conv.features["out_channels"] == 16
    assert conv.microseconds is not None


def residual_pair(path, bias, channels=16, size=8):
    """conv -> relu -> conv, + the first relu's output, -> relu: ResNet's basic block, its Add fusable into the
    second convolution."""
    weights = [numpy_helper.from_array(np.full((channels, channels, 3, 3), 0.01, np.float32), name)
               for name in ("w1", "w2")] + [numpy_helper.from_array(np.zeros(channels, np.float32), "b")]
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    second = ["r1", "w2", "b"] if bias else ["r1", "w2"]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], **conv), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", second, ["c2"], **conv), helper.make_node("Add", ["c2", "r1"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, channels, size, size])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_a_residual_add_fused_into_a_convolution_is_not_counted_as_its_input(tmp_path, bias):
    """The fit's blocks run no convolution with an Add fused in: counted as input, the Add's tensor made such a
    convolution look like one of twice the input. Without a bias the profile lists one input fewer."""
    kernels = network_kernels(residual_pair(tmp_path / "residual.onnx", bias), 1)
    if any(k.kind.startswith("Add") for k in kernels):
        pytest.skip("this ONNX Runtime does not fuse the residual Add into the convolution (no NCHWc: not x86)")
    convs = [k for k in kernels if "Conv" in k.kind]
    assert len(convs) == 2 and all(k.features["input_elements"] == 16 * 8 * 8 for k in convs)


@needs_sklearn
def test_a_predictor_from_a_machine_without_nchwc_lists_kernels_as_that_machine_fuses(tmp_path):
    """The synthetic predictor never saw an NCHWc kernel (a board without AVX2): the host lists the network's
    kernels without its NCHWc layout transformer, so no kernel type is one the predictor cannot know."""
    predictor = synthetic_predictor()
    assert predictor.disabled_optimizers() == ("NchwcTransformer",)
    kernels = network_kernels(conv_relu(tmp_path / "conv_relu.onnx"), 1, predictor.disabled_optimizers())
    assert [k.kind for k in kernels] == ["microsoft.FusedConv:float"]


def test_features_come_from_the_profile_and_the_graph_after_the_warm_up():
    """A QLinearConv's prepacked weight is missing from the profile: its shape comes from the graph."""
    weight = numpy_helper.from_array(np.zeros((16, 4, 3, 3), np.int8), "w")
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w"], ["y"], name="qconv", domain="com.microsoft",
                            strides=[1, 1], group=2)
    graph = helper.make_graph([node], "g", [], [], [weight])
    args = {"op_name": "QLinearConv", "input_type_shape": [{"uint8": [1, 10, 10, 8]}, {"float": []}, {"uint8": []}],
            "output_type_shape": [{"uint8": [1, 10, 10, 16]}]}
    events = [{"cat": "Node", "name": "qconv_kernel_time", "dur": dur, "args": args} for dur in (500, 4, 6)]
    (qconv,) = kernels_from_profile(graph, events, skip_runs=1)
    assert qconv.kind == "microsoft.QLinearConv:uint8"
    assert qconv.microseconds == 4.0  # the warm-up's 500 us left out, the quiet run kept
    assert qconv.features["macs"] == 10 * 10 * 16 * 4 * 3 * 3
    assert qconv.features["in_channels"] == 8 and qconv.features["groups"] == 2
    assert qconv.features["input_elements"] == 10 * 10 * 8 + 2  # activations and their scale and zero point


def test_kernel_times_come_from_the_quiet_runs_whole():
    """A kernel's time is its mean over the fastest fifth of the runs by their total, not its own fastest times:
    the profile counts whole microseconds, and each kernel's own fastest would be its rounded-down ones."""
    first = helper.make_node("Relu", ["x"], ["y"], name="first")
    second = helper.make_node("Relu", ["y"], ["z"], name="second")
    args = {"op_name": "Relu", "input_type_shape": [{"float": [1, 8]}], "output_type_shape": [{"float": [1, 8]}]}
    runs = [(10, 3), (11, 1), (30, 1), (40, 2), (12, 9)]  # in a slow spell the third and fourth
    events = [{"cat": "Node", "name": f"{name}_kernel_time", "dur": dur, "args": args}
              for run in runs for name, dur in zip(("first", "second"), run, strict=True)]
    kernels = kernels_from_profile(helper.make_graph([first, second], "g", [], []), events)
    assert [k.microseconds for k in kernels] == [11.0, 1.0]  # the run of 12 us in all: not (10, 1)


def test_a_quiet_time_sees_past_a_slow_spell_that_fills_most_of_the_window():
    """Three runs in five slowed by a spell move a median by half; the quiet mean stays at the machine's speed."""
    times = [1.0, 1.5, 1.5, 1.0, 1.5] * 4
    assert profile.quiet_mean(times) == 1.0 and float(np.median(times)) == 1.5


@pytest.mark.parametrize("sessions, kept", [(1, b"slow"), (2, b"fast")])
def test_a_profile_is_kept_from_the_session_whose_median_run_is_fastest(monkeypatch, sessions, kept):
    """A profiled session can run every kernel about twice as long throughout; the warm-up is no part of the choice
    (the fast session's first run is its slowest)."""
    def session(first_us, us):
        events = [{"name": f"{node}_kernel_time", "dur": dur, "args": {}}
                  for dur in (first_us, us, us, us) for node in ("conv", "relu")]
        return events, b"fast" if us < 10 else b"slow"

    profiles = iter([session(10, 10), session(500, 5)])
    monkeypatch.setattr(profile, "_profiled_session", lambda *args: next(profiles))
    assert profile.layer_profile(b"model", {}, 1, runs=3, warmup=1, sessions=sessions)[1] == kept


def test_an_int8_max_pool_counts_its_window_as_other_pools_do():
    """ONNX Runtime runs an INT8 MaxPool as NhwcMaxPool: its work is its outputs times its window, or a 2x2 pool is
    predicted at a 5x5 pool's rate per output (dmsnet INT8's pools came out 6x too slow)."""
    node = helper.make_node("NhwcMaxPool", ["x"], ["y"], name="pool", domain="com.microsoft", kernel_shape=[2, 2],
                            strides=[2, 2])
    args = {"op_name": "NhwcMaxPool", "input_type_shape": [{"uint8": [1, 64, 64, 32]}],
            "output_type_shape": [{"uint8": [1, 32, 32, 32]}]}
    events = [{"cat": "Node", "name": "pool_kernel_time", "dur": 9, "args": args}]
    (pool,) = kernels_from_profile(helper.make_graph([node], "g", [], []), events)
    assert pool.kind == "microsoft.NhwcMaxPool:uint8" and pool.features["in_channels"] == 32
    assert pool.features["macs"] == 32 * 32 * 32 * 4


@needs_sklearn
def test_a_network_is_the_sum_of_its_kernels_plus_the_measured_overhead():
    predictor = synthetic_predictor()
    fitted = overheads(predictor.samples)
    assert (fitted.call_us, fitted.cold_call_us) == pytest.approx((CALL_US, 0.0))
    assert fitted.per_kernel_us == pytest.approx({"Conv:float": PER_KERNEL_US, "Relu:float": PER_KERNEL_US})
    assert predictor.overheads.call_us == pytest.approx(CALL_US)
    one, other = kernel("Conv:float", 2.05e5), kernel("Relu:float", 1.55e4)
    both = predictor.predict([one, other])
    alone = [predictor.predict([k]).ms for k in (one, other)]
    assert both.ms == pytest.approx(sum(alone) - CALL_US / 1e3)  # one call, each kernel once
    assert alone[0] == pytest.approx((true_us(2.05e5) + CALL_US + PER_KERNEL_US) / 1e3, rel=0.1)
    assert both.kernels == 2 and both.unknown_kinds == []
    assert predictor.predict([kernel("Softmax:float", 1e4)]).unknown_kinds == ["Softmax:float"]


@needs_sklearn
def test_the_file_round_trips_without_pickle_and_predicts_the_same(tmp_path):
    predictor = synthetic_predictor(held_out={"cells": 9, "within_10": 0.9, "within_25": 1.0, "worst": 0.12,
                                              "source": "benchmarks/projection_error.py", "date": "2026-01-03"})
    path = tmp_path / "host.json"
    predictor.save(path)
    json.loads(path.read_text())  # plain JSON
    loaded = load_predictor(path)
    network = [kernel("Conv:float", 1.23e5), kernel("Relu:float", 1.2e4)]
    assert loaded.predict(network).ms == predictor.predict(network).ms
    assert loaded.record == predictor.record
    assert "fitted 2026-01-02T03:04:05+00:00" in loaded.describe() and "90% within +/-10 %" in loaded.describe()


@pytest.mark.parametrize("content, says", [
    ("{not json", "is not a readable latency predictor"),
    ('{"format": "something else"}', "format 'something else'"),
    ('{"format": "dms-ncap kernel predictor 1", "record": {}}', "is not a readable latency predictor"),
    (None, "does not exist"),
])
def test_a_bad_predictor_file_is_one_clear_line(tmp_path, content, says):
    path = tmp_path / "host.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(NcapError, match=says) as error:
        load_predictor(path)
    assert "\n" not in str(error.value)


def test_the_profilers_cost_is_fitted_per_kernel_type_and_taken_off_each_kernel():
    """The profiler records every kernel's input and output shapes, so a QLinearConv and its nine inputs cost it
    more than a Relu: each type's cost is fitted over all blocks and taken off that type's kernels."""
    cost = {"microsoft.QLinearConv:uint8": 4.0, "Relu:float": 1.0}
    samples = []
    for i in range(30):
        macs = 1e4 * (i + 1)
        kernels = [kernel(kind, macs, true_us(macs) + us) for kind, us in cost.items()]
        kernels = [kernels[:1], kernels[1:], kernels][i % 3]
        wall_us = sum(k.microseconds - cost[k.kind] for k in kernels) + CALL_US
        samples.append(Sample({"block": "conv"}, wall_us / 1e3, kernels))
    fitted = overheads(samples)
    assert fitted.per_kernel_us == pytest.approx({kind: -us for kind, us in cost.items()})
    for kernels in timed_by_kind(samples).values():
        assert [k.microseconds for k in kernels] == pytest.approx([true_us(k.features["macs"]) for k in kernels])
    # a type no timed block ran (a board's per-layer sample without a wall time) takes the median type's cost
    assert wall_timed(Sample({}, None, [kernel("Softmax:float", 1e4, 9.0)]), fitted)[0].microseconds == \
        pytest.approx(9.0 - 2.5)


def test_types_that_always_run_together_share_their_cost_without_a_kernel_dropping_below_zero():
    """A squeeze-and-excitation's multiply (4 us) runs only beside its convolution (20 us): their blocks say what
    the two cost together (10 us), not how it splits. No type may take more than its fastest kernels' time, so the
    kernels still sum to each block's wall time; split evenly, the multiply would drop to MIN_US and the sum
    would not hold."""
    samples = []
    for i in range(12):
        pairs = 1 + i % 4
        kernels = [kernel(kind, 1e4 * (j + 1), us) for j in range(pairs)
                   for kind, us in (("microsoft.QLinearMul:uint8", 4.0), ("microsoft.QLinearConv:uint8", 20.0))]
        wall_us = CALL_US + pairs * (24.0 - 10.0)
        samples.append(Sample({"block": "squeeze_excite"}, wall_us / 1e3, kernels))
    fitted = overheads(samples)
    assert fitted.per_kernel_us["microsoft.QLinearMul:uint8"] >= 0.1 - 4.0 - 1e-6
    for sample in samples:
        assert fitted.call_us + sum(k.microseconds for k in wall_timed(sample, fitted)) == \
            pytest.approx(sample.wall_ms * 1e3, rel=1e-3)


def test_a_cold_call_after_evicted_memory_is_not_spread_over_the_kernels():
    """A block that evicts memory before each run waits longer for its call (feeds, outputs and the runtime's
    state are cold) than its kernels take: that time is the call's, fitted apart, not its kernels'."""
    cold_us, samples = 25.0, []
    for i in range(40):
        macs, evicting = 1e4 * (i + 1), i % 4 < 2
        kernels = [kernel("Conv:float", macs, true_us(macs)), kernel("Relu:float", macs / 10, true_us(macs / 10))]
        kernels = [kernels[:1], kernels[1:], kernels][i % 3]
        wall_us = sum(k.microseconds for k in kernels) + CALL_US + PER_KERNEL_US * len(kernels) + cold_us * evicting
        samples.append(Sample({"block": "conv", "evict_mb": 8 * evicting}, wall_us / 1e3, kernels))
    fitted = overheads(samples)
    assert (fitted.call_us, fitted.cold_call_us) == pytest.approx((CALL_US, cold_us))
    timed = timed_by_kind(samples)["Conv:float"]
    assert [k.microseconds for k in timed] == pytest.approx([true_us(k.features["macs"]) + PER_KERNEL_US
                                                             for k in timed])


def test_the_copies_of_a_kernel_in_one_block_are_one_sample_at_their_median_time():
    """One copy apart from the rest does not move the sample (its mean would be 12.5 us)."""
    copies = [kernel("Conv:float", 1e4, us) for us in (10.0, 11.0, 12.0, 17.0)]
    by_kind = timed_by_kind([Sample({"block": "conv", "copies": 4}, None, [*copies, kernel("Relu:float", 10, 1.0)])])
    assert [k.microseconds for k in by_kind["Conv:float"]] == [11.5] and len(by_kind["Relu:float"]) == 1


def test_an_evicting_blocks_kernels_are_fitted_only_where_they_read_a_megabyte_of_weights_or_more():
    """After an eviction a block's reorders, activations and small convolutions find their input, code and state cold,
    where a network's kernel before leaves them warm; a large convolution's cold weights are what the eviction is
    for, and a block that evicts nothing keeps every kernel."""
    def block(evict_mb):
        return Sample({"block": "conv", "evict_mb": evict_mb}, None,
                      [weighted_conv(blocks.LARGE_WEIGHT_BYTES, 300.0),
                       weighted_conv(blocks.LARGE_WEIGHT_BYTES / 2, 150.0),
                       kernel("nchwc.ReorderOutput:float", 10, 5.0)])
    evicting = timed_by_kind([block(8)])
    assert [k.microseconds for k in evicting["nchwc.Conv:float"]] == [300.0]
    assert "nchwc.ReorderOutput:float" not in evicting
    kept = timed_by_kind([block(0)])
    assert len(kept["nchwc.Conv:float"]) == 2 and len(kept["nchwc.ReorderOutput:float"]) == 1


def test_a_blocks_small_kernels_that_write_its_outputs_are_not_fitted():
    """Every copy of a block ends in a kernel writing one of the graph's outputs, memory handed to the caller on
    every run, where a network's inner kernel writes a buffer its memory plan reuses; a large convolution's time is
    its weights', and it is kept."""
    large = weighted_conv(blocks.LARGE_WEIGHT_BYTES, 300.0, writes_output=True)
    small = weighted_conv(blocks.LARGE_WEIGHT_BYTES / 2, 150.0, writes_output=True)
    inner = kernel("nchwc.ReorderInput:float", 10, 5.0)
    fitted = timed_by_kind([Sample({"block": "conv", "evict_mb": 0}, None,
                                   [inner, large, small, replace(inner, name="last", writes_output=True)])])
    assert [k.microseconds for k in fitted["nchwc.Conv:float"]] == [300.0]
    assert [k.name for k in fitted["nchwc.ReorderInput:float"]] == [inner.name]


def test_a_networks_working_set_is_its_weights_and_twice_its_largest_output_a_blocks_sums_its_outputs():
    """A network is a chain whose activation buffers ONNX Runtime's memory plan reuses; a block's copies keep theirs
    (kernels._network_working_set). The kernel writing the graph's output is marked so."""
    weight = numpy_helper.from_array(np.zeros((8, 8, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Sigmoid", ["r"], ["y"], name="sigmoid")]
    graph = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight])
    shape = {"float": [1, 8, 16, 16]}
    events = [{"cat": "Node", "name": f"{node.name}_kernel_time", "dur": 5,
               "args": {"op_name": node.op_type, "input_type_shape": [shape], "output_type_shape": [shape]}}
              for node in nodes]
    weights, output = 8 * 8 * 4, 8 * 16 * 16 * 4  # bytes
    network, block = kernels_from_profile(graph, events), kernels_from_profile(graph, events, block=True)
    assert {k.features["working_set"] for k in network} == {weights + 2 * output}
    assert {k.features["working_set"] for k in block} == {weights + 3 * output}
    assert [k.writes_output for k in network] == [False, False, True]


def test_only_blocks_whose_weights_reach_a_megabyte_evict_and_a_share_of_those_does():
    """An evicting block's kernels under a megabyte of weights are not fitted (the test above), so a block without
    one would spend its eviction on nothing; of the blocks with one, about EVICTING evict. An INT8 block's weights
    are a byte each."""
    rng = np.random.default_rng(0)
    for precision in ("fp32", "int8"):
        drawn = [blocks.sample_config(rng, precision) for _ in range(2000)]
        weight_bytes = [blocks.block_weights(c) / c["copies"] * blocks.WEIGHT_BYTES[precision] for c in drawn]
        large = [b >= blocks.LARGE_WEIGHT_BYTES for b in weight_bytes]
        assert not any(c["evict_mb"] for c, big in zip(drawn, large, strict=True) if not big)
        evicting = [c["evict_mb"] > 0 for c, big in zip(drawn, large, strict=True) if big]
        assert len(evicting) > 100 and 0.2 < np.mean(evicting) < 0.4


def test_working_sets_past_the_cap_are_one_to_the_regressors():
    """A network's summed working set overstates what it touches (activation memory is reused): past the cap, all
    are alike; below it they differ."""
    from harness.project.predictor import WORKING_SET_CAP, _x
    column = FEATURES.index("working_set")
    rows = [[1.0] * len(FEATURES) for _ in range(3)]
    for row, size in zip(rows, (WORKING_SET_CAP / 4, 2 * WORKING_SET_CAP, 8 * WORKING_SET_CAP), strict=True):
        row[column] = size
    x = _x(rows)[:, column]
    assert x[1] == x[2] and x[0] < x[1]


def conv_of(in_channels, kernel_area, pixels, out_channels=32):
    """A dense convolution whose time per MAC falls with the depth of its dot products, K = kernel area x input
    channels (a GEMM's K: a shallow one spends its time packing, not multiplying)."""
    depth = kernel_area * in_channels
    macs = pixels * out_channels * depth
    features = dict.fromkeys(FEATURES, 1.0) | {
        "macs": macs, "input_elements": pixels * in_channels, "output_elements": pixels * out_channels,
        "weight_elements": out_channels * depth, "kernel_area": kernel_area, "in_channels": in_channels,
        "out_channels": out_channels, "output_pixels": pixels, "working_set": 1e5}
    return Kernel(f"conv{in_channels}k{kernel_area}p{pixels}", "Conv:float", features, macs * (0.01 + 1 / depth) / 1e3)


@needs_sklearn
def test_the_regressors_see_a_convolutions_macs_per_output_which_no_single_feature_holds():
    """A grid of convolutions (3-256 input channels, 1x1 to 7x7, three sizes) without its 8-channel 3x3s: one of them
    is predicted from the grid's 8-channel convolutions of other areas and its 3x3s of other channels, whose rates
    per MAC differ from its own by up to 5.6 times; its own rate is that of the grid's other dot products of about
    72 MACs (3 channels at 5x5, 64 at 1x1). With the MACs per output element the forest finds them: 4 % off;
    without, 15 %."""
    fitted = [conv_of(channels, area, pixels) for channels in (3, 8, 16, 32, 64, 256) for area in (1, 9, 25, 49)
              for pixels in (256, 1024, 4096) if (channels, area) != (8, 9)]
    record = PredictorRecord("host", "test CPU", "onnxruntime", 1, "2026-01-02T03:04:05+00:00", 60.0, {})
    predictor = Predictor(record, [Sample({"block": "conv", "index": i}, None, [k]) for i, k in enumerate(fitted)])
    shallow = conv_of(8, 9, 1024)
    assert predictor.predict([shallow]).ms * 1e3 == pytest.approx(shallow.microseconds, rel=0.1)


def test_sampled_convolutions_include_stems_and_stage_transitions():
    """Convolutions are drawn more often than other blocks, a tenth of all blocks are stems on an image's 3
    channels, and half the other dense ones double, quadruple or halve their input's channels, always a multiple
    of 8."""
    rng = np.random.default_rng(0)
    drawn = [blocks.sample_config(rng, "fp32") for _ in range(3000)]
    convs = [c for c in drawn if c["block"] == "conv"]
    assert len(convs) / len(drawn) > 0.28  # four in twelve, where each of the nine blocks alike would be one in nine
    stems = [c for c in convs if c["channels"] == 3 and "architecture" not in c]  # not ConvNeXt's 4x4 patches
    assert 0.08 < len(stems) / len(drawn) < 0.16  # 3 % of the draws before STEMS applied to every convolution
    assert {c["kernel"] for c in stems} == {3, 5, 7} and not any(c["depthwise"] for c in stems)
    dense = [c for c in convs if not c["depthwise"] and "architecture" not in c and c["channels"] > 3
             and not (c["size"] <= 4 and c["channels"] >= 128)]  # nor a late stage's (the test below)
    transitions = [c for c in dense if c["out_channels"] in
                   {2 * c["channels"], 4 * c["channels"], c["channels"] // 2}]
    assert len(transitions) / len(dense) > 0.35
    assert all(c["out_channels"] % 8 == 0 for c in dense + stems)


def test_a_share_of_convolutions_and_residual_pairs_is_a_late_stages_weight_bound_3x3():
    """Many channels on 2-4 pixels, where a 3x3 convolution streams its weights: otherwise a handful in a plan."""
    rng = np.random.default_rng(0)
    drawn = [blocks.sample_config(rng, "fp32", block) for block in ("conv", "residual") for _ in range(500)]
    late = [c for c in drawn if c["size"] <= 4 and c["channels"] >= 128 and c.get("kernel", 3) == 3
            and not c.get("depthwise") and "architecture" not in c]
    assert 0.1 < len(late) / len(drawn) < 0.3  # 6 % without the share


def test_half_the_other_convolutions_are_layers_of_published_architectures_outside_the_zoos_families():
    """LitePred's sampling: a share of the convolutions is a real layer (channels, kernel, stride, depthwise as
    its architecture has them, its size scaled to an input CNNs are fed), never from the zoo's own families."""
    layers = architectures.architecture_layers()
    assert not any(name.startswith(("resnet", "wide_resnet", "resnext", "mobilenet_v3")) for name in layers)
    first, last = layers["mobilenet_v2"][0], layers["mobilenet_v2"][-1]
    assert first == ("mobilenet_v2", 3, 32, 3, 2, False, 1.0)  # its stem, on the whole image
    assert (last.in_channels, last.out_channels, last.size_share) == (320, 1280, 7 / 224)
    assert any(layer.depthwise and layer.kernel == 5 for layer in layers["efficientnet_b0"])
    rng = np.random.default_rng(0)
    convs = [blocks.sample_config(rng, "int8", "conv") for _ in range(400)]
    real = [c for c in convs if "architecture" in c]
    assert 0.2 < len(real) / len(convs) < 0.35  # half of those neither a stem (34 %) nor a late stage's (15 %)
    for config in real:
        shape = (config["channels"], config["out_channels"], config["kernel"], config["stride"], config["depthwise"])
        assert shape in {layer[1:6] for layer in layers[config["architecture"]]}
        assert config["size"] in {max(1, -(-size * layer.size_share // 1)) for layer in layers[config["architecture"]]
                                  for size in blocks.INPUT_SIZES}


def test_every_block_builds_at_every_precision_and_onnx_runtime_runs_it():
    rng = np.random.default_rng(0)
    for precision in profiling.PRECISIONS:
        for block in blocks.BLOCKS:
            config = blocks.sample_config(rng, precision, block)
            assert blocks.block_macs(config) <= blocks.MAX_MACS and config["copies"] >= 1
            assert blocks.block_weights(config) <= blocks.MAX_WEIGHTS
            kernels = profile_model(blocks.block_model(config), blocks.block_feeds(config), 1, runs=1, warmup=0)
            assert kernels, f"{precision} {block} ran no kernel"
            if precision == "int8" and block in {"conv", "residual"}:
                assert any("QLinearConv" in k.kind for k in kernels)  # quantised as the int8 pass quantises


# Kernel types of the zoo's networks that only these blocks make (the first fit predicted them by a pooled forest)
DETECTOR_AND_FP16_KINDS = [
    ("fp16", {"block": "inverted", "expansion": 6, "kernel": 5, "stride": 1, "activation": "HardSwish"},
     {"Min:float16", "Max:float16", "Cast:float16"}),  # an FP16 HardSwish inlined at opset 18, not fused
    ("fp32", {"block": "conv", "out_channels": 32, "kernel": 3, "stride": 1, "depthwise": False,
              "activation": "SiLU"}, {"microsoft.QuickGelu:float"}),
    ("int8", {"block": "upsample", "activation": "SiLU"}, {"Resize:uint8", "microsoft.QLinearConcat:float"}),
    ("int8", {"block": "csp", "activation": "SiLU"}, {"Split:uint8", "microsoft.QLinearSigmoid:uint8"}),
    ("int8", {"block": "detect", "classes": 8}, {"microsoft.QLinearSoftmax:uint8"}),
    # YOLOv8-s's box distribution as the zoo writes it: a softmax over axis 2, untransposed, and a weighted sum
    ("fp32", {"block": "detect", "classes": 8, "dfl": "in_place"}, {"Softmax:float", "Mul:float", "ReduceSum:float"}),
]


def test_small_feature_maps_carry_many_channels_as_in_a_cnns_late_stages():
    rng = np.random.default_rng(0)
    configs = [blocks.sample_config(rng, "fp32") for _ in range(3000)]
    late = [c["channels"] for c in configs if c["size"] <= 4 and c["channels"] > 3]
    assert np.median(late) >= 160  # drawn apart from the size, 88


def test_detector_blocks_draw_both_forms_of_the_box_distribution():
    rng = np.random.default_rng(0)
    forms = [blocks.sample_config(rng, "fp32", "detect")["dfl"] for _ in range(40)]
    assert set(forms) == set(blocks.DFL_FORMS)


def test_an_int8_squeeze_and_excitation_runs_its_pool_and_scaling_in_a_networks_layout_inside_the_block():
    """MobileNetV3 and EfficientNet squeeze the output of a depthwise convolution, which ONNX Runtime runs INT8 in
    NHWC: the pool then reduces over a channels-last tensor (its `in_channels` from axis 1 is the height). On the
    block's input it reduced an NCHW tensor, several times faster, and its scaling wrote the block's output, which
    the fit leaves out (predictor.timed_kernels)."""
    config = blocks.sample_config(np.random.default_rng(0), "int8", "squeeze_excite")
    config |= {"channels": 32, "size": 8, "stride": 1, "copies": 1, "pool": "ReduceMean"}
    kernels = profile_model(blocks.block_model(config), blocks.block_feeds(config), 1, runs=1, warmup=0)
    pool = next(k for k in kernels if k.kind == "ReduceMean:float")
    scale = next(k for k in kernels if k.kind == "microsoft.QLinearMul:uint8")
    assert pool.features["in_channels"] == 8 and not scale.writes_output


@pytest.mark.parametrize("precision, block, kinds", DETECTOR_AND_FP16_KINDS)
def test_blocks_make_the_kernel_types_the_zoo_networks_run(precision, block, kinds):
    config = {"precision": precision, "channels": 32, "size": 8, "copies": 1} | block
    kernels = profile_model(blocks.block_model(config), blocks.block_feeds(config), 1, runs=1, warmup=0)
    assert kinds <= {k.kind for k in kernels}


def test_copies_of_a_block_grow_the_working_set_each_kernel_is_timed_in():
    """Side by side copies with their own weights: the kernels are the block's, the working set is the copies'."""
    config = {"block": "conv", "precision": "fp32", "channels": 64, "out_channels": 64, "size": 4, "kernel": 3,
              "stride": 1, "depthwise": False, "activation": "Relu"}
    one, three = (profile_model(blocks.block_model(config | {"copies": n}), blocks.block_feeds(config), 1, runs=1,
                                warmup=0) for n in (1, 3))
    convs = [k for k in three if k.kind == "nchwc.Conv:float"]
    assert len(convs) == 3 and blocks.block_macs(config | {"copies": 3}) == 3 * blocks.block_macs(config)
    weights = 64 * 64 * 9 * 4  # bytes of one copy's convolution weights
    assert three[0].features["working_set"] - one[0].features["working_set"] >= 2 * weights
    assert {k.features["working_set"] for k in three} == {three[0].features["working_set"]}  # one per graph


def test_the_working_set_counts_weights_at_their_stored_width():
    """INT8 weights take a quarter of the bytes of FP32 ones: a kernel's data fits a cache the FP32 one does not."""
    config = {"block": "conv", "out_channels": 256, "channels": 256, "size": 2, "kernel": 3, "stride": 1,
              "depthwise": False, "activation": "none", "copies": 1}
    fp32, int8 = (profile_model(blocks.block_model(config | {"precision": p}), blocks.block_feeds(config), 1,
                                runs=1, warmup=0)[0].features["working_set"] for p in ("fp32", "int8"))
    assert fp32 >= 256 * 256 * 9 * 4 and int8 < 0.3 * fp32


@needs_sklearn
def test_the_adaptive_round_samples_near_the_blocks_predicted_worst(monkeypatch):
    """Conv kernels whose time is noise and Relu kernels of one constant rate: the round perturbs conv blocks."""
    rng = np.random.default_rng(1)
    samples = []
    for i in range(40):
        macs = 1e4 * (i + 1)
        block = {"block": "conv", "precision": "fp32", "channels": 16, "out_channels": 16, "size": 8, "kernel": 3,
                 "stride": 1, "depthwise": False, "activation": "Relu"}
        samples.append(Sample(block, None, [kernel("Conv:float", macs, float(rng.uniform(1, 1000)))]))
        samples.append(Sample({"block": "pool", "precision": "fp32", "channels": 16, "size": 8, "pool": "MaxPool",
                               "kernel": 2}, None, [kernel("Relu:float", macs, macs / 1000)]))
    configs, status = profiling._adaptive_round(samples, profiling.Plan(budget_s=100), rng, spent_s=8.0)
    random_count = int(len(configs) * profiling.EXPLORE_IN_ROUND)
    assert len(configs) == 100 and "Conv:float" in status  # 10 % of the budget at 0.1 s per block
    assert all(c["block"] == "conv" for c in configs[random_count:])


@needs_sklearn
def test_the_plan_keeps_its_budget_and_reports_progress(monkeypatch):
    clock = iter(np.arange(0, 1000, 0.5))
    monkeypatch.setattr(profiling.time, "monotonic", lambda: float(next(clock)))

    class Bench:  # times nothing: each block's conv takes its MACs' known time
        machine, runtime, batch = "test CPU", "onnxruntime", 3

        def time(self, configs, threads):
            sizes.append(len(configs))
            return [Sample(c, 1.0, [kernel("Conv:float", blocks.block_macs(c), true_us(blocks.block_macs(c)))])
                    for c in configs]

        def wall_ms(self, configs, threads):
            readings.append(configs)
            return [1.0] * len(configs)

    seen, sizes, readings = [], [], []
    monkeypatch.setattr(profiling, "PANEL_EVERY_S", 6.0)
    predictor = profiling.profile_platform(profiling.Plan(budget_s=20), Bench(), "host", lambda f, s: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0 and max(seen[:-1]) < 1.0
    assert 20 <= predictor.record.profiling_seconds <= 22
    # the panel is timed first, as samples, then read again 6 s after a reading (its clock moves 0.5 s a call) and at
    # the end, the same blocks each time
    panel = predictor.record.panel
    assert sizes[0] == profiling.PANEL_BLOCKS and panel["blocks"] == [s.block for s in predictor.samples[:sizes[0]]]
    assert len(panel["readings_ms"]) == len(panel["readings_s"]) == 4 and all(r == panel["blocks"] for r in readings)
    gaps = np.diff(panel["readings_s"])
    assert all(6 <= gap <= 8 for gap in gaps[:-1]) and gaps[-1] > 0 and panel["kernels"] == [1] * profiling.PANEL_BLOCKS
    assert len(sizes) == len(seen) and all(1 <= size <= 3 for size in sizes[1:])  # a batch per call, at most
    assert len(predictor.samples) == sum(sizes) and predictor.record.machine == "test CPU"


@needs_sklearn
def test_a_plan_whose_panel_outlasts_its_budget_still_fits_the_panels_blocks(monkeypatch):
    """A board's panel (shipped, timed and profiled there) can take longer than a short budget: the plan stops and
    fits the blocks it has."""
    clock = [0.0]
    monkeypatch.setattr(profiling.time, "monotonic", lambda: clock[0])

    class SlowBoard:
        machine, runtime, batch = "board", "onnxruntime on the board", 1

        def time(self, configs, threads):
            clock[0] += 12.0
            return [Sample(c, 1.0, [kernel("Conv:float", 1e4 * (1 + i), 12.0)]) for i, c in enumerate(configs)]

        def wall_ms(self, configs, threads):
            return [None] * len(configs)  # the board could not time them: no drift, nothing corrected

    predictor = profiling.profile_platform(profiling.Plan(budget_s=10), SlowBoard(), "imx8", lambda f, s: None)
    assert len(predictor.samples) == profiling.PANEL_BLOCKS and predictor.record.platform == "imx8"
    assert all(s.kernels[0].microseconds == 12.0 for s in predictor.samples)


def test_blocks_timed_in_a_slow_spell_are_brought_to_the_plans_speed_kernel_by_kernel():
    """In the plan's second reading the panel's blocks of 1-us kernels take twice their usual time, those of 1-ms
    kernels their usual time: a block timed then has its small kernel halved and its large one left, and its wall
    time by its kernels' times. One probe's factor (1x or 2x for all) would teach one of the two a wrong time. A
    reading the board could not take (None) is left out: after it, the last reading's speed holds."""
    small, large = [0.001, 0.001, 0.001], [1.0, 1.0, 1.0]
    panel = {"kernels": [1] * 6, "readings_s": [0.0, 10.0, 20.0, 30.0],
             "readings_ms": [small + large, [0.002] * 3 + large, small + large, [None] * 6]}
    slow = Sample({"block": "conv"}, 1.002, [kernel("Conv:float", 1e3, 2.0), kernel("Conv:float", 1e6, 1000.0),
                                             kernel("Relu:float", 10)])
    quick = Sample({"block": "conv"}, 1.001, [kernel("Conv:float", 1e3, 1.0), kernel("Conv:float", 1e6, 1000.0)])
    brought = profiling.at_plan_speed([slow, quick, quick], [10.0, 0.0, 35.0], panel)
    assert [k.microseconds for k in brought[0].kernels[:2]] == pytest.approx([1.0, 1000.0])
    assert brought[0].wall_ms == pytest.approx(1.001) and brought[0].kernels[2].microseconds is None
    assert [s.wall_ms for s in brought[1:]] == pytest.approx([1.001] * 2)
    assert [k.microseconds for s in brought[1:] for k in s.kernels] == pytest.approx([1.0, 1000.0] * 2)
    assert profiling.at_plan_speed([slow], [10.0], panel | {"readings_ms": [[None] * 6] * 4}) == [slow]


def uniform_drift(factor: float) -> Drift:
    """A drift the same for kernels of every size."""
    return Drift(float(np.log(factor)), 0.0)


@needs_sklearn
@pytest.mark.parametrize("read_by_caller", [False, True])
def test_host_check_brings_the_truth_back_to_the_fit_speed(tmp_path, monkeypatch, read_by_caller):
    """The machine is 10 % slower than at the fit (the drift panel says so, read here or by the caller once a
    round, which then outranks a new panel's reading): a prediction of the fit-time truth is exact."""
    model = tiny_classifier(tmp_path / "tiny.onnx")
    predictor = synthetic_predictor()
    fit_ms = predictor.predict(network_kernels(model, 1, predictor.disabled_optimizers())).ms
    here = uniform_drift(1.5 if read_by_caller else 1.1)
    monkeypatch.setattr(validate, "DriftPanel", lambda predictor, threads: SimpleNamespace(drift=lambda: here))
    monkeypatch.setattr(validate, "_quiet_ms", lambda model, threads, inputs, plan: fit_ms * 1.1)
    check = validate.check_on_host(model, "fp32", 1, predictor=predictor,
                                   drift=uniform_drift(1.1) if read_by_caller else None)
    assert check.drift == pytest.approx(1.1) and check.predictor_error == pytest.approx(0.0, abs=1e-12)
    assert check.measured_ms == pytest.approx(fit_ms * 1.1)


@needs_sklearn
def test_the_drift_panel_reads_the_machines_speed_on_the_fits_own_blocks(monkeypatch):
    """Re-timed now, the fit's blocks take 1.2x their fitted times but one takes 3x (a slow spell): the median says
    1.2. A board run's per-layer sample (no block to re-time) is never in the panel, nor a block whose input
    would hold 11 M elements in memory for the whole evaluation; one of 1.6 M elements is, as a block of long
    kernels (9 ms), but a block of short ones that size is not."""
    rng = np.random.default_rng(0)
    configs = [blocks.sample_config(rng, "fp32", "conv") | {"channels": 8, "size": 8, "copies": 1, "evict_mb": 0}
               for _ in range(5)]
    board = Sample({"network": "dmsnet"}, 0.5, [kernel("Conv:float", 1e4, 10.0)])
    samples = [Sample(c, 0.1 * (i + 1), [kernel("Conv:float", 1e4, 10.0)]) for i, c in enumerate(configs)]
    huge = Sample(configs[0] | {"channels": 64, "size": 420}, 9.0, [kernel("Conv:float", 1e4, 10.0)])
    long_kernels = Sample(configs[0] | {"channels": 64, "size": 160}, 9.0, [kernel("Conv:float", 1e4, 10.0)])
    short_kernels = Sample(configs[0] | {"channels": 64, "size": 160}, 0.9, [kernel("Conv:float", 1e4, 10.0)] * 2)
    fit = [*samples, board, huge, long_kernels, short_kernels]
    panel = validate.DriftPanel(Predictor(synthetic_predictor().record, fit), 1, size=10)
    assert sorted(then_ms for *_, then_ms, _ in panel._blocks) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 9.0])
    then_ms, slower = iter([b[3] for b in panel._blocks]), iter([1.2, 3.0, 1.2, 1.2, 1.2, 1.2])
    monkeypatch.setattr(validate, "seconds_per_run", lambda *args: next(then_ms) / 1e3 * next(slower))
    drift = panel.drift()
    assert drift.at([1.0]) == pytest.approx(1.2) and drift.at([1e4]) == pytest.approx(1.2)
    with pytest.raises(NcapError, match="none of its fit's blocks"):
        validate.DriftPanel(Predictor(synthetic_predictor().record, [board]), 1)


@needs_sklearn
def test_a_slow_spell_that_slows_small_kernels_more_is_read_kernel_by_kernel(monkeypatch):
    """Re-timed in a slow spell, the fit's blocks of 1-us kernels take 1.6x their fitted time, those of 1-ms kernels
    1.0x, a slow outlier aside: a network of small kernels drifted 1.6x, one of large kernels not at all, a network
    of both by their times; a panel's median (1.0x or 1.6x for all) would leave a network of the other kind 60 %
    off."""
    rng = np.random.default_rng(0)
    configs = [blocks.sample_config(rng, "fp32", "conv") | {"channels": 8, "size": 8, "copies": 1, "evict_mb": 0}
               for _ in range(7)]
    kernel_us = [1.0, 1.0, 1.0, 1000.0, 1000.0, 1000.0, 1000.0]
    samples = [Sample(c, us / 1e3, [kernel("Conv:float", 1e4, us)]) for c, us in zip(configs, kernel_us, strict=True)]
    panel = validate.DriftPanel(Predictor(synthetic_predictor().record, samples), 1, size=10)
    slower = [1.6 if then_ms < 0.01 else 1.0 for *_, then_ms, _ in panel._blocks]
    slower[next(i for i, (*_, then_ms, _) in enumerate(panel._blocks) if then_ms > 0.01)] = 3.0  # the outlier
    readings = iter([then_ms / 1e3 * factor for (*_, then_ms, _), factor in zip(panel._blocks, slower, strict=True)])
    monkeypatch.setattr(validate, "seconds_per_run", lambda *args: next(readings))
    drift = panel.drift()
    # a network's kernels as timed now: 1.6 us that took 1 us at the fit, 1000 us that took 1000 us
    assert drift.at([1.6] * 50) == pytest.approx(1.6)
    assert drift.at([1000.0] * 3) == pytest.approx(1.0)
    assert drift.at([1.6] * 500 + [1000.0]) == pytest.approx((500 * 1.6 + 1000) / (500 + 1000))


@needs_sklearn
def test_host_check_splits_the_error_between_the_regressors_and_the_rest(tmp_path, monkeypatch):
    """The network's own kernels run 20 % slower than the blocks taught the regressors, and its wall time is 5 %
    more than its own profile says: the first is the regressors' error, the second the rest's, each at the fit's
    speed though the machine now runs 10 % slower (the profile's times too)."""
    predictor = synthetic_predictor()
    macs = (1e5, 1e4)
    kinds = ("Conv:float", "Relu:float")
    profiled = [kernel(kind, m, 1.1 * 1.2 * true_us(m)) for kind, m in zip(kinds, macs, strict=True)]
    own_ms = (CALL_US + sum(1.2 * true_us(m) + PER_KERNEL_US for m in macs)) / 1e3
    monkeypatch.setattr(validate, "profile_model", lambda *args, **kwargs: profiled)
    monkeypatch.setattr(validate, "_quiet_ms", lambda model, threads, inputs, plan: 1.1 * 1.05 * own_ms)
    check = validate.check_on_host(tiny_classifier(tmp_path / "tiny.onnx"), "fp32", 1, predictor=predictor,
                                   drift=uniform_drift(1.1))
    assert check.own_profile_ms == pytest.approx(own_ms)
    assert check.overhead_error == pytest.approx(1 / 1.05 - 1)
    exact_ms = (CALL_US + sum(true_us(m) + PER_KERNEL_US for m in macs)) / 1e3  # the regressors' aim
    assert check.regressor_error == pytest.approx(exact_ms / own_ms - 1, abs=0.05)
    assert (1 + check.overhead_error) * (1 + check.regressor_error) == pytest.approx(1 + check.predictor_error)


@needs_sklearn
@pytest.mark.parametrize("held_out", [None, {"cells": 9, "within_10": 0.9, "within_25": 1.0, "worst": 0.2,
                                               "source": "test", "date": "d"}])
def test_a_target_with_a_predictor_names_it_and_never_passes_on_it(pytester, tiny_card, image_folder, held_out):
    """tda4vm INT8 is calibrated (the roofline may pass there); the predictor's quiet run is judged as a lower
    bound on the p99 a measurement asserts, its held-out error measured or not: within the limit it skips."""
    synthetic_predictor(held_out).save(predictor_path("tda4vm"))
    pytester.makepyfile(test_ncap=SUITE.read_text())
    pytester.runpytest("-m", "ncap", "--platform", "tda4vm", "--model", str(tiny_card), "--dataset",
                       str(image_folder), "--precision", "int8", *FAST)
    (latency,) = [r for r in records(pytester) if r["metric"] == "latency"]
    assert latency["verdict"] == "skip" and latency["grade"] == "projected"
    assert "kernel predictor for host" in latency["method"] and "lower bound" in latency["message"]
    assert latency["predictor_fitted"] == "2026-01-02T03:04:05+00:00"
    assert latency["roofline_ms"] > 0 and latency["known_error"] == (held_out or "not measured")


def test_without_a_predictor_the_roofline_says_it_is_the_fallback(pytester, tiny_card, image_folder):
    predictor_path("tda4vm").unlink(missing_ok=True)
    pytester.makepyfile(test_ncap=SUITE.read_text())
    pytester.runpytest("-m", "ncap", "--platform", "tda4vm", "--model", str(tiny_card), "--dataset",
                       str(image_folder), "--precision", "int8", *FAST)
    (latency,) = [r for r in records(pytester) if r["metric"] == "latency"]
    assert latency["method"].startswith("roofline, the fallback: tda4vm has no latency predictor")


def test_memory_evicted_between_a_blocks_runs_joins_its_working_set(monkeypatch):
    """A block timed with `evict_mb` touches that memory before every run, timed or profiled, and its kernels'
    working set counts it (a network's other layers evict a kernel's weights between its runs)."""
    from harness.runtimes.onnxruntime import profile

    touched = []
    monkeypatch.setattr(profile, "evictor", lambda size, feeds: lambda: touched.append(size))
    config = {"block": "conv", "precision": "fp32", "channels": 8, "out_channels": 8, "size": 4, "kernel": 3,
              "stride": 1, "depthwise": False, "activation": "Relu", "copies": 1}
    plain, evicted = (profiling.HostBench().time([config | {"evict_mb": mb}], 1)[0] for mb in (0, 3))
    assert touched.count(3 << 20) >= 5 + 5 + profile.PROFILE_WARMUP  # before every timed and profiled run
    assert {k.features["working_set"] for k in evicted.kernels} == {plain.kernels[0].features["working_set"]
                                                                     + (3 << 20)}


def test_the_evictor_leaves_the_input_just_written_with_its_values_unchanged():
    """After evicting, the block's input is rewritten in place, as the layer before a network's kernel leaves it;
    the values must stay exactly what they were (the block is timed on them)."""
    from harness.runtimes.onnxruntime.profile import evictor, standard_normal

    x = standard_normal([1, 8, 4, 4])
    before = x.copy()
    evictor(1 << 20, {"x": x})()
    assert np.array_equal(x, before)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):  # it writes the input, not only reads it
        evictor(1 << 20, {"x": x})()
    evictor(0, {"x": x})()  # nothing evicted, nothing written


def test_perturbed_blocks_keep_channels_a_multiple_of_8_and_sizes_in_range():
    """Networks' channel counts are multiples of 8, and ONNX Runtime runs others at other rates per MAC."""
    rng = np.random.default_rng(0)
    for _ in range(400):
        config = blocks.sample_config(rng, "fp32")
        moved = blocks.perturb(config, rng)
        assert all(moved[key] % 8 == 0 for key in ("channels", "out_channels", "hidden")
                   if key in moved and moved[key] >= 8), moved
        assert moved["size"] <= max(config["size"], blocks.MAX_SIZE)
        assert "architecture" not in moved or moved == config  # a neighbour is no published layer


def test_nhwc_kernels_take_their_channels_from_the_last_axis():
    """ONNX Runtime runs INT8 pooling channels-last (NhwcMaxPool): its channels are the last axis, not the second."""
    config = {"block": "pool", "precision": "int8", "channels": 24, "size": 40, "pool": "MaxPool", "kernel": 2,
              "stride": 2, "copies": 1}
    kernels = profile_model(blocks.block_model(config), blocks.block_feeds(config), 1, runs=1, warmup=0)
    pools = [k for k in kernels if "NhwcMaxPool" in k.kind]
    assert pools and all(k.features["in_channels"] == 24 for k in pools), [(k.kind, k.features) for k in pools]
