"""The bad-input catalogue: each mistake a user can make, fed through the entry point that meets it, must be one
clear line naming it (an NcapError, or pytest's usage error for an option's type) and never a traceback or a
silent acceptance. `ncap validate` counts the outcomes for the tool-qualification report.

Categories follow the issue that asked for them: command-line options, requirement files, model cards, ONNX
files, baselines, platform profiles, datasets and `ncap merge`."""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper
from PIL import Image

from conftest import tiny_classifier, write_card, write_image_folder
from harness.data.dataset import folder_dataset
from harness.errors import NcapError
from harness.gate.baseline import load_baseline
from harness.gate.compare import SecondLook, Thresholds, regression_verdict
from harness.measure import accuracy
from harness.merge import main as merge_main
from harness.models.card import load_card
from harness.options import run_options
from harness.platform import parse_platform
from harness.requirements import load_requirements
from harness.runtimes.registry import RunnerSpec, open_runner
from harness.session import ComplianceRun

pytestmark = pytest.mark.qualification(kind="bad input")


@dataclass(frozen=True)
class Bad:
    category: str
    what: str
    apply: Callable[[Path, pytest.Pytester], Any]  # raises NcapError/UsageError when the mistake is caught


BINARY = bytes(range(256)) * 4


# --- command-line options: the start-up a pytest run goes through -----------------------------------------------

def _start(*args: str) -> Callable[[Path, pytest.Pytester], Any]:
    def start(tmp: Path, pytester: pytest.Pytester) -> Any:
        card = write_card(tmp, tiny_classifier(tmp / "tiny.onnx").name)
        values = [a.replace("{tmp}", str(tmp)).replace("{card}", str(card)) for a in args]
        if not any(a.startswith("--ncap-report") for a in values):
            values += ["--ncap-report", str(tmp / "report")]
        return ComplianceRun(run_options(pytester.parseconfig(*values)), progress=lambda _: None)
    return start


def _file(name: str, content: bytes | str) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path
    return write


OPTIONS = [
    ("unknown platform", ["--platform", "nope"]),
    ("empty platform", ["--platform", ""]),
    ("platform file that does not exist", ["--platform", "{tmp}/missing.yaml"]),
    ("empty model list", ["--model", ","]),
    ("model card that does not exist", ["--model", "{tmp}/missing.yaml"]),
    ("unknown zoo model", ["--model", "lenet9000"]),
    ("the same model twice", ["--model", "{card},{card}"]),
    ("empty precision", ["--precision", ""]),
    ("precision of commas", ["--precision", ",,"]),
    ("unknown precision", ["--precision", "int9"]),
    ("one unknown among known precisions", ["--precision", "fp32,bogus"]),
    ("precision the platform lacks in a recipe's step", ["--recipe", "fp32:garbage"]),
    ("empty recipe", ["--recipe", ""]),
    ("prune ratio above 1", ["--recipe", "prune:2,int8"]),
    ("negative prune ratio", ["--recipe", "prune:-0.1,int8"]),
    ("NaN prune ratio", ["--recipe", "prune:nan,int8"]),
    ("NaN mixed budget", ["--recipe", "mixed:nan"]),
    ("negative mixed budget", ["--recipe", "mixed:-1"]),
    ("unknown pass", ["--recipe", "sharpen,int8"]),
    ("recipe not ending in a precision", ["--recipe", "fuse"]),
    ("zero threads", ["--ncap-threads", "0"]),
    ("negative threads", ["--ncap-threads", "-1"]),
    ("threads not a number", ["--ncap-threads", "many"]),
    ("too few timed runs for a p99 bound", ["--ncap-min-runs", "10"]),
    ("negative timed runs", ["--ncap-min-runs", "-5"]),
    ("timed runs not a number", ["--ncap-min-runs", "lots"]),
    ("NaN minimum seconds", ["--ncap-min-seconds", "nan"]),
    ("infinite minimum seconds", ["--ncap-min-seconds", "inf"]),
    ("negative minimum seconds", ["--ncap-min-seconds", "-1"]),
    ("minimum seconds not a number", ["--ncap-min-seconds", "soon"]),
    ("negative warm-up", ["--ncap-warmup", "-1"]),
    ("NaN gate alpha", ["--ncap-gate-alpha", "nan"]),
    ("negative gate alpha", ["--ncap-gate-alpha", "-1"]),
    ("gate alpha 0", ["--ncap-gate-alpha", "0"]),
    ("gate alpha 1", ["--ncap-gate-alpha", "1"]),
    ("infinite gate alpha", ["--ncap-gate-alpha", "inf"]),
    ("NaN latency threshold", ["--ncap-gate-latency", "nan"]),
    ("negative latency threshold", ["--ncap-gate-latency", "-0.1"]),
    ("infinite latency threshold", ["--ncap-gate-latency", "inf"]),
    ("NaN memory threshold", ["--ncap-gate-memory", "nan"]),
    ("negative accuracy threshold", ["--ncap-gate-accuracy", "-1"]),
    ("empty device", ["--device", ""]),
    ("device of another scheme", ["--device", "ftp://user@board"]),
    ("device without a host", ["--device", "ssh://"]),
    ("device port 0", ["--device", "ssh://user@board:0"]),
    ("device port out of range", ["--device", "ssh://user@board:70000"]),
    ("device port not a number", ["--device", "ssh://user@board:abc"]),
    ("IPv6 device with a missing bracket", ["--device", "ssh://user@[::1"]),
    ("report folder that is a file", ["--ncap-report", "{card}"]),
    ("requirements file that does not exist", ["--ncap-requirements", "{tmp}/missing.yaml"]),
    ("baseline that does not exist", ["--ncap-baseline", "{tmp}/missing.json"]),
    ("unknown power meter", ["--ncap-power-meter", "bogus:x"]),
    ("power meter without its resource", ["--ncap-power-meter", "scpi:"]),
    ("dataset folder that does not exist", ["--dataset", "{tmp}/missing"]),
]
CASES = [Bad("command-line option", what, _start(*args)) for what, args in OPTIONS]


