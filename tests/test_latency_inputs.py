"""Latency over the input distribution: every evaluation image timed, in a seeded order, paired in the gate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from test_plugin import FAST, suite  # noqa: F401  (the pytester fixture)

from conftest import tiny_classifier, write_card
from harness.data import synthetic
from harness.measure.latency import LatencyPlan, time_alternating, time_inferences
from harness.measure.stats import InputSpread
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner

SIZE = 16


def input_dependent_classifier(path: Path) -> Path:
    """A 5-way classifier whose work depends on its input: a bright image (mean > 0 after normalisation) takes
    five 32-channel 3x3 convolutions, a dark one a single full-image kernel."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return helper.make_tensor(name, TensorProto.FLOAT, shape, (rng.standard_normal(shape) * 0.1).ravel())

    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])
    slow_nodes = [helper.make_node("Conv", ["input", "w0"], ["h0"], pads=[1, 1, 1, 1])]
    slow_nodes += [helper.make_node("Conv", [f"h{i}", f"w{i + 1}"], [f"h{i + 1}"], pads=[1, 1, 1, 1]) for i in range(4)]
    slow_nodes += [helper.make_node("Conv", ["h4", "w_out"], ["slow_scores"]),
                   helper.make_node("Flatten", ["slow_scores"], ["logits_slow"])]
    slow = helper.make_graph(slow_nodes, "slow", [], [helper.make_tensor_value_info("logits_slow", TensorProto.FLOAT,
                                                                                     ["batch", 5])])
    fast = helper.make_graph([helper.make_node("Conv", ["input", "w_fast"], ["fast_scores"]),
                              helper.make_node("Flatten", ["fast_scores"], ["logits_fast"])], "fast", [],
                             [helper.make_tensor_value_info("logits_fast", TensorProto.FLOAT, ["batch", 5])])
    nodes = [helper.make_node("ReduceMean", ["input"], ["brightness"], keepdims=0),
             helper.make_node("Greater", ["brightness", "zero"], ["bright"]),
             helper.make_node("If", ["bright"], ["logits"], then_branch=slow, else_branch=fast)]
    initializers = [weight("w0", 32, 3, 3, 3), *(weight(f"w{i + 1}", 32, 32, 3, 3) for i in range(4)),
                    weight("w_out", 5, 32, SIZE, SIZE), weight("w_fast", 5, 3, SIZE, SIZE),
                    helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
    graph = helper.make_graph(nodes, "input_dependent",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
                              [logits], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def dark_and_bright_folder(root: Path, per_class: int = 40) -> Path:
    """Two of five classes bright: the first evaluation image (class 'attentive', sorted first) is dark."""
    bright_classes = {"phone_use", "yawning"}
    rng = np.random.default_rng(0)
    for name in synthetic.CLASSES:
        (root / name).mkdir(parents=True)
        level = 220 if name in bright_classes else 30
        for index in range(per_class):
            pixels = np.clip(level + rng.normal(0, 10, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index:03d}.png")
    return root


def test_p99_covers_the_slow_inputs_of_an_input_dependent_model(suite, tmp_path):  # noqa: F811
    card = write_card(tmp_path, input_dependent_classifier(tmp_path / "dependent.onnx").name, name="dependent",
                      size=SIZE)
    folder = dark_and_bright_folder(tmp_path / "images")
    result = suite.runpytest("-m", "ncap", "--model", str(card), "--dataset", str(folder), "--precision", "fp32",
                             "-k", "test_latency", *FAST)
    result.assert_outcomes(passed=1)
    (record,) = [json.loads(line) for line in (suite.path / "reports" / "out" / "results.jsonl").read_text()
                 .splitlines() if json.loads(line)["metric"] == "latency"]
    bright = np.full((1, 3, SIZE, SIZE), 0.7, np.float32)
    with OnnxRuntimeRunner(tmp_path / "dependent.onnx", threads=2) as runner:
        slow_ms = float(np.median(time_inferences(runner, bright, LatencyPlan(5, 100, 0.0)).samples_ms))
    # two classes in five are bright: the p99 over the inputs is a slow input's time, not the first image's
    assert record["p99_ms"] >= 0.7 * slow_ms
    assert record["timing_inputs"] >= 30  # every evaluation image (about a fifth of 200)
    assert record["slowest_decile_p50_ms"] > 5 * record["fastest_decile_p50_ms"]
    assert record["settings"]["denormals_as_zero"] is False


class RecordingRunner:
    """Remembers which input each call got, and takes as long as the input says (simulated clock)."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.seen.append(float(batch[0, 0]))
        return batch


def test_every_input_is_timed_in_whole_passes_and_the_gate_pairs_them():
    inputs = np.arange(37, dtype=np.float32).reshape(37, 1)
    plan = LatencyPlan(warmup_runs=0, min_runs=100, min_seconds=0.0)
    runner = RecordingRunner()
    run = time_inferences(runner, inputs, plan)
    assert len(run.samples_ms) == 111  # 3 whole passes: 100 runs reached inside the third
    assert sorted(runner.seen) == sorted(list(range(37)) * 3)
    assert list(run.input_index[:38]) == [*range(37), 0]
    first, second = RecordingRunner(), RecordingRunner()
    time_alternating(first, second, inputs, plan)
    assert first.seen == second.seen and set(first.seen) == set(range(37))


def test_the_input_spread_names_the_slow_inputs_and_is_unbiased_when_there_are_none():
    rng = np.random.default_rng(0)
    inputs = np.tile(np.arange(1000), 4)
    dependent = (1.0 + inputs / 1000) * rng.lognormal(0, 0.1, inputs.size)  # 1 ms to 2 ms by input
    spread = InputSpread.from_samples(dependent, inputs)
    assert spread.inputs == 1000
    assert spread.fastest_decile_p50_ms == pytest.approx(1.05, rel=0.05)
    assert spread.slowest_decile_p50_ms == pytest.approx(1.95, rel=0.05)
    # pure noise: ranked and read on the same runs the fastest tenth would read ~13 % fast; split, it reads ~1.0
    noise = rng.lognormal(0, 0.1, inputs.size)
    flat = InputSpread.from_samples(noise, inputs)
    assert flat.fastest_decile_p50_ms / np.median(noise) == pytest.approx(1.0, abs=0.03)
    assert flat.slowest_decile_p50_ms / np.median(noise) == pytest.approx(1.0, abs=0.03)
    assert InputSpread.from_samples(noise[:9], np.arange(9)).fastest_decile_p50_ms is None


def test_denormals_as_zero_reaches_onnx_runtime(tmp_path):
    """The setting is ONNX Runtime's session config entry, recorded in the runner's settings. (Its effect, flushing
    on the intra-op worker threads, depends on how ONNX Runtime splits work among threads: not a unit test.)"""
    model = tiny_classifier(tmp_path / "tiny.onnx")
    for setting in (False, True):
        with OnnxRuntimeRunner(model, threads=2, denormals_as_zero=setting) as runner:
            entry = runner._session.get_session_options().get_session_config_entry("session.set_denormal_as_zero")
            assert entry == ("1" if setting else "0") and runner.settings["denormals_as_zero"] is setting
