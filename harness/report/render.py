"""Render the run's records from the results store into report.html and report.md (Jinja2)."""
from __future__ import annotations

import platform as host_platform
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import onnxruntime
import pandas as pd

from harness.verdict import format_figure

if TYPE_CHECKING:
    from harness.session import ComplianceRun

# The source article's speed-up claims (量化类型 table), as (low, high) factors over FP32.
ARTICLE_SPEEDUP = {"fp16": (1.5, 1.5), "int8": (2.0, 4.0), "int4": (4.0, 8.0)}
ARTICLE_SPEEDUP_SOURCE = "source article, 量化类型 table (速度提升 column)"


def render_report(run: ComplianceRun) -> list[Path]:
    records = pd.DataFrame(run.store.records(run.run_id))
    context = _context(run, records)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("harness.templates"))),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["num"] = lambda value: "—" if _missing(value) else format_figure(value)
    written = []
    for template in ("report.html.j2", "report.md.j2"):
        target = run.options.report_dir / template.removesuffix(".j2")
        target.write_text(environment.get_template(template).render(**context))
        written.append(target)
    return written


def _context(run: ComplianceRun, records: pd.DataFrame) -> dict[str, Any]:
    options = run.options
    return {
        "run_id": run.run_id,
        "platform": options.platform,
        "started": records["timestamp"].min(),
        "finished": records["timestamp"].max(),
        "dataset": records["dataset"].dropna().iloc[0] if records["dataset"].notna().any() else "not loaded",
        "inputs": _inputs(records),
        "machine": f"{host_platform.machine()} {host_platform.processor() or ''}, {options.threads} runtime threads",
        "runtime": f"ONNX Runtime {onnxruntime.__version__}",
        "requirements": _requirements(run),
        "cells": _cell_rows(records),
        "speedups": _speedups(records),
        "speedup_source": ARTICLE_SPEEDUP_SOURCE,
        "records": records.sort_values(["cell", "metric"]).to_dict("records"),
        "counts": records["verdict"].value_counts().to_dict(),
    }


def _requirements(run: ComplianceRun) -> list[dict[str, Any]]:
    limits = run.options.requirements
    rows = [("latency", "p99 latency, upper 95 % bound", limits.latency_ms, "ms"),
            ("power", "average power over the latency window", limits.power_w, "W"),
            ("memory", "peak RSS of the inference process", limits.memory_mb, "MB")]
    rows += [("accuracy", f"top-1 drop vs FP32 at {precision}", limit, "pt")
             for precision, limit in limits.accuracy_drop_pt.items()]
    return [{"metric": metric, "wording": wording, "limit": f"{limit.wording()} {unit}", "source": limit.source}
            for metric, wording, limit, unit in rows]


def _inputs(records: pd.DataFrame) -> str:
    if "settings" not in records:
        return "not measured"
    inputs = {s["input"] for s in records["settings"].dropna()}
    return ", ".join(sorted(inputs)) or "not measured"


def _cell_rows(records: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per cell, each metric's record folded in under its name."""
    rows = []
    for cell, group in records.groupby("cell", sort=True):
        first = group.iloc[0]
        row = {"cell": cell, "model": first["model"], "precision": first["precision"], "platform": first["platform"]}
        for _, record in group.iterrows():
            row[record["metric"]] = {k: v for k, v in record.items() if not _missing(v)}
        rows.append(row)
    return rows


def _speedups(records: pd.DataFrame) -> list[dict[str, Any]]:
    """Measured p50 speed-up of each precision over FP32, beside the article's claim."""
    if "p50_ms" not in records:
        return []
    latency = records[(records["metric"] == "latency") & records["p50_ms"].notna()]
    p50 = latency.pivot_table(index=["platform", "model"], columns="precision", values="p50_ms")
    rows = []
    for (platform, model), row in p50.iterrows():
        for precision, (low, high) in ARTICLE_SPEEDUP.items():
            if "fp32" in row and precision in row and not pd.isna(row[precision]) and not pd.isna(row["fp32"]):
                measured = row["fp32"] / row[precision]
                claim = f"{low:g}x" if low == high else f"{low:g}-{high:g}x"
                rows.append({"platform": platform, "model": model, "precision": precision,
                             "fp32_p50_ms": row["fp32"], "p50_ms": row[precision], "measured": measured,
                             "claim": claim, "meets_claim": measured >= low})
    return rows


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))