def _binary_option(option: str) -> Callable[[Path, pytest.Pytester], Any]:
    def start(tmp: Path, pytester: pytest.Pytester) -> Any:
        _file("binary.bin", BINARY)(tmp)
        return _start(option, "{tmp}/binary.bin")(tmp, pytester)
    return start


CASES += [Bad("command-line option", f"binary file given to {option}", _binary_option(option))
          for option in ("--platform", "--model", "--ncap-requirements", "--ncap-baseline")]


def _two_cards_one_name(tmp: Path, pytester: pytest.Pytester) -> Any:
    other = tmp / "other"
    other.mkdir()
    twin = write_card(other, tiny_classifier(other / "tiny.onnx", seed=3).name)  # another model, the same name
    return _start("--model", f"{{card}},{twin}")(tmp, pytester)


CASES.append(Bad("command-line option", "two different cards with the same name", _two_cards_one_name))

# --- requirement files --------------------------------------------------------------------------------------------


def _requirements(document: Any, raw: str | None = None) -> Callable[[Path, pytest.Pytester], Any]:
    def load(tmp: Path, _: pytest.Pytester) -> Any:
        path = tmp / "limits.yaml"
        path.write_text(raw if raw is not None else yaml.safe_dump(document))
        return load_requirements(path)
    return load


REQUIREMENTS = [
    ("NaN latency", {"latency_ms": float("nan")}), ("infinite latency", {"latency_ms": float("inf")}),
    ("negative latency", {"latency_ms": -1}), ("zero latency", {"latency_ms": 0}),
    ("boolean latency", {"latency_ms": True}), ("text latency", {"latency_ms": "fast"}),
    ("list latency", {"latency_ms": [50]}), ("NaN memory", {"memory_mb": float("nan")}),
    ("negative power", {"power_w": -5}), ("infinite power", {"power_w": float("inf")}),
    ("negative accuracy drop", {"accuracy_drop_pt": {"int8": -1}}),
    ("NaN accuracy drop", {"accuracy_drop_pt": {"int8": float("nan")}}),
    ("infinite accuracy drop", {"accuracy_drop_pt": {"int8": float("inf")}}),
    ("drop for an unknown precision", {"accuracy_drop_pt": {"int9": 1}}),
    ("drops not a mapping", {"accuracy_drop_pt": [1, 2]}),
    ("unknown key", {"latency": 50}),
    ("top level a list", [50, 5]),
    ("top level a number", 50),
]
CASES += [Bad("requirements file", what, _requirements(document)) for what, document in REQUIREMENTS]
CASES += [Bad("requirements file", "not YAML", _requirements(None, "latency_ms: [50\n")),
          Bad("requirements file", "tab-indented YAML", _requirements(None, "latency_ms:\n\t50\n")),
          Bad("requirements file", "binary", lambda tmp, _: load_requirements(_file("l.yaml", BINARY)(tmp))),
          Bad("requirements file", "a folder", lambda tmp, _: load_requirements(tmp))]

