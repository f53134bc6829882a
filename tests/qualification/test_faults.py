"""Faults injected into the two things a run leaves behind, the results store and the artifact cache: a process
killed (SIGKILL) at random moments while it writes them, each kind of cache damage, a full disk and a torn last
line. Whatever happens, no stored record is lost and no wrong result is handed out."""
from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_classifier, write_card, write_image_folder
from harness.data.dataset import folder_dataset
from harness.errors import NcapError
from harness.models.card import load_card
from harness.optimize.passes import PassContext
from harness.optimize.recipe import build_artifact, cached_artifact, parse_recipe
from harness.results.record import stored
from harness.results.store import ResultsStore

pytestmark = pytest.mark.qualification(kind="fault")

KILL_POINTS = 12  # per target; two targets make the >= 20 the qualification plan asks for
FIELDS = {"run_id": "r", "timestamp": "2026-01-01T00:00:00+00:00", "model": "m", "precision": "fp32",
          "platform": "host", "recipe": "fp32", "metric": "latency", "verdict": "pass", "message": "ok",
          "samples_ms": [1.0] * 200}  # a long line, so a kill can land inside a write

WRITER = """
import sys
from harness.results.record import stored
from harness.results.store import ResultsStore
store, fields = ResultsStore(__import__("pathlib").Path(sys.argv[1])), __import__("json").loads(sys.argv[2])
for index in range(100000):
    store.append(stored({**fields, "cell": f"c{index}"}))
    print(index, flush=True)  # confirmed: append returned
"""

BUILDER = """
import sys
from pathlib import Path
from harness.data.dataset import folder_dataset
from harness.models.card import load_card
from harness.optimize.passes import PassContext
from harness.optimize.recipe import build_artifact, parse_recipe
card, dataset = load_card(Path(sys.argv[1])), folder_dataset(Path(sys.argv[2]))
print(build_artifact(card, parse_recipe("int8"), PassContext(card, dataset.calibration, dataset.fingerprint)).sha256)
"""


def _kill_after(command: list[str], seconds: float, env: dict[str, str], once_it_writes: bool = False) -> str:
    """Start `command`, SIGKILL it `seconds` later (counted from its first line of output if `once_it_writes`),
    unless it finished first; its stdout up to then."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    first = process.stdout.readline() if once_it_writes else ""
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate()
    return first + out


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "NCAP_CACHE": str(cache), "PYTHONPATH": os.pathsep.join(sys.path)}


def test_sigkill_while_appending_loses_no_confirmed_record(tmp_path, record_property):
    path, rng = tmp_path / "results.jsonl", random.Random(13)
    confirmed: set[str] = set()
    for point in range(KILL_POINTS):
        out = _kill_after([sys.executable, "-c", WRITER, str(path), json.dumps({**FIELDS, "run_id": f"r{point}"})],
                          rng.uniform(0.0, 0.3), _env(tmp_path / "cache"), once_it_writes=True)
        confirmed |= {f"r{point}/c{line}" for line in out.split()}
    ResultsStore(path).append(stored({**FIELDS, "cell": "after"}))  # the next writer after the last kill
    kept = {f"{r['run_id']}/{r['cell']}" for r in ResultsStore(path).records()}
    lost = confirmed - kept
    record_property("kill_points", KILL_POINTS)
    record_property("records_confirmed", len(confirmed))
    record_property("records_lost", len(lost))
    assert confirmed and not lost and "r/after" in kept


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("faults")
    card = write_card(folder, tiny_classifier(folder / "tiny.onnx").name)
    return card, write_image_folder(folder / "images", per_class=6)


def _build(card: Path, images: Path) -> str:
    model, dataset = load_card(card), folder_dataset(images)
    return build_artifact(model, parse_recipe("int8"),
                          PassContext(model, dataset.calibration, dataset.fingerprint)).sha256


@pytest.fixture(scope="module")
def clean_sha256(model_and_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The INT8 artifact as an undisturbed build makes it."""
    done = subprocess.run([sys.executable, "-c", BUILDER, *map(str, model_and_data)], capture_output=True, text=True,
                          env=_env(tmp_path_factory.mktemp("clean-cache")), check=True)
    return done.stdout.strip()


