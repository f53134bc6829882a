"""PyTorch-level passes (fuse, prune, distill, qat) and graph complexity, on a tiny zoo entry."""
import hashlib
import math

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from conftest import tiny_classifier, write_card
from harness.data import synthetic
from harness.data.dataset import Dataset, ImageSet
from harness.errors import NcapError
from harness.measure import accuracy, complexity
from harness.models import export, zoo
from harness.models.card import load_card
from harness.models.train import trained_model
from harness.optimize.passes import PassContext
from harness.optimize.recipe import build_artifact, parse_recipe
from harness.optimize.torch_passes import module_io
from harness.optimize.torch_passes.distill import Distill, distillation_loss
from harness.optimize.torch_passes.fuse import Fuse
from harness.optimize.torch_passes.prune import Prune
from harness.optimize.torch_passes.qat import one_module_per_call
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner


def _tiny_net(num_classes: int, width: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes))


COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40], [200, 40, 200]])


def _colour_split(count: int, seed: int) -> ImageSet:
    """Each class a colour under noise: learnable in a few epochs, so accuracy figures mean something."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(COLOURS), count)
    noise = rng.normal(0, 40, (count, 64, 64, 3))
    return ImageSet(np.clip(COLOURS[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8), labels)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    splits = [_colour_split(count, seed) for count, seed in ((256, 0), (32, 1), (128, 2))]
    digest = hashlib.sha256(b"".join(split.images.tobytes() for split in splits)).hexdigest()
    return Dataset("coloured noise", synthetic.CLASSES, *splits, digest)


@pytest.fixture
def tiny(monkeypatch, dataset):
    """A tiny zoo entry and a wider teacher, trained for a few epochs (cached), and a pass context for it."""
    plan = zoo.TrainingPlan(epochs=3, batch_size=32)
    monkeypatch.setitem(zoo.ZOO, "tiny", zoo.ZooEntry(_tiny_net, plan, "test"))
    monkeypatch.setitem(zoo.ZOO, "tiny_teacher", zoo.ZooEntry(lambda classes: _tiny_net(classes, 32),
                                                               zoo.TrainingPlan(epochs=1, batch_size=32), "test"))
    trained = trained_model("tiny", dataset, progress=lambda line: None)
    return PassContext(trained.card, dataset.calibration, dataset.fingerprint, dataset, trained)


def _onnx_ops(path):
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _evaluation_batch(context, count=16):
    return module_io.preprocess.to_tensor(context.dataset.evaluation.images[:count], context.card.input)


def test_pruning_rebuilds_a_smaller_network_whose_onnx_matches_torch(tiny, tmp_path):
    did = Prune(0.5).apply(tiny.card.onnx, tmp_path / "model.onnx", tiny)
    before, after = complexity.measure(tiny.card.onnx), complexity.measure(tmp_path / "model.onnx")
    assert after.params < 0.5 * before.params and after.macs < 0.5 * before.macs
    assert did["params_after"] < 0.5 * did["params_before"] and did["macs_after"] < did["macs_before"]
    pruned = torch.load(tmp_path / "module.pt", weights_only=False)
    assert pruned[0].out_channels == 8  # channels really removed, not masked
    batch = _evaluation_batch(tiny)
    with torch.no_grad():
        expected = pruned(torch.from_numpy(batch)).numpy()
    with OnnxRuntimeRunner(tmp_path / "model.onnx") as runner:
        np.testing.assert_allclose(runner.infer(batch), expected, atol=1e-4)


def test_fusion_folds_batch_norm_and_keeps_the_outputs(tiny, tmp_path):
    did = Fuse().apply(tiny.card.onnx, tmp_path / "model.onnx", tiny)
    assert (did["batch_norms_before"], did["batch_norms_after"]) == (2, 0)
    assert "BatchNormalization" not in _onnx_ops(tmp_path / "model.onnx")
    # the same network exported without the exporter's own optimiser still has its BatchNorms
    export.export_onnx(module_io.zoo_module(tiny.trained), _evaluation_batch(tiny), tmp_path / "raw.onnx",
                       optimize=False)
    assert "BatchNormalization" in _onnx_ops(tmp_path / "raw.onnx")
    batch = _evaluation_batch(tiny)
    with OnnxRuntimeRunner(tmp_path / "raw.onnx") as raw, OnnxRuntimeRunner(tmp_path / "model.onnx") as fused:
        np.testing.assert_allclose(fused.infer(batch), raw.infer(batch), atol=1e-4)


def test_qat_after_fusion_exports_int8_that_onnx_runtime_evaluates(tiny):
    artifact = build_artifact(tiny.card, parse_recipe("fuse,qat"), tiny)
    assert [step["pass"] for step in artifact.manifest["steps"]] == ["fuse", "qat"]
    assert {"QuantizeLinear", "DequantizeLinear"} <= _onnx_ops(artifact.card.onnx)
    with OnnxRuntimeRunner(artifact.card.onnx) as qat, OnnxRuntimeRunner(tiny.card.onnx) as fp32:
        qat_top1 = accuracy.top1(qat, artifact.card, tiny.dataset.evaluation)
        fp32_top1 = accuracy.top1(fp32, tiny.card, tiny.dataset.evaluation)
    assert fp32_top1 >= 0.9 and fp32_top1 - qat_top1 <= 0.03  # the article's INT8 bound, on a network that learnt


class _ResidualBlock(nn.Module):
    """torchvision's BasicBlock in small: one ReLU module called twice, the shape torchao's quantizer rejects."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(self.relu(x))) + x)