# --- model cards --------------------------------------------------------------------------------------------------


def _card(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path, pytest.Pytester], Any]:
    def load(tmp: Path, _: pytest.Pytester) -> Any:
        card = yaml.safe_load(write_card(tmp, tiny_classifier(tmp / "tiny.onnx").name).read_text())
        change(card)
        path = tmp / "card.yaml"
        path.write_text(yaml.safe_dump(card))
        return load_card(path)
    return load


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(card: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        node = card
        for parent in parents:
            node = node[parent]
        node[key] = value
    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda card: card.pop(key)


CARDS = [
    ("no onnx", _drop("onnx")), ("onnx file missing", _set("onnx", "missing.onnx")),
    ("onnx path with a NUL byte", _set("onnx", "a\x00b.onnx")), ("empty name", _set("name", "")),
    ("no classes", _set("classes", [])), ("duplicate classes", _set("classes", ["a", "a", "b", "c", "d"])),
    ("zero input size", _set("input.size", [0, 16])), ("one-number input size", _set("input.size", [16])),
    ("negative input size", _set("input.size", [-16, 16])), ("two channels", _set("input.channels", 2)),
    ("zero scale", _set("input.scale", 0)), ("NaN scale", _set("input.scale", float("nan"))),
    ("boolean scale", _set("input.scale", True)), ("infinite scale", _set("input.scale", float("inf"))),
    ("NaN mean", _set("input.mean", [float("nan")] * 3)), ("zero std", _set("input.std", [0.0, 0.5, 0.5])),
    ("NaN std", _set("input.std", [float("nan")] * 3)), ("negative std", _set("input.std", [-0.5] * 3)),
    ("mean of the wrong length", _set("input.mean", [0.5, 0.5])), ("unknown layout", _set("input.layout", "NCWHX")),
    ("no input", _drop("input")), ("unknown output kind", _set("output.kind", "masks")),
    ("unknown field", _set("weights", "w.pt")), ("classes a string", _set("classes", "abc")),
]
CASES += [Bad("model card", what, _card(change)) for what, change in CARDS]
CASES += [Bad("model card", "binary", lambda tmp, _: load_card(_file("c.yaml", BINARY)(tmp))),
          Bad("model card", "not a mapping", lambda tmp, _: load_card(_file("c.yaml", "- a\n- b\n")(tmp))),
          Bad("model card", "empty file", lambda tmp, _: load_card(_file("c.yaml", "")(tmp)))]

# --- ONNX files: what a cell meets when it opens and evaluates the model ----------------------------------------


def _evaluate(onnx_file: Callable[[Path], Path], card_extra: str = "") -> Callable[[Path, pytest.Pytester], Any]:
    def run(tmp: Path, _: pytest.Pytester) -> Any:
        model = onnx_file(tmp)
        card = load_card(write_card(tmp, model.name, extra=card_extra))
        split = folder_dataset(write_image_folder(tmp / "images", per_class=4)).evaluation
        with open_runner(card.onnx, RunnerSpec(input_name=card.input.name, output_name=card.output.name)) as runner:
            return accuracy.top1(runner, card, split)
    return run


def _graph(output_op: str, size: int = 16, classes: int = 5, constant: float | None = None) -> Callable[[Path], Path]:
    """A classifier whose scores pass through `output_op` (with `constant` as its second input) at the end."""
    def write(tmp: Path) -> Path:
        base = onnx.load(str(tiny_classifier(tmp / "base.onnx", size=size, classes=classes)))
        graph = base.graph
        graph.node[-1].output[0] = "raw"
        inputs = ["raw"]
        if constant is not None:
            graph.initializer.append(helper.make_tensor("c", TensorProto.FLOAT, [], [constant]))
            inputs.append("c")
        graph.node.append(helper.make_node(output_op, inputs, ["logits"]))
        path = tmp / "model.onnx"
        onnx.save(base, str(path))
        return path
    return write


ONNX = [
    ("not ONNX at all", _file("model.onnx", b"this is not a protobuf")),
    ("empty file", _file("model.onnx", b"")),
    ("binary noise", _file("model.onnx", BINARY)),
    ("all scores infinite", _graph("Div", constant=0.0)),
    ("all scores NaN", _graph("Mul", constant=float("nan"))),
    ("scores for the wrong number of classes", lambda tmp: tiny_classifier(tmp / "model.onnx", classes=3)),
    ("input of another size than the card's", lambda tmp: tiny_classifier(tmp / "model.onnx", size=24)),
]
CASES += [Bad("ONNX file", what, _evaluate(model)) for what, model in ONNX]
CASES += [Bad("ONNX file", "truncated download", _evaluate(
    lambda tmp: _file("model.onnx", tiny_classifier(tmp / "full.onnx").read_bytes()[:300])(tmp))),
          Bad("ONNX file", "output name that the model lacks", _evaluate(
              lambda tmp: tiny_classifier(tmp / "model.onnx"), "  name: probabilities\n")),
          Bad("ONNX file", "two outputs and none named", _evaluate(
              lambda tmp: tiny_classifier(tmp / "model.onnx", outputs=2)))]

# --- baselines: loaded, then used by the gate on one cell --------------------------------------------------------

GOOD_CELL = {"samples_ms": [1.0 + 0.01 * i for i in range(100)], "peak_mb": 50.0, "accuracy": 0.9,
             "model_size_bytes": 4000}


def _baseline(document: Any, raw: bytes | None = None) -> Callable[[Path, pytest.Pytester], Any]:
    def gate(tmp: Path, _: pytest.Pytester) -> Any:
        path = tmp / "baseline.json"
        path.write_bytes(raw if raw is not None else json.dumps(document).encode())
        baseline = load_baseline(path)
        stored = baseline.cells.get("tiny-fp32-host")
        look = SecondLook(lambda: ([], GOOD_CELL["samples_ms"]), lambda: (50.0, 50.0))
        return regression_verdict("tiny-fp32-host", stored, GOOD_CELL, Thresholds(), look)
    return gate


def _with_cell(**changes: Any) -> dict[str, Any]:
    return {"created": "2026-01-01T00:00:00+00:00", "fingerprint": {}, "cells": {"tiny-fp32-host": GOOD_CELL | changes}}


BASELINES = [
    ("0 % top-1", _with_cell(accuracy=0.0)), ("top-1 above 100 %", _with_cell(accuracy=1.5)),
    ("0 MB peak", _with_cell(peak_mb=0)), ("negative peak", _with_cell(peak_mb=-5)),
    ("empty samples", _with_cell(samples_ms=[])), ("text samples", _with_cell(samples_ms=["a", "b"])),
    ("negative samples", _with_cell(samples_ms=[-1.0] * 50)), ("samples a number", _with_cell(samples_ms=3.0)),
    ("peak a string", _with_cell(peak_mb="big")), ("cells a list", {"created": "x", "fingerprint": {}, "cells": []}),
    ("cell a number", {"created": "x", "fingerprint": {}, "cells": {"tiny-fp32-host": 3}}),
    ("no cells", {"created": "x", "fingerprint": {}}), ("a JSON list", [1, 2, 3]),
]
CASES += [Bad("baseline", what, _baseline(document)) for what, document in BASELINES]
CASES += [Bad("baseline", "NaN in the samples", _baseline(None, json.dumps(
    _with_cell(samples_ms=[float("nan")] * 50)).encode())),
          Bad("baseline", "infinite peak", _baseline(None, json.dumps(_with_cell(peak_mb=float("inf"))).encode())),
          Bad("baseline", "not JSON", _baseline(None, b"{created: yesterday")),
          Bad("baseline", "binary", _baseline(None, BINARY)),
          Bad("baseline", "empty file", _baseline(None, b""))]

# --- platform profiles --------------------------------------------------------------------------------------------

TARGET = {"name": "chip", "description": "a chip", "kind": "target", "precisions": ["int8"],
          "runtime": {"name": "onnxruntime"},
          "peak_tops": {"int8": {"value": 26, "source": "datasheet"}}}


def _platform(change: dict[str, Any] | None = None, raw: bytes | None = None) -> Callable[[Path, pytest.Pytester], Any]:
    def load(tmp: Path, _: pytest.Pytester) -> Any:
        path = tmp / "chip.yaml"
        path.write_bytes(raw if raw is not None else yaml.safe_dump(TARGET | (change or {})).encode())
        return parse_platform(path)
    return load


PLATFORMS = [
    ("infinite TOPS", {"peak_tops": {"int8": {"value": float("inf"), "source": "x"}}}),
    ("NaN TOPS", {"peak_tops": {"int8": {"value": float("nan"), "source": "x"}}}),
    ("zero TOPS", {"peak_tops": {"int8": {"value": 0, "source": "x"}}}),
    ("negative TOPS", {"peak_tops": {"int8": {"value": -1, "source": "x"}}}),
    ("TOPS as text", {"peak_tops": {"int8": {"value": "fast", "source": "x"}}}),
    ("TOPS without a source", {"peak_tops": {"int8": {"value": 26}}}),
    ("TOPS with an empty source", {"peak_tops": {"int8": {"value": 26, "source": ""}}}),
    ("TOPS for an unknown precision", {"peak_tops": {"int9": {"value": 26, "source": "x"}}}),
    ("unknown kind", {"kind": "phone"}), ("no precisions", {"precisions": []}),
    ("unknown precision", {"precisions": ["int9"]}), ("no runtime", {"runtime": None}),
    ("NaN power envelope", {"power": {"envelope_w": {"value": float("nan"), "source": "x"}}}),
    ("negative power envelope", {"power": {"envelope_w": {"value": -3, "source": "x"}}}),
    ("infinite bandwidth", {"memory_bandwidth_gbs": {"value": float("inf"), "source": "x"}}),
    ("device of another scheme", {"device": "telnet://board"}),
    ("unknown field", {"npu_count": 2}),
    ("baseline with 0 ms after", {"baselines": [{"model": "m", "before_ms": 45, "after_ms": 0, "source": "x"}]}),
    ("baseline with NaN before", {"baselines": [{"model": "m", "before_ms": float("nan"), "after_ms": 12,
                                                 "source": "x"}]}),
    ("default precision it does not support", {"default_precisions": ["fp16"]}),
]
CASES += [Bad("platform profile", what, _platform(change)) for what, change in PLATFORMS]
CASES += [Bad("platform profile", "binary", _platform(raw=BINARY)),
          Bad("platform profile", "not a mapping", _platform(raw=b"- chip\n")),
          Bad("platform profile", "not YAML", _platform(raw=b"name: [chip\n"))]

# --- datasets -----------------------------------------------------------------------------------------------------


def _dataset(build: Callable[[Path], None]) -> Callable[[Path, pytest.Pytester], Any]:
    def load(tmp: Path, _: pytest.Pytester) -> Any:
        root = tmp / "data"
        root.mkdir()
        build(root)
        return folder_dataset(root)
    return load


def _good_then(change: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        root.rmdir()
        write_image_folder(root, per_class=10)
        change(root)
    return build


def _save(relative: str, image: Image.Image) -> Callable[[Path], None]:
    return lambda root: image.save(root / relative)


def _write(relative: str, content: bytes) -> Callable[[Path], None]:
    return lambda root: (root / relative).write_bytes(content)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


DATASETS = [
    ("empty folder", lambda root: None),
    ("class folders with no images", lambda root: [(root / c).mkdir() for c in ("a", "b")]),
    ("images but no class folders", lambda root: Image.new("RGB", (8, 8)).save(root / "x.png")),
    ("a corrupt PNG", _good_then(_write("attentive/bad.png", b"\x89PNG\r\n\x1a\n garbage"))),
    ("a zero-byte JPEG", _good_then(_write("attentive/empty.jpg", b""))),
    ("a 16-bit PNG", _good_then(_save("attentive/deep.png", Image.fromarray(
        np.full((16, 16), 40000, dtype=np.uint16))))),
    ("a JPEG cut off half-way", _good_then(lambda root: _write("attentive/cut.jpg", _jpeg()[:400])(root))),
    ("a text file named .png", _good_then(_write("attentive/notes.png", b"hello"))),
    ("a single class", lambda root: write_image_folder(root / "only", per_class=10) and None),
]
CASES += [Bad("dataset", what, _dataset(build)) for what, build in DATASETS]

# --- ncap merge: its exit 2 and one line are the contract -----------------------------------------------------------


def _merge(make_shard: Callable[[Path], Path], *extra: str) -> Callable[[Path, pytest.Pytester], Any]:
    def merge(tmp: Path, _: pytest.Pytester) -> Any:
        shard = make_shard(tmp)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = merge_main(["merge", str(shard), "--out", str(tmp / "merged"),
                                     *[e.replace("{tmp}", str(tmp)) for e in extra]])
            except SystemExit as exc:  # argparse's own usage errors
                status = exc.code
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        if status == 2:
            raise NcapError(lines[-1] if lines else "exit 2 without a message")
        return status
    return merge


RECORD = {"schema_version": 2, "run_id": "r1", "timestamp": "2026-01-01T00:00:00+00:00", "cell": "m-fp32-host",
          "model": "m", "precision": "fp32", "platform": "host", "recipe": "fp32", "metric": "latency",
          "verdict": "pass", "message": "ok"}


def _shard(results: bytes | None = None, summary: bytes | None = None) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        shard = tmp / "shard"
        shard.mkdir()
        if results is not None:
            (shard / "results.jsonl").write_bytes(results)
        if summary is not None:
            (shard / "summary.json").write_bytes(summary)
        return shard
    return write


def _lines(*records: dict[str, Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


MERGES = [
    ("a folder that does not exist", lambda tmp: tmp / "missing"),
    ("an empty folder", _shard()),
    ("binary results", _shard(BINARY)),
    ("results that are not JSON", _shard(b"{not json\n")),
    ("a record without run_id", _shard(_lines({k: v for k, v in RECORD.items() if k != "run_id"}))),
    ("a record with an unknown metric", _shard(_lines(RECORD | {"metric": "vibes"}))),
    ("a record with an unknown verdict", _shard(_lines(RECORD | {"verdict": "maybe"}))),
    ("a JSON list as a line", _shard(b"[1, 2]\n")),
    ("a NaN literal in a record", _shard(json.dumps(RECORD | {"p99_ms": float("nan")}).encode() + b"\n")),
    ("conflicting duplicate records", _shard(_lines(RECORD, RECORD | {"verdict": "fail", "run_id": "r2"}))),
    ("a corrupt summary.json", _shard(_lines(RECORD), b"{oops")),
    ("a binary summary.json", _shard(_lines(RECORD), BINARY)),
    ("a summary.json that is a list", _shard(_lines(RECORD), b"[]")),
]
CASES += [Bad("ncap merge", what, _merge(shard)) for what, shard in MERGES]
CASES += [Bad("ncap merge", "a baseline that does not exist", _merge(_shard(_lines(RECORD)), "--baseline",
                                                                       "{tmp}/missing.json")),
          Bad("ncap merge", "a binary baseline", _merge(
              lambda tmp: _file("b.json", BINARY)(tmp) and _shard(_lines(RECORD))(tmp), "--baseline", "{tmp}/b.json"))]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}: {c.what}" for c in CASES])
def test_bad_input_is_one_clear_line(case: Bad, tmp_path: Path, pytester: pytest.Pytester,
                                     record_property: Callable[[str, Any], None]) -> None:
    record_property("category", case.category)
    try:
        case.apply(tmp_path, pytester)
    except NcapError as exc:
        message = str(exc).strip()
        assert message and "\n" not in message, f"not one line: {message!r}"
        record_property("message", message)
        return
    except pytest.UsageError as exc:  # an option's type, refused by pytest's own parser: its usage and one error line
        errors = [line for line in str(exc).splitlines() if "error: argument" in line]
        assert len(errors) == 1, str(exc)
        record_property("message", errors[0])
        return
    pytest.fail(f"accepted silently: {case.category}, {case.what}", pytrace=False)


def test_the_catalogue_covers_every_category_with_150_inputs_or_more() -> None:
    categories = {case.category for case in CASES}
    assert len(CASES) >= 150 and categories == {
        "command-line option", "requirements file", "model card", "ONNX file", "baseline", "platform profile",
        "dataset", "ncap merge"}
