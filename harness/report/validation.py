"""`ncap validate`: the tool-qualification evidence (docs/tool-qualification.md) in one command.

It runs the repository's qualification tests (pytest marker `qualification`: the bad-input catalogue, the fault
injection, the instruments' known-answer tests, the self-audits' own tests) with pytest's JUnit XML, reads the
outcomes and the figures the tests recorded (`record_property`), adds the self-audit records of any compliance
runs given, and renders validation.md (Jinja2) in the report's style.
"""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

import harness
from harness.errors import NcapError
from harness.results.store import ResultsStore

KINDS = ("bad input", "fault", "known answer", "self-audit")
SILENT = "accepted silently"


@dataclass
class Check:
    """One qualification test as it ended, with the figures it recorded."""

    kind: str
    name: str
    outcome: str  # passed, failed, error, skipped
    message: str = ""
    figures: dict[str, str] = field(default_factory=dict)


def tests_folder() -> Path:
    """The repository's tests/ beside the installed package (an editable install or a checkout)."""
    folder = Path(harness.__file__).resolve().parents[1] / "tests"
    if not (folder / "qualification").is_dir():
        raise NcapError(f"no qualification tests at {folder}; ncap validate runs the repository's tests: run it from "
                        "a checkout installed with pip install -e '.[test]'")
    return folder


def run_qualification(out_dir: Path) -> Path:
    """Run the qualification tests into a JUnit XML file; its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    junit = out_dir / "validation.xml"
    # xunit1: the JUnit family that keeps the properties the tests record
    subprocess.run([sys.executable, "-m", "pytest", str(tests_folder()), "-m", "qualification", "-q",
                    "-p", "no:cacheprovider", "-o", "junit_family=xunit1", f"--junitxml={junit}"], check=False)
    if not junit.is_file():
        raise NcapError(f"the qualification tests wrote no {junit}; run pytest tests -m qualification to see why")
    return junit


def read_junit(path: Path) -> list[Check]:
    checks = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        figures = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        ended = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        outcome = "passed" if ended is None else {"failure": "failed", "error": "error"}.get(ended.tag, "skipped")
        told = ended.get("message") if ended is not None else None
        message = told.splitlines()[0][:300] if told else figures.get("message", "")
        checks.append(Check(figures.pop("qualification_kind", "unmarked"), f"{case.get('classname')}::"
                            f"{case.get('name')}", outcome, message, figures))
    return checks


def summary(checks: list[Check], audits: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures the qualification note asks for, from the checks and the runs' audit records."""
    bad = [c for c in checks if c.kind == "bad input"]
    faults = [c for c in checks if c.kind == "fault"]
    return {
        "outcomes": {kind: dict(Counter(c.outcome for c in checks if c.kind == kind)) for kind in KINDS},
        "bad_inputs_tried": len(bad),
        "silent_passes": sum(SILENT in c.message for c in bad if c.outcome != "passed"),
        "tracebacks": sum(SILENT not in c.message for c in bad if c.outcome != "passed"),
        "kill_points": _total(faults, "kill_points"),
        "records_lost": _total(faults, "records_lost"),
        "faults_failed": sum(c.outcome != "passed" for c in faults),
        "audits": dict(Counter(a["verdict"] for a in audits)),
        "passed": all(c.outcome in ("passed", "skipped") for c in checks),
    }


def _total(checks: list[Check], figure: str) -> int:
    return sum(int(float(c.figures.get(figure) or 0)) for c in checks)


def render(checks: list[Check], audits: list[dict[str, Any]], out_dir: Path) -> Path:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(files("harness.templates"))),
                                     autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                     lstrip_blocks=True)  # Markdown, not HTML: nothing to escape for a browser
    page = environment.get_template("validation.md.j2").render(
        summary=summary(checks, audits), kinds=KINDS, checks=checks, audits=audits)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "validation.md"
    path.write_text(page)
    return path


def validate(out_dir: Path, results: list[Path]) -> int:
    """Run, read, render; 0 when every qualification check passed and no given run failed an audit, else 1."""
    audits = [r for path in results for r in _records(path) if r["metric"] == "audit"]
    checks = read_junit(run_qualification(out_dir))
    page = render(checks, audits, out_dir)
    outcome = summary(checks, audits)
    print(f"ncap validate: {len(checks)} qualification checks -> {page}")
    return 0 if outcome["passed"] and not outcome["audits"].get("fail") else 1


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise NcapError(f"--results {path} is not a results file; give the results.jsonl of a compliance run")
    return ResultsStore(path).records()
