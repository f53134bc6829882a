"""Bad input gets one line naming the problem and the fix: profiles, requirements, cards, datasets."""
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import tiny_classifier, write_card
from harness.data.dataset import folder_dataset
from harness.errors import NcapError
from harness.models.card import InputSpec, load_card
from harness.models.preprocess import to_tensor
from harness.platform import known_platforms, load_platform, parse_platform
from harness.requirements import load_requirements


def test_every_shipped_profile_validates():
    assert {"host", "qcs8255", "tda4vm", "imx8", "cv22", "orin-x"} <= set(known_platforms())
    for name in known_platforms():
        assert load_platform(name).name == name


@pytest.mark.parametrize("text, field", [
    ("name: x\ndescription: d\nkind: target\nprecisions: [int8]\n", "runtime"),
    ("name: x\ndescription: d\nkind: target\nprecisions: [int8]\nruntime: {name: ort}\n"
     "peak_tops: {int8: {value: -3, source: s}}\n", "peak_tops.int8.value"),
    ("name: x\ndescription: d\nkind: target\nprecisions: [int9]\nruntime: {name: ort}\n", "precisions.0"),
])
def test_malformed_profile_names_file_and_field(tmp_path, text, field):
    path = tmp_path / "chip.yaml"
    path.write_text(text)
    with pytest.raises(NcapError, match=rf"chip.yaml: field {field}"):
        parse_platform(path)


def test_requirements_override_keeps_other_defaults_and_cites_the_file(tmp_path):
    path = tmp_path / "limits.yaml"
    path.write_text("latency_ms: 30\naccuracy_drop_pt: {int8: 1.5}\n")
    limits = load_requirements(path)
    assert limits.latency_ms.value == 30 and "limits.yaml" in limits.latency_ms.source
    assert limits.accuracy_drop_pt["int8"].value == 1.5
    assert limits.power_w.value == 5 and "source article" in limits.power_w.source
    assert limits.accuracy_drop_pt["fp16"].strict  # the article says FP16 < 1 %


@pytest.mark.parametrize("text, message", [
    ("latency_ms: [oops", "not valid YAML"),
    ("latency: 30\n", "field latency: Extra inputs are not permitted"),
    ("memory_mb: -1\n", "field memory_mb"),
])
def test_bad_requirements_file(tmp_path, text, message):
    path = tmp_path / "limits.yaml"
    path.write_text(text)
    with pytest.raises(NcapError, match=message):
        load_requirements(path)


def test_card_paths_are_relative_to_the_card(tiny_card):
    card = load_card(tiny_card)
    assert card.onnx == tiny_card.parent / "tiny.onnx" and card.input.size == (16, 16)


@pytest.mark.parametrize("extra, message", [
    ("  mean: [0.5, 0.5]\n", "1 or 3 values"),
    ("", "field name"),
])
def test_bad_card(tmp_path, extra, message):
    card = tmp_path / "card.yaml"
    name = "bad name!" if not extra else "ok"
    card.write_text(f"name: {name}\nonnx: m.onnx\ninput:\n  size: [8, 8]\n{extra}classes: [a, b]\n")
    with pytest.raises(NcapError, match=message):
        load_card(card)


def test_preprocess_layouts_channels_and_resize():
    image = np.full((4, 6, 3), 255, dtype=np.uint8)
    image[..., 0] = 0
    nchw = to_tensor([image], InputSpec(size=(2, 3), mean=(0.5,), std=(0.5,)))
    assert nchw.shape == (1, 3, 2, 3) and nchw.dtype == np.float32
    assert np.allclose(nchw[0, 0], -1) and np.allclose(nchw[0, 1:], 1)  # (x/255 - 0.5) / 0.5
    nhwc = to_tensor([image], InputSpec(size=(4, 6), layout="NHWC"))
    assert nhwc.shape == (1, 4, 6, 3)
    gray = to_tensor([image], InputSpec(size=(4, 6), channels=1, scale=1.0))
    assert gray.shape == (1, 1, 4, 6) and np.allclose(gray, 255 * (0.587 + 0.114), atol=1e-3)


def test_dataset_folder_splits_are_disjoint_and_complete(image_folder):
    data = folder_dataset(image_folder)
    assert data.classes == tuple(sorted(p.name for p in image_folder.iterdir()))
    sizes = [len(data.train), len(data.calibration), len(data.evaluation)]
    assert sum(sizes) == 60 and min(sizes) > 0


def test_empty_or_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(NcapError, match="does not exist"):
        folder_dataset(tmp_path / "nowhere")
    (tmp_path / "empty" / "attentive").mkdir(parents=True)
    with pytest.raises(NcapError, match="no images in its train split"):
        folder_dataset(tmp_path / "empty")


def test_unreadable_image_is_named(image_folder):
    bad = image_folder / "attentive" / "zz-broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(NcapError, match="cannot read image .*zz-broken.png"):
        folder_dataset(Path(image_folder))


def test_non_finite_scores_are_an_error_not_class_zero(tmp_path, image_folder):
    from harness.measure import accuracy
    from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner

    tiny_classifier(tmp_path / "tiny.onnx")
    model = onnx.load(str(tmp_path / "tiny.onnx"))  # logits / 0: every score infinite
    model.graph.initializer.append(helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]))
    model.graph.node[-1].output[0] = "finite"
    model.graph.node.append(helper.make_node("Div", ["finite", "zero"], ["logits"]))
    onnx.save(model, str(tmp_path / "inf.onnx"))
    card = load_card(write_card(tmp_path, "inf.onnx", name="inf"))
    evaluation = folder_dataset(image_folder).evaluation
    with OnnxRuntimeRunner(card.onnx) as runner, pytest.raises(NcapError, match="non-finite .* scores"):
        accuracy.top1(runner, card, evaluation)
    with pytest.raises(NcapError, match="produced 3 non-finite"):
        accuracy.top1_of_predictions([0] * len(evaluation), [[len(evaluation), 5]], card, evaluation, 3)
