"""The report's scenario tables: per Euro NCAP protocol clause, one row per cell (warning times, misses, false
alerts, and the cell's per-frame latency verdict beside them, so an optimisation that breaks a state while the
per-frame budget passes shows), and the test matrix the sequences covered."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.verdict import format_figure

HEADING = ("model", "recipe", "platform", "timing grade", "runs that succeeded", "missed / late",
           "warning median / max", "max as an upper bound", "limit", "false alerts", "frame accuracy",
           "frames dropped", "per-frame latency test", "verdict")


def clause_tables(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table per protocol state (a recording gets its own), in the order the records first name them."""
    latency = {r["cell"]: r["verdict"] for r in records if r["metric"] == "latency"}
    tables: dict[str, dict[str, Any]] = {}
    for r in sorted((r for r in records if r["metric"] == "scenario" and r.get("state")),
                    key=lambda r: (r["model"], r["platform"], r["recipe"])):
        key = r["state"] + (f" (recording {r['recording']})" if r.get("recording") else "")
        table = tables.setdefault(key, {"state": key, "clause": r.get("clause") or "", "rows": []})
        table["rows"].append({"verdict": r["verdict"], "message": r.get("message") or "",
                              "cells": _cells(r, latency.get(r["cell"], "not run"))})
    return list(tables.values())


def _cells(r: dict[str, Any], latency_verdict: str) -> list[str]:
    def s(key: str, unit: str = "", scale: float = 1.0) -> str:
        value = r.get(key)
        if value is None:
            return "—"
        return f"{value}{unit}" if isinstance(value, int) and scale == 1.0 else f"{format_figure(value * scale)}{unit}"
    bound = "—" if r.get("warning_bound_s") is None else (
        f"{format_figure(r['warning_bound_s'])} s on p{r['warning_bound_quantile'] * 100:.0f} at "
        f"{r.get('confidence', 0) * 100:.0f} %")
    unit = " /h" if r.get("unit") == "alerts/h" else " s"
    ran = "—" if r.get("runs") is None else f"{r.get('succeeded')}/{r['runs']}"
    return [r["model"], r["recipe"], r["platform"], r.get("grade") or "—", ran, f"{s('missed')} / {s('late')}",
            f"{s('warning_median_s')} / {s('warning_max_s', ' s')}", bound, s("limit", unit),
            s("false_alerts_per_hour", " /h"), s("frame_accuracy", " %", 100), s("dropped_share", " %", 100),
            latency_verdict, r["verdict"]]


def coverage(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Per matrix dimension, each level and how many sequences (of one cell) had it."""
    levels: dict[str, dict[str, int]] = defaultdict(dict)
    first_cell = next((r["cell"] for r in records if r["metric"] == "scenario" and r.get("coverage")), None)
    for r in records:
        if r["metric"] == "scenario" and r["cell"] == first_cell:
            for dimension, counts in r["coverage"].items():
                for level, count in counts.items():
                    levels[dimension][level] = levels[dimension].get(level, 0) + count
    return [{"dimension": dimension,
             "levels": ", ".join(f"{level}: {count}" for level, count in sorted(counts.items()))}
            for dimension, counts in levels.items()]
