"""Small, fast stand-ins for the harness's own tests: a tiny ONNX classifier and an image folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxscript  # noqa: F401  (see below)
import pytest
import torch.export._trace  # noqa: F401
import torch.onnx._internal.exporter._core  # noqa: F401
from onnx import TensorProto, helper
from PIL import Image

from harness.data import synthetic

# pytester's in-process runs drop the modules first imported inside them, but torch's ONNX exporter and
# onnxscript keep global state from their first import (registries, the tracing evaluator), so a second
# import breaks exports ("already registered"). Imported here, before any pytester run, they stay loaded.
SUITE = Path(__file__).resolve().parents[1] / "suites" / "test_ncap.py"


def tiny_classifier(path: Path, *, size: int = 16, classes: int = 5, opset: int = 13, outputs: int = 1,
                    seed: int = 0) -> Path:
    """Conv (one full-image kernel per class) -> Flatten: a real, quantisable 5-way classifier."""
    rng = np.random.default_rng(seed)
    weight = helper.make_tensor("w", TensorProto.FLOAT, [classes, 3, size, size],
                                rng.standard_normal((classes, 3, size, size)).astype(np.float32).ravel() / size)
    nodes = [helper.make_node("Conv", ["input", "w"], ["scores"]),
             helper.make_node("Flatten", ["scores"], ["logits"])]
    graph_outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])]
    if outputs == 2:
        nodes.append(helper.make_node("Relu", ["logits"], ["extra"]))
        graph_outputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["batch", classes]))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        graph_outputs, [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_card(folder: Path, onnx_name: str, name: str = "tiny", size: int = 16, extra: str = "") -> Path:
    card = folder / f"{name}.yaml"
    card.write_text(f"""\
name: {name}
onnx: {onnx_name}
input:
  layout: NCHW
  size: [{size}, {size}]
  channels: 3
  scale: 0.00392156862745098
  mean: [0.5, 0.5, 0.5]
  std: [0.5, 0.5, 0.5]
output:
  kind: logits
classes: [{", ".join(synthetic.CLASSES)}]
{extra}""")
    return card


def write_image_folder(root: Path, per_class: int = 12, size: int = 32) -> Path:
    """An ImageFolder tree of synthetic images, larger than the tiny model's input (so they get resized)."""
    for label, name in enumerate(synthetic.CLASSES):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            image = synthetic.render_sample(label, synthetic.sample_rng("train", index * 5 + label), size)
            Image.fromarray(image).save(root / name / f"{index:03d}.png")
    return root


@pytest.fixture
def tiny_card(tmp_path: Path) -> Path:
    tiny_classifier(tmp_path / "tiny.onnx")
    return write_card(tmp_path, "tiny.onnx")


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


@pytest.fixture(autouse=True)
def _private_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Artifacts of tiny test models go to a per-session cache, never the user's.

    The compliance suite keeps the user's cache: when an option's value is an existing path
    (`--ncap-baseline b.json`), pytest takes it for a test path while it sets up (pytest-dev/pytest#906)
    and this autouse fixture then reaches suites/ too, which retrained every model in a throwaway cache."""
    if request.node.get_closest_marker("ncap") is None:
        monkeypatch.setenv("NCAP_CACHE", str(tmp_path_factory.getbasetemp() / "ncap-cache"))