def test_qat_quantizes_a_block_that_calls_one_relu_twice():
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )
    block, x = _ResidualBlock().eval(), torch.randn(2, 8, 6, 6)
    unshared = one_module_per_call(block)
    assert sum(isinstance(m, nn.ReLU) for m in unshared.modules()) == 2
    torch.testing.assert_close(unshared(x), block(x))
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config(is_qat=True))
    prepare_qat_pt2e(torch.export.export(unshared.train(), (x,)).module(), quantizer)  # raised on the shared ReLU


def test_distill_moves_the_student_toward_the_teacher(tiny, dataset, tmp_path):
    """Against a control fine-tuned the same way on the labels alone (alpha 0): only the teacher's soft targets
    can bring the student's softened outputs nearer the teacher's (measured: KL 0.0054 -> 0.0031 distilled,
    -> 0.0064 for the control)."""
    artifact = build_artifact(tiny.card, parse_recipe("distill:tiny_teacher,fp32"), tiny)
    assert artifact.manifest["steps"][0]["params"]["temperature"] == 4.0
    Distill(teacher="tiny_teacher", alpha=0.0).apply(tiny.card.onnx, tmp_path / "labels_only.onnx", tiny)
    teacher = trained_model("tiny_teacher", dataset, progress=lambda line: None).card
    batch = _evaluation_batch(tiny, count=128)

    def softened(model) -> np.ndarray:  # outputs at the distillation temperature
        with OnnxRuntimeRunner(model) as runner:
            logits = runner.infer(batch) / 4.0
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    target = softened(teacher.onnx)

    def kl_to_teacher(model) -> float:
        return float(np.mean(np.sum(target * np.log(target / softened(model)), axis=1)))
    before, distilled = kl_to_teacher(tiny.card.onnx), kl_to_teacher(artifact.card.onnx)
    control = kl_to_teacher(tmp_path / "labels_only.onnx")
    assert distilled < before and distilled < 0.7 * control


