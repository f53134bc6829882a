import json
import multiprocessing
from pathlib import Path

import pytest

from harness.errors import NcapError
from harness.requirements import Limit
from harness.results.record import SCHEMA_VERSION, StoredRecord, stored
from harness.results.store import ResultsStore
from harness.verdict import judge


def _record(**figures) -> StoredRecord:
    return stored({"run_id": "a", "timestamp": "2026-12-01T10:00:00+00:00", "cell": "tiny-fp32-host", "model": "tiny",
                   "precision": "fp32", "platform": "host", "recipe": "fp32", "metric": "latency", "verdict": "pass",
                   "message": "within the limit", **figures})


def _append_many(path, worker):
    store = ResultsStore(path)
    for index in range(200):
        store.append(_record(worker=worker, index=index, pad="x" * 500))


@pytest.mark.qualification(kind="fault")
def test_parallel_appends_never_interleave(tmp_path):
    path = tmp_path / "results.jsonl"
    workers = [multiprocessing.Process(target=_append_many, args=(path, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 800 and all(json.loads(line)["pad"] for line in lines)


@pytest.mark.qualification(kind="fault")
def test_a_line_cut_short_by_a_crash_loses_nothing_else(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(_record(n=1))
    with store.path.open("a") as handle:
        handle.write('{"run_id": "a", "n": ')  # the process died mid-line
    assert store.records("a") == [_record(n=1).model_dump()]
    store.append(_record(n=2))  # the next writer starts a line of its own: its record is not glued to the tail
    assert [r["n"] for r in store.records("a")] == [1, 2]


@pytest.mark.qualification(kind="bad input")
def test_non_finite_figures_are_refused_not_written(tmp_path):
    with pytest.raises(ValueError):
        ResultsStore(tmp_path / "r.jsonl").append(_record(p99_ms=float("nan")))


def test_a_record_from_before_the_schema_version_still_reads_and_a_foreign_line_is_named(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    old = _record(p99_ms=1.0).model_dump()
    del old["schema_version"], old["recipe"]  # what a results file from before the schema holds
    store.path.write_text(json.dumps(old) + "\n")
    (read,) = store.records()
    assert read["schema_version"] == 1 and read["recipe"] == "fp32" and read["p99_ms"] == 1.0
    assert _record().schema_version == SCHEMA_VERSION
    with store.path.open("a") as handle:
        handle.write(json.dumps({"worker": 1}) + "\n")
    with pytest.raises(NcapError, match=r"results.jsonl line 2 is not a dms-ncap result record: field run_id"):
        store.records()


def test_judge_gives_figure_limit_and_margin():
    limit = Limit(value=50, source="article")
    passed = judge("latency", 12.0, "ms", limit)
    assert passed.status == "pass" and "12.00 ms" in passed.message and "margin 38.00 ms" in passed.message
    failed = judge("latency", 61.0, "ms", limit)
    assert failed.status == "fail" and "by 11.00 ms (22.0% of the limit)" in failed.message
    assert "article" in failed.message


def test_strict_limit_rejects_the_boundary():
    assert judge("drop", 1.0, "pt", Limit(value=1, source="s", strict=True)).status == "fail"
    assert judge("drop", 1.0, "pt", Limit(value=1, source="s")).status == "pass"


@pytest.mark.parametrize("recipe, precision", [("qat", "int8"), ("mixed:0.5", "int8"), ("fuse,prune:0.3,int8", "int8"),
                                               ("int4:64", "int4"), ("fp16", "fp16")])
def test_a_cells_precision_is_what_its_last_pass_ends_in(recipe, precision):
    from harness.cell import Cell

    assert Cell("dmsnet", recipe, "host").precision == precision


def test_a_recipe_that_ends_in_fp32_is_held_to_its_accuracy_drop_only_the_reference_is_not():
    from harness.catalog import is_reference
    from harness.report import outcome

    assert is_reference("fp32") and not is_reference("prune:0.5,fp32") and not is_reference("fp16")
    pruned = {"cell": "dmsnet-prune:0.5+fp32-host", "metric": "accuracy", "precision": "fp32",
              "recipe": "prune:0.5,fp32", "verdict": "fail", "grade": "host-measured"}
    assert outcome.compliance([pruned])["verdict"] == "not compliant"  # its 12 pt drop is not a reference's
    reference = {**pruned, "cell": "dmsnet-fp32-host", "recipe": "fp32", "verdict": "skip"}
    assert outcome.compliance([reference])["reason"] == "no requirement was checked"


def test_an_accuracy_drop_beyond_its_limit_fails_and_names_both_figures():
    from harness import metrics
    from harness.cell import Cell, RunOptions
    from harness.platform import load_platform
    from harness.requirements import Requirements
    from harness.sources.base import Evidence

    class KnownTop1:
        def top1(self, cell):
            return Evidence({"fp32": 0.90, "int8": 0.85}[cell.recipe], "top-1", "host-measured", "known")
    options = RunOptions(platform=load_platform("host"), models=(), recipes=(), requirements=Requirements(),
                         report_dir=Path("unused"))
    artifact = type("Artifact", (), {"manifest": {"steps": []}})()
    drift = {"worst": [{"tensor": "conv1", "relative_error": 0.06}]}
    record = metrics.accuracy(Cell("m", "int8", "host"), KnownTop1(), options, artifact, False, "data", 100,
                              lambda: drift)
    assert record.verdict.status == "fail" and record.figures["drop_pt"] == pytest.approx(5.0)
    assert record.figures["layer_drift"] == drift  # where the INT8 cell loses it
    assert "90.00% -> 85.00%" in record.verdict.message and "breaks the limit <= 3" in record.verdict.message
