"""Render records of the results store into report.html, report.md and summary.json (Jinja2), then
MANIFEST.sha256 over every file in the report folder that the run wrote.

The input is plain records plus each run's provenance, so the pytest plugin and `ncap merge` (records
from many shards) render the same report.
"""
from __future__ import annotations

import dataclasses
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from harness.catalog import REQUIREMENTS, asserted_figure, requirement_id
from harness.errors import NcapError
from harness.gate.compare import GateNotes
from harness.platform import Platform, load_platform
from harness.report import article, outcome, plots, scenarios
from harness.report.manifest import write_manifest
from harness.verdict import format_figure

REPORTS = ("report.html", "report.md")
STORE = "results.jsonl"


def render_report(records: list[dict[str, Any]], out_dir: Path, provenance: list[dict[str, Any]],
                  gate_notes: GateNotes | None = None) -> list[Path]:
    """Write the report files into `out_dir` and return their paths, the manifest last."""
    context = _context(records, provenance, gate_notes)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("harness.templates"))),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["num"] = lambda value: "—" if _missing(value) else format_figure(value)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in REPORTS:
        target = out_dir / name
        target.write_text(environment.get_template(f"{name}.j2").render(**context))
        written.append(target)
    summary = out_dir / "summary.json"
    summary.write_text(json.dumps({key: context[key] for key in (
        "compliance", "gate", "gate_notes", "counts", "matrix", "artifacts", "datasets", "started", "finished",
        "provenance")}, indent=1, sort_keys=True, default=str))
    written.append(summary)
    names = [path.name for path in written] + ([STORE] if (out_dir / STORE).is_file() else [])
    return [*written, write_manifest(out_dir, names)]


def _context(records: list[dict[str, Any]], provenance: list[dict[str, Any]],
             gate_notes: GateNotes | None) -> dict[str, Any]:
    # each record carries the figure its test asserts (a measured p99 bound or a projection alike)
    records = [record | {"figure": asserted_figure(record["metric"], record)} for record in records]
    frame = pd.DataFrame(records)
    cells = _cell_rows(frame)
    return {
        "compliance": outcome.compliance(records),
        "gate": outcome.gate(records),
        "gate_notes": dataclasses.asdict(gate_notes) if gate_notes else None,
        "platforms": _platforms(frame),
        "started": frame["timestamp"].min(),
        "finished": frame["timestamp"].max(),
        "datasets": _unique_rows(frame, ["dataset", "dataset_sha256"]),
        "artifacts": _unique_rows(frame, ["cell", "artifact_sha256"]),
        "inputs": _inputs(frame),
        "provenance": provenance,
        "strict": any(p.get("strict") for p in provenance),
        "matrix": [_matrix_row(r) for r in sorted(records, key=lambda r: (r["cell"], r["metric"]))],
        "cells": cells,
        "target_on_host": _target_on_host(cells),
        "layer_drift": _layer_drift(cells),
        "histograms": _histograms(records),
        "scatters": _scatters(frame),
        "article_precisions": article.precision_rows(frame),
        "article_before_after": article.before_after_rows(frame),
        "article_budget": article.budget_rows(frame),
        "article_optimisations": article.optimisation_rows(frame),
        "article_source": article.SOURCE,
        "scenario_heading": scenarios.HEADING,
        "scenario_tables": scenarios.clause_tables(records),
        "scenario_coverage": scenarios.coverage(records),
        "records": frame.sort_values(["cell", "metric"]).to_dict("records"),
        "counts": frame["verdict"].value_counts().to_dict(),
    }


def _platforms(frame: pd.DataFrame) -> list[Platform | dict[str, str]]:
    def profile(name: str) -> Platform | dict[str, str]:
        try:
            return load_platform(name)
        except NcapError:  # a shard measured on a profile this installation does not have
            return {"name": name, "description": "profile not installed here"}
    return [profile(name) for name in sorted(frame["platform"].unique())]


