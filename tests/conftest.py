"""Small, fast stand-ins for the harness's own tests: a tiny ONNX classifier, an image folder, and report folders
that the real compliance suite writes for them (for the report and merge tests, which read what a run writes,
never hand-made records)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxscript  # noqa: F401  (see below)
import pytest
import torch.export._trace  # noqa: F401
import torch.onnx._internal.exporter._core  # noqa: F401
from onnx import TensorProto, helper
from PIL import Image

from harness.data import synthetic
from harness.gate.slowdown import slowed_copy
from harness.results.store import ResultsStore

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


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """In-process runs go without labgrid's pytest plugin (the lab extra): it cannot configure twice in one process
    (labgrid-project/labgrid#1468, fixed after 26.0.1). Runs in a process of their own keep it (tests/test_lab.py)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", f"{os.environ.get('PYTEST_ADDOPTS', '')} -p no:labgrid".strip())
    return pytester


@pytest.fixture(autouse=True)
def _private_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Artifacts of tiny test models go to a per-session cache, never the user's.

    The compliance suite keeps the user's cache: when an option's value is an existing path
    (`--ncap-baseline b.json`), pytest takes it for a test path while it sets up (pytest-dev/pytest#906)
    and this autouse fixture then reaches suites/ too, which retrained every model in a throwaway cache."""
    if request.node.get_closest_marker("ncap") is None:
        monkeypatch.setenv("NCAP_CACHE", str(tmp_path_factory.getbasetemp() / "ncap-cache"))


# a dataset folder name a report must escape: it reaches the report as the dataset's name
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
FAST = ("--ncap-min-runs", "300", "--ncap-min-seconds", "0.05", "--ncap-warmup", "2", "-p", "no:cacheprovider")


@pytest.fixture(scope="session")
def measured_shard(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`measured_shard(name, platform=..., model=..., slowed=..., options=...)`: the report folder of a compliance
    run of the tiny model (fp32 and int8), made once per session and copied fresh for each call. `slowed`: the
    model's ONNX is swapped for a copy doing that much extra work (harness.gate.slowdown)."""
    made: dict[tuple[Any, ...], Path] = {}
    root = tmp_path_factory.mktemp("shards")
    images = write_image_folder(root / HOSTILE_NAME)
    suite = root / "test_ncap.py"
    shutil.copy(SUITE, suite)

    def make(name: str, platform: str = "host", model: str = "tiny", slowed: int = 0,
             options: tuple[str, ...] = ()) -> Path:
        key = (platform, model, slowed, options)
        if key not in made:
            folder = root / f"{len(made)}-{model}-{platform}"
            folder.mkdir()
            onnx = tiny_classifier(folder / "model.onnx")
            if slowed:
                onnx = slowed_copy(onnx, folder / "slowed.onnx", slowed)
            card = write_card(folder, onnx.name, name=model)
            environment = {**os.environ, "NCAP_CACHE": str(root / "cache")}
            done = subprocess.run([sys.executable, "-m", "pytest", str(suite), "-m", "ncap", "--model", str(card),
                                   "--dataset", str(images), "--precision", "fp32,int8", "--platform", platform,
                                   "--ncap-report", str(folder / "report"), *FAST, *options],
                                  cwd=folder, env=environment, capture_output=True, text=True, timeout=600)
            assert (folder / "report" / "summary.json").is_file(), done.stdout[-3000:] + done.stderr[-2000:]
            made[key] = folder / "report"
        copy = tmp_path_factory.mktemp(name) / "report"
        shutil.copytree(made[key], copy)
        return copy
    return make


def shard_records(folder: Path) -> list[dict[str, Any]]:
    return ResultsStore(folder / "results.jsonl").records()


@pytest.fixture(autouse=True)
def _qualification_kind(request: pytest.FixtureRequest, record_property) -> None:
    """A qualification test says its kind in the JUnit XML, which `ncap validate` reads."""
    marker = request.node.get_closest_marker("qualification")
    if marker is not None:
        record_property("qualification_kind", marker.kwargs["kind"])
