"""The headline verdicts of a run: compliance (for homologation) and the regression gate (for CI)."""
from __future__ import annotations

from typing import Any

from harness.catalog import is_requirement

# emulated: the target's arithmetic run on the host (a vendor emulator): the chip's numerics, not the chip
UNPROVEN_GRADES = ("projected", "estimated", "emulated")

# `ncap merge` exit codes (README, "Exit codes"); 2 is argparse's and ours for bad input
EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3


def compliance(records: list[dict[str, Any]]) -> dict[str, str]:
    """compliant, not compliant, or provisional (a requirement skipped, in error, or shown only by a
    projected, emulated or estimated figure), with the reason; invalid when a self-audit of the timing failed,
    since then no figure of the run can be trusted."""
    audits_failed = [r for r in records if r["metric"] == "audit" and r["verdict"] == "fail"]
    if audits_failed:
        return {"verdict": "invalid", "reason": f"{len(audits_failed)} self-audit(s) failed, so the run's figures "
                                                f"cannot be trusted: {_names(audits_failed)}"}
    checked = [r for r in records if is_requirement(r["metric"], r.get("recipe") or r["precision"],
                                                  r.get("platform", ""))]
    failed = [r for r in checked if r["verdict"] == "fail"]
    if failed:
        return {"verdict": "not compliant", "reason": f"{len(failed)} requirement check(s) failed: {_names(failed)}"}
    unproven = [r for r in checked if r["verdict"] in ("skip", "error") or r.get("grade") in UNPROVEN_GRADES]
    if unproven or not checked:
        return {"verdict": "provisional", "reason": (
            f"{len(unproven)} requirement check(s) not established by a measured pass (skipped, in error, "
            f"projected, emulated or estimated): {_names(unproven)}" if checked else "no requirement was checked")}
    grades = sorted({r.get("grade") for r in checked})
    return {"verdict": "compliant", "reason": f"all {len(checked)} requirement checks passed on "
                                              f"{', '.join(grades)} evidence"}


def gate(records: list[dict[str, Any]]) -> dict[str, str]:
    """fail when any cell regressed; pass when every cell was compared and none did; incomplete when some
    could not be (a cell new to the baseline, a projected target); not run when none was."""
    cells = [r for r in records if r["metric"] == "regression"]
    failed = [r for r in cells if r["verdict"] == "fail"]
    if failed:
        return {"verdict": "fail", "reason": f"{len(failed)} cell(s) regressed: {_names(failed)}"}
    passed = [r for r in cells if r["verdict"] == "pass"]
    unsettled = [r for r in cells if r["verdict"] != "pass"]
    if not passed:
        return {"verdict": "not run", "reason": (f"no cell could be compared: {_names(unsettled)}" if unsettled
                                                 else "no baseline was given")}
    if unsettled:
        return {"verdict": "incomplete", "reason": (f"{len(passed)} cell(s) compared, none regressed; "
                                                    f"{len(unsettled)} not compared: {_names(unsettled)}")}
    return {"verdict": "pass", "reason": f"{len(passed)} cell(s) compared, none regressed"}


def exit_status(records: list[dict[str, Any]], strict: bool = False) -> int:
    """What CI should do with these records: fail on a failed requirement or a regression; call the evidence
    incomplete when a figure is in error or a self-audit failed (invalid evidence), or, under `strict`, when a
    requirement is not established by a measured pass (skipped, projected, emulated or estimated); pass otherwise."""
    if compliance(records)["verdict"] == "not compliant" or gate(records)["verdict"] == "fail":
        return EXIT_FAILED
    if any(r["verdict"] == "error" for r in records) or compliance(records)["verdict"] == "invalid":
        return EXIT_INCOMPLETE
    if strict and compliance(records)["verdict"] != "compliant":
        return EXIT_INCOMPLETE
    return EXIT_PASSED


def _names(records: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['cell']} {r['metric']} ({r['verdict']}, {r.get('grade') or 'no grade'})" for r in records)
