"""INT8 granularity, INT4 and accuracy-aware mixed precision on small real ONNX models."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import tiny_classifier, write_card
from harness import cache
from harness.data.dataset import Dataset, ImageSet
from harness.errors import NcapError
from harness.measure.accuracy import top1
from harness.models import preprocess
from harness.models.card import load_card
from harness.optimize import mixed
from harness.optimize.passes import PassContext
from harness.optimize.recipe import build_artifact, parse_recipe
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner

SIZE = 8


def _classifier(path: Path, *, width: int = 8, fragile: bool = False, seed: int = 0) -> Path:
    """conv1 -> Relu -> conv2 -> Relu -> GlobalAveragePool -> fc (Gemm), 5 classes, SIZExSIZE RGB input.

    With `fragile`, conv1's last channel is dead (always 0 after Relu) and every conv2 filter has one
    giant weight on it: harmless in float, but it sets conv2's INT8 weight scales so coarse that all
    its useful weights round to zero.
    """
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((width, 3, 3, 3)).astype(np.float32) * 0.3
    b1 = np.zeros(width, np.float32)
    w2 = rng.standard_normal((2 * width, width, 3, 3)).astype(np.float32) * 0.3
    if fragile:
        b1[-1] = -np.abs(w1[-1]).sum() - 1  # inputs lie in [-1, 1]: the channel is always negative, so 0 after Relu
        w2[:, -1, 1, 1] = 1e4
    arrays = {"w1": w1, "b1": b1, "w2": w2, "b2": np.zeros(2 * width, np.float32),
              "wf": rng.standard_normal((5, 2 * width)).astype(np.float32), "bf": np.zeros(5, np.float32)}
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["r2"], ["pooled"], name="pool"),
             helper.make_node("Flatten", ["pooled"], ["features"], name="flatten"),
             helper.make_node("Gemm", ["features", "wf", "bf"], ["logits"], transB=1, name="fc")]
    graph = helper.make_graph(
        nodes, "classifier", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        [numpy_helper.from_array(value, name) for name, value in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _context(folder: Path, model: Path, count: int = 80):
    """A card for `model` and data labelled by the float model itself, so FP32 top-1 is 100 %."""
    card = load_card(write_card(folder, model.name, size=SIZE))
    images = np.random.default_rng(1).integers(0, 256, size=(count, SIZE, SIZE, 3), dtype=np.uint8)
    with OnnxRuntimeRunner(model) as runner:
        labels = runner.infer(preprocess.to_tensor(images, card.input)).argmax(axis=1)
    split = ImageSet(images, labels)
    dataset = Dataset("float-labelled noise", tuple(card.classes), split, split, split, "test-" + model.stem)
    return card, PassContext(card, split, dataset.fingerprint, dataset)


def _mixed(tmp_path: Path, budget: float):
    card, context = _context(tmp_path, _classifier(tmp_path / "fragile.onnx", fragile=True))
    artifact = build_artifact(card, parse_recipe(f"mixed:{budget}"), context)
    return artifact, context, artifact.manifest["steps"][-1]["did"]


def test_int8_per_tensor_has_scalar_weight_scales(tmp_path):
    card, context = _context(tmp_path, tiny_classifier(tmp_path / "m.onnx", size=SIZE))
    artifact = build_artifact(card, parse_recipe("int8:MinMax/per-tensor"), context)
    scales = [init for init in onnx.load(str(artifact.card.onnx)).graph.initializer if init.name.startswith("w_scale")]
    assert scales and all(list(scale.dims) == [] for scale in scales)
    assert artifact.manifest["steps"][0]["params"]["per_channel"] is False


@pytest.mark.parametrize("recipe", ["int8:MinMax/per-row", "int4:7", "mixed:lots", "mixed:-1"])
def test_bad_quantisation_parameters_are_usage_errors(recipe):
    with pytest.raises(NcapError, match=r"bad parameter .*forms: int8\[:MinMax"):
        parse_recipe(recipe)


def test_int4_runs_with_4bit_weights_and_is_smaller_than_int8(tmp_path):
    model = _classifier(tmp_path / "wide.onnx", width=64)
    card, context = _context(tmp_path, model, count=20)
    int4 = build_artifact(card, parse_recipe("int4"), context)
    int8 = build_artifact(card, parse_recipe("int8"), context)
    graph = onnx.load(str(int4.card.onnx)).graph
    four_bit = [init.name for init in graph.initializer if init.data_type in (TensorProto.INT4, TensorProto.UINT4)]
    assert {"w1_quantized", "w2_quantized"} <= set(four_bit)  # both Conv weights stored in 4 bits
    ops = [node.op_type for node in graph.node]
    assert "MatMulNBits" in ops and "Gemm" not in ops  # the Gemm head runs on the 4-bit kernel
    with OnnxRuntimeRunner(int4.card.onnx) as runner:
        assert runner.infer(np.zeros((2, 3, SIZE, SIZE), np.float32)).shape == (2, 5)
    assert int4.manifest["size_bytes"] < 0.7 * int8.manifest["size_bytes"]
    did = int4.manifest["steps"][0]["did"]
    assert did["gemm_converted_to_matmul"] == 1 and did["ort_kernels"]["MatMulNBits"] == 1
    assert "no INT4 convolution" in did["compute"]


def test_sensitivity_ranks_the_fragile_layer_first(tmp_path):
    _, _, did = _mixed(tmp_path, budget=100.0)
    ranked = sorted(did["sensitivity"], key=did["sensitivity"].get, reverse=True)
    assert ranked[0] == "conv2" and did["sensitivity"]["conv2"] > 30
    assert min(did["sensitivity_alone"], key=did["sensitivity_alone"].get) == "conv2"
    assert set(did["assignment"].values()) == {"int8"}  # a 100 pt budget keeps everything INT8


@pytest.mark.parametrize("budget", [0.0, 5.0])
def test_search_meets_the_budget_with_the_fragile_layer_in_float(tmp_path, budget):
    artifact, context, did = _mixed(tmp_path, budget)
    assert did["assignment"]["conv2"] == "fp32" and did["within_budget"]
    chosen = [step for step in did["trace"] if step["chosen"]]
    assert len(chosen) == 1 and chosen[0]["drop_pt"] <= budget
    with OnnxRuntimeRunner(artifact.card.onnx) as runner:  # recomputed, not taken from the record
        assert (1.0 - top1(runner, artifact.card, context.dataset.evaluation)) * 100 <= budget
    assert parse_recipe(f"mixed:{budget}")[-1].accuracy_budget_pt == budget


def test_the_mixed_search_scores_on_the_calibration_split_never_the_evaluation_split(tmp_path, monkeypatch):
    card, context = _context(tmp_path, _classifier(tmp_path / "fragile.onnx", fragile=True))
    calibration = ImageSet(context.calibration.images[:40], context.calibration.labels[:40])
    evaluation = ImageSet(context.calibration.images[40:], context.calibration.labels[40:])
    dataset = Dataset("disjoint halves", context.dataset.classes, calibration, calibration, evaluation, "halves")
    scored: list[np.ndarray] = []

    def spy(runner, card, split):
        scored.append(split.images)
        return top1(runner, card, split)
    monkeypatch.setattr(mixed, "top1", spy)
    build_artifact(card, parse_recipe("mixed:1"), PassContext(card, calibration, dataset.fingerprint, dataset))
    seen = {image.tobytes() for images in scored for image in images}
    assert scored and not seen & {image.tobytes() for image in evaluation.images}


def test_an_artifact_is_rebuilt_when_the_card_feeds_the_model_differently(tmp_path):
    card, context = _context(tmp_path, tiny_classifier(tmp_path / "m.onnx", size=SIZE))
    before = build_artifact(card, parse_recipe("int8"), context)
    shifted = card.model_copy(update={"input": card.input.model_copy(update={"mean": (0.2, 0.2, 0.2)})})
    after = build_artifact(shifted, parse_recipe("int8"), PassContext(shifted, context.calibration,
                                                                      context.data_fingerprint, context.dataset))
    assert after.sha256 != before.sha256  # calibrated on differently normalised inputs: other scales


def test_a_damaged_cached_artifact_is_rebuilt_not_trusted(tmp_path):
    card, context = _context(tmp_path, tiny_classifier(tmp_path / "m.onnx", size=SIZE))
    int8 = build_artifact(card, parse_recipe("int8"), context)
    fp32 = build_artifact(card, parse_recipe("fp32"), context)
    # the INT8 file swapped for the FP32 one, then cut short: each time the record's sha256 no longer matches
    for damage in (lambda path: shutil.copy(fp32.card.onnx, path), lambda path: path.write_bytes(b"\x08\x07")):
        damage(int8.card.onnx)
        again = build_artifact(card, parse_recipe("int8"), context)
        assert again.sha256 == int8.sha256 == cache.file_sha256(again.card.onnx)


def test_a_staging_folder_of_a_killed_build_is_removed(tmp_path):
    card, context = _context(tmp_path, tiny_classifier(tmp_path / "m.onnx", size=SIZE))
    artifacts = cache.cache_root() / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = artifacts / f".step-{dead.stdout.strip()}-abc"
    (orphan / "partial").mkdir(parents=True)
    build_artifact(card, parse_recipe("int8:Entropy"), context)  # a new step to build
    assert not orphan.exists()