def test_distillation_loss_matches_a_hand_computed_value():
    student, teacher, labels = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]]), torch.tensor([0])
    t = 4.0
    p = np.exp(np.array([3, 2, 1]) / t) / np.exp(np.array([3, 2, 1]) / t).sum()
    q = np.exp(np.array([1, 2, 3]) / t) / np.exp(np.array([1, 2, 3]) / t).sum()
    kl = float((p * np.log(p / q)).sum())
    ce = -math.log(math.exp(1) / (math.exp(1) + math.exp(2) + math.exp(3)))
    expected = 0.7 * kl * t ** 2 + 0.3 * ce
    assert float(distillation_loss(student, teacher, labels)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("recipe", ["fuse,fp32", "prune:0.5,fp32", "distill,fp32", "qat"])
def test_torch_pass_on_a_user_onnx_model_says_it_needs_a_zoo_model(tmp_path, dataset, recipe):
    card = load_card(write_card(tmp_path, tiny_classifier(tmp_path / "m.onnx").name))
    context = PassContext(card, dataset.calibration, dataset.fingerprint, dataset, trained=None)
    with pytest.raises(NcapError, match=r"needs a zoo model; tiny is an ONNX model"):
        build_artifact(card, parse_recipe(recipe), context)


@pytest.mark.parametrize("recipe, message", [("prune:1.5,fp32", "between 0 and 1"),
                                             ("prune:0.5:l3,fp32", "must be 1"),
                                             ("distill:gpt,fp32", "not a zoo model")])
def test_bad_torch_pass_parameters_are_usage_errors(recipe, message):
    with pytest.raises(NcapError, match=message):
        parse_recipe(recipe)


def test_complexity_of_a_hand_computed_conv_and_gemm(tmp_path):
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.zeros(108, np.float32))
    bias = helper.make_tensor("b", TensorProto.FLOAT, [4], np.zeros(4, np.float32))
    fc = helper.make_tensor("fc", TensorProto.FLOAT, [256, 10], np.zeros(2560, np.float32))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Flatten", ["c"], ["f"]), helper.make_node("Gemm", ["f", "fc"], ["logits"])],
        "hand", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], [weight, bias, fc])
    path = tmp_path / "hand.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    # conv: 4*3*3*3 weights + 4 biases; 4x8x8 outputs of 3*3*3 products each. Gemm: 256 -> 10.
    assert complexity.measure(path) == complexity.Complexity(params=112 + 2560, macs=4 * 8 * 8 * 27 + 2560)


def test_complexity_counts_an_int4_matmul_as_the_float_weights_it_packs(tmp_path):
    # ONNX Runtime's int4 pass turns Gemm(256 -> 10, bias) into MatMulNBits (2 weights a byte) + Add(bias)
    packed = helper.make_tensor("w_q4", TensorProto.UINT8, [10, 8, 16], np.zeros(1280, np.uint8))
    scales = helper.make_tensor("w_scales", TensorProto.FLOAT, [80], np.ones(80, np.float32))
    bias = helper.make_tensor("b", TensorProto.FLOAT, [10], np.zeros(10, np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMulNBits", ["input", "w_q4", "w_scales"], ["m"], domain="com.microsoft",
                          K=256, N=10, bits=4, block_size=32),
         helper.make_node("Add", ["m", "b"], ["logits"])],
        "int4", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 256])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], [packed, scales, bias])
    path = tmp_path / "int4.onnx"
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    assert complexity.measure(path) == complexity.Complexity(params=2560 + 10, macs=2560)


class _Trap:
    """A pickle that writes a file when it is loaded: what a hostile module.pt would do."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_module_pt_beside_a_users_onnx_is_never_unpickled(tmp_path, dataset):
    card = load_card(write_card(tmp_path, tiny_classifier(tmp_path / "m.onnx").name))
    marker = tmp_path / "code-ran"
    torch.save(_Trap(marker), tmp_path / "module.pt")
    context = PassContext(card, dataset.calibration, dataset.fingerprint, dataset, trained=None)
    with pytest.raises(NcapError, match="needs a zoo model"):
        build_artifact(card, parse_recipe("prune:0.5,fp32"), context)
    assert not marker.exists()