def test_sigkill_while_building_an_artifact_never_yields_a_wrong_one(model_and_data, clean_sha256, tmp_path,
                                                                      monkeypatch, record_property):
    cache, rng = tmp_path / "cache", random.Random(7)
    monkeypatch.setenv("NCAP_CACHE", str(cache))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", BUILDER, *map(str, model_and_data)], env=_env(tmp_path / "timing"),
                   capture_output=True, check=True)
    full = time.perf_counter() - started
    for _ in range(KILL_POINTS):
        _kill_after([sys.executable, "-c", BUILDER, *map(str, model_and_data)], rng.uniform(0.2, full),
                    _env(cache))
        assert _build(*model_and_data) == clean_sha256  # whatever the kill left, the next build is right
        shutil.rmtree(cache / "artifacts", ignore_errors=True)
    record_property("kill_points", KILL_POINTS)
    record_property("wrong_results", 0)


def test_a_killed_builds_staging_folder_is_cleaned_by_the_next_build(model_and_data, tmp_path, monkeypatch):
    artifacts = tmp_path / "cache" / "artifacts"
    monkeypatch.setenv("NCAP_CACHE", str(tmp_path / "cache"))
    orphan = artifacts / ".step-999999-x"  # a pid that does not run
    (orphan).mkdir(parents=True)
    (orphan / "model.onnx").write_bytes(b"half a model")
    _build(*model_and_data)
    assert not orphan.exists()


def _only_step(cache: Path) -> Path:
    (step,) = (cache / "artifacts").glob("*/step.json")
    return step.parent


DAMAGE = {
    "model swapped for another valid model": lambda step, tmp: shutil.copy(tiny_classifier(tmp / "other.onnx",
                                                                                            seed=5),
                                                                             step / "model.onnx"),
    "model truncated": lambda step, tmp: (step / "model.onnx").write_bytes((step / "model.onnx").read_bytes()[:150]),
    "model deleted": lambda step, tmp: (step / "model.onnx").unlink(),
    "model emptied": lambda step, tmp: (step / "model.onnx").write_bytes(b""),
    "record not JSON": lambda step, tmp: (step / "step.json").write_text("{torn"),
    "record deleted": lambda step, tmp: (step / "step.json").unlink(),
    "record names another hash": lambda step, tmp: (step / "step.json").write_text(json.dumps({"sha256": "0" * 64})),
    "record binary": lambda step, tmp: (step / "step.json").write_bytes(bytes(range(256))),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cached_artifact_is_rebuilt_not_used(model_and_data, clean_sha256, tmp_path, monkeypatch, damage):
    monkeypatch.setenv("NCAP_CACHE", str(tmp_path / "cache"))
    assert _build(*model_and_data) == clean_sha256
    DAMAGE[damage](_only_step(tmp_path / "cache"), tmp_path)
    assert cached_artifact(clean_sha256) is None  # the gate's lookup never hands out a damaged file
    assert _build(*model_and_data) == clean_sha256
    assert cached_artifact(clean_sha256) is not None


def test_a_full_disk_is_one_line_and_the_stored_records_survive(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(stored({**FIELDS, "cell": "before"}))
    real_write = os.write

    def full_disk(descriptor: int, data: bytes) -> int:  # half the line reaches the disk, then it is full
        if len(data) > 2:
            real_write(descriptor, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(NcapError, match="No space left on device.*records stored before it are intact"):
        store.append(stored({**FIELDS, "cell": "during"}))
    monkeypatch.setattr(os, "write", real_write)
    store.append(stored({**FIELDS, "cell": "after"}))  # space freed: the next record starts on a line of its own
    assert [r["cell"] for r in store.records()] == ["before", "after"]


def test_a_write_that_makes_no_progress_is_an_error_not_a_hang(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "results.jsonl")
    monkeypatch.setattr(os, "write", lambda descriptor, data: 0)
    with pytest.raises(NcapError, match="could not store the latency record"):
        store.append(stored({**FIELDS, "cell": "c"}))
