"""ONNX Runtime runner, precision passes and artifacts on a tiny real model."""
import json

import numpy as np
import onnx
import pytest

from conftest import tiny_classifier, write_card
from harness.data.dataset import ImageSet
from harness.errors import NcapError
from harness.measure.latency import LatencyPlan, time_inferences
from harness.measure.memory import measure_peak_memory
from harness.models.card import load_card
from harness.optimize.passes import Fp16, PassContext
from harness.optimize.recipe import build_artifact, parse_recipe
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner, session_options
from harness.runtimes.registry import RunnerSpec


def _context(card, count=20):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 16, 16, 3), dtype=np.uint8)
    return PassContext(card, ImageSet(images, np.arange(count) % 5), data_fingerprint="test")


def test_runner_runs_and_reports_its_settings(tmp_path):
    model = tiny_classifier(tmp_path / "m.onnx")
    with OnnxRuntimeRunner(model, threads=1) as runner:
        scores = runner.infer(np.zeros((4, 3, 16, 16), np.float32))
        assert scores.shape == (4, 5) and runner.last_inference_seconds > 0
        assert runner.max_batch is None and runner.settings["threads"] == 1


def test_runners_timed_in_turns_do_not_spin_and_say_so(tmp_path):
    model = tiny_classifier(tmp_path / "m.onnx")
    assert session_options(2).get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert session_options(2, spinning=False).get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with OnnxRuntimeRunner(model, threads=2, spinning=False) as runner:
        runner.infer(np.zeros((1, 3, 16, 16), np.float32))
        assert runner.settings["worker_spinning"] is False


def test_wrong_input_shape_names_the_card_fields(tmp_path):
    with OnnxRuntimeRunner(tiny_classifier(tmp_path / "m.onnx")) as runner:
        with pytest.raises(NcapError, match=r"rejected an input of shape \[1, 3, 8, 8\].*fix input.size"):
            runner.infer(np.zeros((1, 3, 8, 8), np.float32))


def test_unknown_output_name_lists_the_real_ones(tmp_path):
    with pytest.raises(NcapError, match=r"no output named 'probs' \(it has logits\)"):
        with OnnxRuntimeRunner(tiny_classifier(tmp_path / "m.onnx"), output_name="probs"):
            pass


def test_latency_loop_honours_count_and_duration(tmp_path):
    with OnnxRuntimeRunner(tiny_classifier(tmp_path / "m.onnx")) as runner:
        run = time_inferences(runner, np.zeros((1, 3, 16, 16), np.float32),
                              LatencyPlan(warmup_runs=3, min_runs=50, min_seconds=0.0))
    assert len(run.samples_ms) == 50 and (run.samples_ms > 0).all() and run.power is None


def test_memory_probe_runs_in_a_fresh_process(tmp_path):
    reading = measure_peak_memory(tiny_classifier(tmp_path / "m.onnx"), np.zeros((1, 3, 16, 16), np.float32),
                                  RunnerSpec())
    # the probe holds ONNX Runtime but not the harness's PyTorch: far below this test process
    assert reading.baseline_mb < reading.peak_mb < 400
    # several processes are probed and the peak is the worst of them
    assert len(reading.probes_mb) == 3 and reading.peak_mb == max(reading.probes_mb)


def test_memory_probe_failure_is_reported(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(NcapError, match="memory probe for bad.onnx failed"):
        measure_peak_memory(bad, np.zeros((1, 3, 16, 16), np.float32), RunnerSpec())


def test_int8_upgrades_an_old_opset_and_quantises_per_channel(tmp_path):
    tiny_classifier(tmp_path / "old.onnx", opset=11)
    card = load_card(write_card(tmp_path, "old.onnx"))
    artifact = build_artifact(card, parse_recipe("int8"), _context(card))
    model = onnx.load(str(artifact.card.onnx))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert artifact.manifest["steps"][0]["did"]["opset_upgraded_from"] == 11
    weight_scales = [n for n in model.graph.initializer if n.name.startswith("w_scale")]
    assert weight_scales and weight_scales[0].dims == [5]  # one scale per output channel


def test_fp16_artifact_keeps_float32_io_and_agrees(tmp_path):
    card = load_card(write_card(tmp_path, tiny_classifier(tmp_path / "m.onnx").name))
    artifact = build_artifact(card, parse_recipe("fp16"), _context(card))
    sample = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    with OnnxRuntimeRunner(card.onnx) as fp32, OnnxRuntimeRunner(artifact.card.onnx) as fp16:
        assert np.allclose(fp32.infer(sample), fp16.infer(sample), atol=5e-2)


def test_fp16_loads_where_two_resizes_share_scales_the_exporter_typed(tmp_path):
    """As torch.onnx exports YOLOv8-s's upsamplings: one scales initializer, also listed in value_info."""
    scales = onnx.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [onnx.helper.make_node("Resize", [x, "", "scales"], [y], mode="nearest")
             for x, y in (("x", "a"), ("a", "y"))]
    graph = onnx.helper.make_graph(
        nodes, "upsample", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 16, 16])], [scales],
        value_info=[onnx.helper.make_tensor_value_info("scales", onnx.TensorProto.FLOAT, [4])])
    source, target = tmp_path / "up.onnx", tmp_path / "up-fp16.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=10), source)
    Fp16().apply(source, target, None)
    with OnnxRuntimeRunner(target, threads=1) as runner:
        assert runner.infer(np.ones((1, 2, 4, 4), np.float32)).shape == (1, 2, 16, 16)


def test_artifacts_are_cached_by_content(tmp_path):
    card = load_card(write_card(tmp_path, tiny_classifier(tmp_path / "m.onnx").name))
    first = build_artifact(card, parse_recipe("int8"), _context(card))
    again = build_artifact(card, parse_recipe("int8"), _context(card))
    assert again.card.onnx == first.card.onnx and again.sha256 == first.sha256
    other_data = build_artifact(card, parse_recipe("int8"), PassContext(card, _context(card).calibration, "other"))
    assert other_data.card.onnx != first.card.onnx  # different calibration data, different artifact
    step = json.loads((first.card.onnx.parent / "step.json").read_text())
    assert step["params"]["per_channel"] is True and step["params"]["format"] == "QDQ"


@pytest.mark.parametrize("recipe, message", [
    ("int8,,fp16", "empty step"),
    ("int9", "names no known pass; known: fp32, fp16, int8"),
    ("int8:Guesswork", "bad parameter"),
])
def test_malformed_recipe(recipe, message):
    with pytest.raises(NcapError, match=message):
        parse_recipe(recipe)


def test_corrupt_onnx_is_named(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(tiny_classifier(tmp_path / "m.onnx").read_bytes()[:100])
    card = load_card(write_card(tmp_path, "broken.onnx"))
    with pytest.raises(NcapError, match="broken.onnx is not a valid ONNX model"):
        build_artifact(card, parse_recipe("fp32"), _context(card))


def test_named_recipes_follow_the_article_priorities_and_parse():
    from harness.optimize.recipe import NAMED_RECIPES, expand_recipe

    assert expand_recipe("P0") == "int8" and expand_recipe("int8:Entropy") == "int8:Entropy"
    for steps in NAMED_RECIPES.values():
        assert parse_recipe(steps)[-1].precision == "int8"
