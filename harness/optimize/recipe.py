"""Recipes: an ordered list of passes, applied to an ONNX model into a cached, manifested artifact."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime
import psutil
import torch

from harness import cache
from harness.errors import NcapError
from harness.measure import complexity
from harness.models.card import ModelCard
from harness.optimize import passes
from harness.optimize.int4 import Int4
from harness.optimize.mixed import Mixed
from harness.optimize.passes import Pass, PassContext
from harness.optimize.torch_passes.distill import Distill
from harness.optimize.torch_passes.fuse import Fuse
from harness.optimize.torch_passes.prune import Prune
from harness.optimize.torch_passes.qat import Qat


# name -> factory taking the text after "name:" (None when absent). New passes register here.
def _without_parameter(make: Callable[[], Pass]) -> Callable[[str | None], Pass]:
    """A pass that takes no parameter: `fp32:garbage` is a mistake, not fp32."""
    def parse(arg: str | None) -> Pass:
        if arg:
            raise ValueError(f"this step takes no parameter, got {arg!r}")
        return make()
    return parse


PASSES: dict[str, Callable[[str | None], Pass]] = {
    "fp32": _without_parameter(passes.Fp32),
    "fp16": _without_parameter(passes.Fp16),
    "int8": passes.Int8.parse,
    "int4": Int4.parse,
    "mixed": Mixed.parse,
    "fuse": _without_parameter(Fuse),
    "prune": Prune.parse,
    "distill": lambda arg: Distill(teacher=arg or "resnet18"),
    "qat": _without_parameter(Qat),
}


# The source article's optimisation priorities (总结: P0 quantisation, P1 operator fusion, P2 pruning,
# P3 distillation), each adding its step to the previous ones.
NAMED_RECIPES: dict[str, str] = {
    "p0": "int8",
    "p1": "fuse,int8",
    "p2": "fuse,prune:0.3,int8",
    "p3": "fuse,prune:0.3,distill,int8",
}


def expand_recipe(text: str) -> str:
    """A named recipe (p0..p3) into its steps; anything else unchanged."""
    return NAMED_RECIPES.get(text.strip().lower(), text.strip())


def known_precisions() -> list[str]:
    return [name for name, factory in PASSES.items() if factory(None).precision == name]


def parse_recipe(text: str) -> list[Pass]:
    """`"int8"` or `"int8:Entropy"` (comma-separated steps) into passes; the last sets the precision."""
    steps = [step.strip() for step in text.split(",")]
    if not all(steps):
        raise NcapError(f"recipe {text!r} has an empty step; write steps like 'fp16' or 'int8', comma-separated")
    built = []
    for step in steps:
        name, _, arg = step.partition(":")
        if name not in PASSES:
            raise NcapError(f"recipe step {step!r} names no known pass; known: {', '.join(PASSES)}")
        try:
            built.append(PASSES[name](arg or None))
        except (KeyError, ValueError) as exc:
            raise NcapError(f"recipe step {step!r} has a bad parameter ({exc}); "
                            "forms: int8[:MinMax|Entropy|Percentile][/per-channel|/per-tensor], int4[:BLOCK], "
                            "mixed[:BUDGET_PT]; see the README for the others") from exc
    if built[-1].precision is None:
        raise NcapError(f"recipe {text!r} must end in a precision step (one of {', '.join(known_precisions())})")
    return built


@dataclass(frozen=True)
class Artifact:
    card: ModelCard  # the source card, pointing at the artifact's ONNX file
    precision: str
    manifest: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"]


def check_onnx(path: Path) -> None:
    """Fail with one line when the file is missing or not a valid ONNX model."""
    if not path.is_file():
        raise NcapError(f"ONNX file {path} does not exist; fix the `onnx:` path in the model card")
    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, onnx.onnx_cpp2py_export.checker.ValidationError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise NcapError(f"{path} is not a valid ONNX model ({detail}); re-export or replace the file") from exc
    except Exception as exc:  # protobuf's DecodeError and friends, raised for a truncated file
        raise NcapError(f"{path} is not a valid ONNX model ({type(exc).__name__}: cannot be parsed); "
                        "re-export or replace the file") from exc


def build_artifact(card: ModelCard, recipe: list[Pass], context: PassContext) -> Artifact:
    """Apply each pass in turn; each step is cached by the content of its input and its parameters."""
    check_onnx(card.onnx)
    source, source_sha = card.onnx, cache.file_sha256(card.onnx)
    # how the model is fed and read: calibration and the mixed search preprocess with it
    feeding = card.model_dump(mode="json", include={"input", "output", "classes"})
    steps = []
    for step in recipe:
        key = cache.content_key(source_sha, step.name, step.params(), context.data_fingerprint, feeding,
                                onnx.__version__, onnxruntime.__version__, torch.__version__, _code_sha256(step))
        folder = cache.cache_root() / "artifacts" / key[:32]
        record = verified_build(folder, "model.onnx", _step_builder(step, source, context),
                                f"pass {step.name} on {source.name}")
        steps.append(record)
        source, source_sha = folder / "model.onnx", record["sha256"]
    manifest = {"source": str(card.onnx), "source_sha256": cache.file_sha256(card.onnx),
                "recipe": [s["pass"] for s in steps], "steps": steps, "sha256": source_sha,
                "size_bytes": source.stat().st_size, **_complexity(card.onnx, source)}
    return Artifact(card.model_copy(update={"onnx": source}), recipe[-1].precision, manifest)


def cached_artifact(sha256: str | None) -> Path | None:
    """The cached artifact whose ONNX file has this sha256 (a step's output), None when this machine has none."""
    if sha256 is None:
        return None
    for step in (cache.cache_root() / "artifacts").glob("*/step.json"):
        try:
            recorded = json.loads(step.read_text()).get("sha256")
        except (OSError, ValueError, AttributeError):
            continue  # a damaged step record: not this artifact
        if recorded == sha256 and _verified_step(step.parent, "model.onnx") is not None:  # its file still has that hash
            return step.with_name("model.onnx")
    return None


def verified_build(folder: Path, model_file: str, build: Callable[[Path], dict[str, Any]],
                   what: str) -> dict[str, Any]:
    """The record of the build cached in `folder` (its `model_file` verified by the sha256 the record gives), or
    built now: `build` writes `model_file` into a staging folder and returns its record (the sha256 is added), and
    the folder is renamed into place whole. `what` names the build in an error."""
    record = _verified_step(folder, model_file)
    if record is None:
        _run_step(build, folder, model_file, what)
        record = _verified_step(folder, model_file)
    if record is None:
        raise NcapError(f"the cached artifact in {folder} does not match its own record after a rebuild; "
                        "remove the folder (or $NCAP_CACHE) and run again")
    return record


def _verified_step(folder: Path, model_file: str) -> dict[str, Any] | None:
    """The step's record when its model file still has the sha256 the record gives; otherwise None, and a
    folder whose record or file was damaged (a swapped file, a truncated one) is removed so it is rebuilt."""
    try:
        record = json.loads((folder / "step.json").read_text())
        if cache.file_sha256(folder / model_file) == record["sha256"]:
            return record
    except FileNotFoundError:
        if not folder.exists():
            return None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _complexity(before: Path, after: Path) -> dict[str, int | None]:
    """Parameters and MACs (per image) of the source model and of the artifact, read from their graphs."""
    first, last = complexity.measure(before), complexity.measure(after)
    return {"params_before": first.params, "params_after": last.params,
            "macs_before": first.macs, "macs_after": last.macs}


def _code_sha256(step: Pass) -> str:
    """The pass's own source and the modules it says it builds on (`depends_on`), so editing either reruns it."""
    return cache.source_sha256(sys.modules[type(step).__module__], *getattr(step, "depends_on", ()))


def _step_builder(step: Pass, source: Path, context: PassContext) -> Callable[[Path], dict[str, Any]]:
    def build(target: Path) -> dict[str, Any]:
        did = step.apply(source, target, context)
        return {"pass": step.name, "params": step.params(), "did": did, "input_sha256": cache.file_sha256(source),
                "versions": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                             "torch": torch.__version__}}
    return build


def _run_step(build: Callable[[Path], dict[str, Any]], folder: Path, model_file: str, what: str) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphan_staging(folder.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".step-{os.getpid()}-", dir=folder.parent))
    try:
        record = build(staging / model_file)
        record["sha256"] = cache.file_sha256(staging / model_file)
        (staging / "step.json").write_text(json.dumps(record, indent=2))
        staging.rename(folder)
    except FileExistsError:
        shutil.rmtree(staging)  # a parallel worker built the same step first
    except NcapError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:  # a third-party tool failed on this model: say which step, keep the cause
        shutil.rmtree(staging, ignore_errors=True)
        raise NcapError(f"{what} failed: {type(exc).__name__}: {str(exc).strip()[:200]}") from exc


def _remove_orphan_staging(artifacts: Path) -> None:
    """Staging folders of builds whose process is gone (killed mid-quantisation): never renamed into place."""
    for staging in artifacts.glob(".step-*"):
        owner = staging.name.split("-")[1]
        if not owner.isdigit() or not psutil.pid_exists(int(owner)):
            shutil.rmtree(staging, ignore_errors=True)
