"""The compliance report: headline verdict, traceability, escaping, the manifest, and a real browser."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from PIL import Image
from test_plugin import run_suite, suite  # noqa: F401  (the pytester fixture)

from conftest import HOSTILE_NAME, shard_records
from harness.report import outcome, plots


@pytest.fixture
def report(measured_shard) -> Path:
    return measured_shard("report")


def test_a_hostile_dataset_name_renders_inert(report):
    html = (report / "report.html").read_text()
    assert HOSTILE_NAME not in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_summary_has_the_headline_and_a_traceable_matrix(report):
    summary = json.loads((report / "summary.json").read_text())
    assert summary["compliance"]["verdict"] == "provisional"  # power is only an estimate
    assert "power (skip, estimated)" in summary["compliance"]["reason"]
    latency = next(r for r in summary["matrix"] if r["id"] == "NCAP-LAT-01")
    assert "test_ncap.py::test_latency[tiny-" in latency["test_id"]
    recorded = next(r for r in shard_records(report) if r["metric"] == "latency" and r["cell"] == latency["cell"])
    assert latency["figure"] == recorded["p99_ucb_ms"] and "source article" in latency["limit_source"]
    assert {r["id"] for r in summary["matrix"]} >= {"NCAP-MEM-01", "NCAP-PWR-01", "NCAP-ACC-INT8"}
    provenance = summary["provenance"][0]
    assert provenance["platform_profile"]["sha256"] and provenance["packages"]["onnxruntime"]
    assert provenance["seeds"]["synthetic_dataset"] and provenance["machine"]["cpu"]
    html = (report / "report.html").read_text()
    for section in ('id="traceability-matrix"', 'id="article-precisions"', 'id="article-before-after"',
                    'id="article-budget"', 'id="provenance"', "<svg", "not on the target chip"):
        assert section in html


@pytest.mark.parametrize("change, verdict", [
    ({}, "compliant"),
    ({"verdict": "fail"}, "not compliant"),
    ({"grade": "projected"}, "provisional"),
    ({"verdict": "error"}, "provisional"),
])
def test_headline_verdict(change, verdict, measured_shard):
    records = [r for r in shard_records(measured_shard("verdicts")) if r["metric"] != "power"]
    assert records[0]["metric"] == "latency"
    records[0].update(change)
    assert outcome.compliance(records)["verdict"] == verdict


@pytest.mark.parametrize("regression_verdicts, gate", [
    ([], "not run"),
    (["pass", "pass"], "pass"),
    (["pass", "skip"], "incomplete"),  # a projected target or a cell new to the baseline is not gated
    (["skip", "skip"], "not run"),
    (["fail", "skip"], "fail"),
])
def test_gate_verdict(regression_verdicts, gate):
    records = [{"cell": f"c{i}", "metric": "regression", "verdict": v} for i, v in enumerate(regression_verdicts)]
    assert outcome.gate(records)["verdict"] == gate


def sha256sum_check(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=folder, capture_output=True, text=True)


def test_the_manifest_checks_and_any_edit_breaks_it(report):
    assert sha256sum_check(report).returncode == 0
    names = [line.split("  ", 1)[1] for line in (report / "MANIFEST.sha256").read_text().splitlines()]
    assert set(names) == {"report.html", "report.md", "summary.json", "results.jsonl"}
    for name in names:
        original = (report / name).read_bytes()
        (report / name).write_bytes(original.replace(b"a", b"b", 1))
        failed = sha256sum_check(report)
        assert failed.returncode != 0 and f"{name}: FAILED" in failed.stdout
        (report / name).write_bytes(original)


def test_strict_mode_fails_host_figures_and_junit_carries_the_figures(suite, tiny_card, image_folder):  # noqa: F811
    result = run_suite(suite, tiny_card, image_folder, "--precision", "fp32", "-k", "latency", "--ncap-strict",
                       "--junitxml", "junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*insufficient evidence*host-measured*--ncap-strict accepts only measured*"])
    properties = {p.get("name"): p.get("value") for p in ElementTree.parse(suite.path / "junit.xml").iter("property")}
    assert float(properties["ncap_figure"]) > 0 and "Euro NCAP" in properties["ncap_limit_source"]
    assert properties["ncap_verdict"] == "fail" and "insufficient evidence" in properties["ncap_message"]
    summary = json.loads((suite.path / "reports" / "out" / "summary.json").read_text())
    assert summary["compliance"]["verdict"] == "not compliant"


def chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--no-first-run", f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed (.ci/run installs it)")
def test_a_merged_two_platform_report_reads_in_headless_chromium(tmp_path, measured_shard):
    from harness.merge import main

    shards = [measured_shard(platform, platform=platform) for platform in ("host", "qcs8255")]
    assert main(["merge", "--out", str(tmp_path / "merged"), *map(str, shards)]) == 0
    page = (tmp_path / "merged" / "report.html").as_uri()
    dom = chromium("--dump-dom", page).stdout
    assert 'id="verdicts"' in dom and 'id="headline"' in dom and "qcs8255" in dom and "<svg" in dom
    assert "<img src=x onerror" not in dom
    screenshot = tmp_path / "report.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1280,1600", page)
    colours = Image.open(screenshot).convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20, "the page rendered blank"


def test_optimisation_checklist_compares_each_recipe_with_fp32_of_the_same_model():
    import pandas as pd

    from harness.report.article import optimisation_rows

    def latency(recipe, p50, params, size):
        return {"metric": "latency", "platform": "host", "model": "net", "recipe": recipe, "p50_ms": p50,
                "params_after": params, "size_bytes": size}
    records = pd.DataFrame([
        latency("fp32", 4.0, 1000, 4000), latency("int8", 2.0, 1000, 1000),
        latency("fuse,prune:0.5,int8", 1.0, 400, 500),
        {"metric": "accuracy", "platform": "host", "model": "net", "recipe": "fuse,prune:0.5,int8", "drop_pt": 2.5},
    ])
    rows = {row["recipe"]: row for row in optimisation_rows(records)}
    assert set(rows) == {"int8", "fuse,prune:0.5,int8"}
    pruned = rows["fuse,prune:0.5,int8"]
    assert pruned["speedup"] == 4.0 and pruned["params_ratio"] == 0.4 and pruned["size_ratio"] == 0.125
    assert pruned["drop_pt"] == 2.5 and "pruning" in pruned["claims"] and "fusion" in pruned["claims"]
    assert rows["int8"]["drop_pt"] is None and rows["int8"]["params_ratio"] == 1.0


def test_labels_of_close_points_do_not_overprint():
    placed = plots.accuracy_vs_latency([{"label": f"{p} host", "p50_ms": ms, "accuracy": 0.991}
                                        for p, ms in (("int8", 0.82), ("fp32", 2.01), ("fp16", 2.44))])["points"]
    fp32, fp16 = (next(p for p in placed if p["label"].startswith(name)) for name in ("fp32", "fp16"))
    assert abs(fp32["label_y"] - fp16["label_y"]) >= 11  # same accuracy, 0.4 ms apart: one label a line lower
