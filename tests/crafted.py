"""Crafted results-store records and report folders, for report and merge tests that need no measuring."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.cell import RunOptions
from harness.gate.baseline import machine_fingerprint, sample_summary
from harness.gate.compare import Thresholds
from harness.measure.stats import LatencyStats
from harness.platform import load_platform
from harness.report.provenance import run_provenance
from harness.report.render import render_report
from harness.requirements import Requirements
from harness.results.record import StoredRecord
from harness.results.store import ResultsStore


def crafted_records(model: str = "dmsnet", platform: str = "host", run_id: str = "run1",
                    slower: float = 1.0) -> list[dict[str, Any]]:
    """Two cells (fp32, int8) with a latency, memory, power and accuracy record each, like a host run writes."""
    records = []
    for index, (precision, median_ms, top1) in enumerate((("fp32", 4.0, 0.91), ("int8", 2.0, 0.90))):
        samples = np.random.default_rng(index).lognormal(np.log(median_ms * slower), 0.1, 400)
        common = {"run_id": run_id, "timestamp": f"2026-11-26T10:0{index}:00+00:00",
                  "cell": f"{model}-{precision}-{platform}", "model": model, "precision": precision,
                  "recipe": precision, "platform": platform, "grade": "host-measured",
                  "artifact_sha256": f"{index}" * 64, "dataset": "crafted", "dataset_sha256": "d" * 64,
                  "test_id": f"suites/test_ncap.py::test_{{metric}}[{model}-{precision}-{platform}]"}
        stats = LatencyStats.from_samples(samples).__dict__
        figures = {
            "latency": {**stats, "samples_ms": sample_summary(samples), "machine": machine_fingerprint(2),
                        "limit": 50.0, "verdict": "pass", "message": "within the limit"},
            "memory": {"peak_mb": 80.0, "limit": 1024.0, "verdict": "pass", "message": "within the limit"},
            "power": {"watts": 4.0, "limit": 5.0, "grade": "estimated", "verdict": "skip", "message": "an estimate"},
            "accuracy": {"accuracy": top1, "limit": None if precision == "fp32" else 3.0,
                         "drop_pt": None if precision == "fp32" else 1.0,
                         "verdict": "skip" if precision == "fp32" else "pass", "message": "top-1"},
        }
        for metric, values in figures.items():
            records.append({**common, "metric": metric, "method": f"{metric} method", "limit_source": "the article",
                            **values, "test_id": common["test_id"].format(metric=metric)})
    return records


def write_shard(folder: Path, records: list[dict[str, Any]], gate: Thresholds | None = None) -> Path:
    """A report folder as the plugin leaves it: results.jsonl, the report files and the manifest."""
    store = ResultsStore(folder / "results.jsonl")
    for record in records:
        store.append(StoredRecord.model_validate(record))
    options = RunOptions(platform=load_platform(records[0]["platform"]), models=(), recipes=(),
                         requirements=Requirements(), report_dir=folder, gate=gate or Thresholds())
    render_report(records, folder, [run_provenance(records[0]["run_id"], options)])
    return folder
