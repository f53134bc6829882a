"""`ncap validate` reads what the qualification tests did: a silent pass, a traceback, a lost record or a failed
audit make the validation fail, and are counted where the qualification note reads them."""
from __future__ import annotations

from pathlib import Path

from harness.report import validation

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="q.test_bad" name="case[a]"><properties><property name="qualification_kind" value="bad input"/>
<property name="category" value="model card"/><property name="message" value="card: std must be positive"/>
</properties></testcase>
<testcase classname="q.test_bad" name="case[b]"><properties><property name="qualification_kind" value="bad input"/>
</properties><failure message="accepted silently: baseline, NaN samples">...</failure></testcase>
<testcase classname="q.test_bad" name="case[c]"><properties><property name="qualification_kind" value="bad input"/>
</properties><failure message="ZeroDivisionError: float division by zero">...</failure></testcase>
<testcase classname="q.test_faults" name="kill"><properties><property name="qualification_kind" value="fault"/>
<property name="kill_points" value="12"/><property name="records_lost" value="2"/></properties></testcase>
</testsuite></testsuites>"""


def _checks(tmp_path: Path) -> list[validation.Check]:
    (tmp_path / "v.xml").write_text(JUNIT)
    return validation.read_junit(tmp_path / "v.xml")


def test_silent_passes_tracebacks_and_lost_records_are_counted(tmp_path):
    summary = validation.summary(_checks(tmp_path), [])
    assert (summary["bad_inputs_tried"], summary["silent_passes"], summary["tracebacks"]) == (3, 1, 1)
    assert (summary["kill_points"], summary["records_lost"]) == (12, 2) and not summary["passed"]


def test_a_failed_audit_fails_the_validation_even_when_every_check_passed(tmp_path, monkeypatch):
    passing = [c for c in _checks(tmp_path) if c.outcome == "passed"]
    results = tmp_path / "results.jsonl"
    monkeypatch.setattr(validation, "run_qualification", lambda out: tmp_path / "v.xml")
    monkeypatch.setattr(validation, "read_junit", lambda path: passing)
    monkeypatch.setattr(validation, "_records", lambda path: [
        {"metric": "audit", "verdict": "fail", "cell": "m-int8-host", "run_id": "r", "message": "reusing results"}])
    assert validation.validate(tmp_path / "out", [results]) == 1
    page = (tmp_path / "out" / "validation.md").read_text()
    assert "**Result: FAILED**" in page and "reusing results" in page and "card: std must be positive" in page
