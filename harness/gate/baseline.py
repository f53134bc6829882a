"""Baselines: a run's figures per cell, with the fingerprint of the machine and runtime that measured them."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from harness.errors import NcapError
from harness.platform import describe_validation_error

GATED_FIGURES = ("samples_ms", "peak_mb", "model_size_bytes", "accuracy")  # what a later run is compared on
SUMMARY_SIZE = 1000


def sample_summary(samples_ms: np.ndarray) -> list[float]:
    """The latency samples as stored, rounded to 1 µs: all of them up to 1000, else 1000 evenly spaced
    order statistics (the empirical quantile function), which keeps the store small for fast models."""
    ordered = np.sort(np.asarray(samples_ms, dtype=np.float64))
    if ordered.size > SUMMARY_SIZE:
        ordered = np.quantile(ordered, np.linspace(0, 1, SUMMARY_SIZE))
    return np.round(ordered, 3).tolist()


def machine_fingerprint(threads: int) -> dict[str, Any]:
    """What makes latencies of two runs comparable: the CPU, the thread count and the runtime versions."""
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "threads": threads,
            "platform": platform.platform(), "onnxruntime": package_version("onnxruntime"),
            "torch": package_version("torch")}


def fingerprint_differences(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return [f"{key}: {baseline.get(key)} in the baseline, {current.get(key)} now"
            for key in sorted(set(baseline) | set(current)) if baseline.get(key) != current.get(key)]


def gated_figures(figure_sets: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The figures the gate compares, gathered from one cell's records (latency, memory, accuracy)."""
    return {key: figures[key] for figures in figure_sets for key in GATED_FIGURES if figures.get(key) is not None}


def cell_figures(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_cell.setdefault(record["cell"], []).append(record)
    # the artifact's sha256 lets a later run on this machine find the baseline's own artifact and time it again
    return {cell: figures | {"artifact_sha256": group[0].get("artifact_sha256")}
            for cell, group in by_cell.items() if (figures := gated_figures(group))}


@dataclass(frozen=True)
class Baseline:
    path: Path
    created: str
    fingerprint: dict[str, Any]
    cells: dict[str, dict[str, Any]]
    sha256: str  # of the file: which baseline a gate verdict was reached against


def save_baseline(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write the figures of `records` (one run's store records) and their machine fingerprint as JSON."""
    fingerprint = next((r["machine"] for r in records if r.get("machine")), {})
    document = {"created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "fingerprint": fingerprint,
                "cells": cell_figures(records)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=True))
    return path


Measured = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _CellFigures(BaseModel):
    """A cell's stored figures: each one a gate divides by or tests against, so finite and above zero."""

    model_config = ConfigDict(extra="allow")
    samples_ms: list[Measured] | None = Field(None, min_length=1)
    peak_mb: Measured | None = None
    model_size_bytes: PositiveInt | None = None
    accuracy: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None


class _BaselineFile(BaseModel):
    created: str
    fingerprint: dict[str, Any]
    cells: dict[str, _CellFigures]


def load_baseline(path: Path) -> Baseline:
    try:
        content = path.read_bytes()
        document = _BaselineFile.model_validate(json.loads(content))
    except OSError as exc:
        raise NcapError(f"cannot read baseline {path}: {exc.strerror}; check --ncap-baseline") from exc
    except ValidationError as exc:
        raise NcapError(f"{path} is not a usable dms-ncap baseline: {describe_validation_error(exc)}; write a new "
                        "one with --ncap-save-baseline") from exc
    except ValueError as exc:  # JSON errors, and bytes that are not UTF-8 text
        raise NcapError(f"{path} is not a dms-ncap baseline ({exc.__class__.__name__}); "
                        "write one with --ncap-save-baseline") from exc
    cells = {cell: figures.model_dump(exclude_unset=True) for cell, figures in document.cells.items()}
    return Baseline(path, document.created, document.fingerprint, cells, hashlib.sha256(content).hexdigest())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