def _matrix_row(record: dict[str, Any]) -> dict[str, Any]:
    """One line of the requirement traceability matrix."""
    metric = record["metric"]
    state = f" {record['state']}" if record.get("state") else ""  # a scenario record names its protocol state
    return {"id": requirement_id(metric, record["precision"]) + state, "wording": REQUIREMENTS[metric].wording,
            "limit": record.get("limit"), "unit": record.get("unit") or REQUIREMENTS[metric].unit,
            "limit_source": record.get("limit_source"),
            "test_id": record.get("test_id"), "cell": record["cell"], "figure": asserted_figure(metric, record),
            "grade": record.get("grade"), "method": record.get("method"), "verdict": record["verdict"],
            "message": record.get("message")}


def _unique_rows(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    present = [c for c in columns if c in frame]
    return frame[present].dropna().drop_duplicates().sort_values(present).to_dict("records")


def _inputs(frame: pd.DataFrame) -> str:
    if "settings" not in frame:
        return "not measured"
    return ", ".join(sorted({s["input"] for s in frame["settings"].dropna()})) or "not measured"


def _cell_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per cell, each metric's record folded in under its name."""
    rows = []
    for cell, group in frame.groupby("cell", sort=True):
        first = group.iloc[0]
        row = {"cell": cell, "model": first["model"], "precision": first["precision"], "recipe": first["recipe"],
               "platform": first["platform"]}
        for _, record in group.iterrows():
            row[record["metric"]] = {k: v for k, v in record.items() if not _missing(v)}
        rows.append(row)
    return rows


def _target_on_host(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell of a projected target, the target's own artifact measured on the host (harness/sources/litert.py):
    its size, host latency and memory, its top-1 beside ONNX Runtime's. Recorded, never the chip's figures."""
    rows = []
    for cell in cells:
        latency, memory, accuracy = (cell.get(metric) or {} for metric in ("latency", "memory", "accuracy"))
        on_host = latency.get("host_litert") or {}
        if not on_host and "onnxruntime_accuracy" not in accuracy:
            continue
        artifact = on_host.get("artifact") or accuracy.get("litert_artifact") or {}
        rows.append({"cell": cell["cell"], "size_bytes": artifact.get("size_bytes"), "p50_ms": on_host.get("p50_ms"),
                     "peak_mb": (memory.get("host_litert") or {}).get("peak_mb"), "top1": accuracy.get("accuracy"),
                     "drop_pt": accuracy.get("drop_pt"), "onnxruntime_top1": accuracy.get("onnxruntime_accuracy"),
                     "onnxruntime_drop_pt": accuracy.get("onnxruntime_drop_pt")})
    return rows


def _layer_drift(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per integer cell, the layers that drift most from FP32 (harness/measure/drift.py), beside its drop."""
    rows = []
    for cell in cells:
        accuracy = cell.get("accuracy") or {}
        drift = accuracy.get("layer_drift") or {}
        if drift.get("worst"):
            rows.append({"cell": cell["cell"], "drop_pt": accuracy.get("drop_pt"), "worst": drift["worst"],
                         "method": drift["method"]})
    return rows


def _histograms(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"cell": r["cell"], **plots.latency_histogram(r["samples_ms"])}
            for r in sorted(records, key=lambda r: r["cell"]) if r["metric"] == "latency" and r.get("samples_ms")]


def _scatters(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model: top-1 against p50 latency, one point per precision and platform."""
    if "p50_ms" not in frame or "accuracy" not in frame:
        return []
    p50 = frame[frame["metric"] == "latency"].set_index("cell")["p50_ms"].dropna()
    top1 = frame[frame["metric"] == "accuracy"].set_index("cell")["accuracy"].dropna()
    both = frame.drop_duplicates("cell").set_index("cell").join(p50.rename("x"), how="inner").join(
        top1.rename("y"), how="inner")
    return [{"model": model, **plots.accuracy_vs_latency(
                [{"label": f"{row['recipe']} {row['platform']}", "p50_ms": row["x"], "accuracy": row["y"]}
                 for _, row in group.iterrows()])}
            for model, group in both.groupby("model", sort=True)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))
