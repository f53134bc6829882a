"""`ncap merge --out DIR SHARD_DIR...`: one report and one gate verdict from the result folders of
many runs (one CI job per platform, one device per shard), refusing shards that disagree on a cell."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from harness.catalog import asserted_figure
from harness.errors import NcapError
from harness.files import read_text
from harness.gate.baseline import Baseline, cell_figures, load_baseline
from harness.gate.compare import Thresholds, gate_notes, regression_verdict
from harness.report import outcome, validation
from harness.report.render import STORE, render_report
from harness.results.record import StoredRecord, stored
from harness.results.store import ResultsStore


def read_shard(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records of the last run in a report folder, and that run's provenance from summary.json."""
    records = ResultsStore(folder / STORE).records()
    summary = folder / "summary.json"
    if not records or not summary.is_file():
        raise NcapError(f"{folder} is not a dms-ncap report folder (needs {STORE} and summary.json)")
    last_run = records[-1]["run_id"]
    try:
        provenance = [p for p in json.loads(read_text(summary, "summary", "the shard folders"))["provenance"]
                      if p["run_id"] == last_run]
    except (ValueError, KeyError, TypeError) as exc:
        raise NcapError(f"{summary} is not a dms-ncap summary ({type(exc).__name__}); merge the folders a run "
                        "wrote, unedited") from exc
    return [r for r in records if r["run_id"] == last_run], provenance


def merge_shards(folders: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All shards' records, each (cell, metric, scenario state) once; a duplicate with another figure is an
    NcapError."""
    merged: dict[tuple[str, str, str], tuple[dict[str, Any], Path]] = {}
    provenance = []
    for folder in folders:
        records, shard_provenance = read_shard(folder)
        provenance += shard_provenance
        for record in records:
            key = (record["cell"], record["metric"], record.get("state", ""))
            if key in merged and _outcome(merged[key][0]) != _outcome(record):
                first, where = merged[key]
                what = " ".join(part for part in key if part)
                raise NcapError(f"conflicting shards: {what} is {_outcome(first)} in {where} but "
                                f"{_outcome(record)} in {folder}; merge each cell from one shard only")
            merged.setdefault(key, (record, folder))
    return [record for record, _ in merged.values()], provenance


def _outcome(record: dict[str, Any]) -> tuple[Any, str]:
    return asserted_figure(record["metric"], record), record["verdict"]


EXIT_MEANINGS = {outcome.EXIT_PASSED: "passed", outcome.EXIT_FAILED: "a requirement failed or a cell regressed",
                 outcome.EXIT_INCOMPLETE: "incomplete evidence (a figure in error, or --strict and a requirement "
                                          "not established by a measured pass)"}
DECIDED = ("pass", "fail", "error")  # a shard's gate verdict that was reached, not skipped


def regression_records(records: list[dict[str, Any]], baseline: Baseline,
                       thresholds: Thresholds) -> list[dict[str, Any]]:
    """The gate's record per cell, against the baseline, from the merged figures."""
    current = cell_figures(records)
    gated = []
    for record in records:
        if record["metric"] == "latency":
            verdict, figures = regression_verdict(record["cell"], baseline.cells.get(record["cell"]),
                                                  current.get(record["cell"], {}), thresholds)
            gated.append(stored({
                **{k: record[k] for k in ("run_id", "timestamp", "cell", "model", "precision", "platform", "recipe",
                                          "grade")},
                "metric": "regression", "verdict": verdict.status, "message": verdict.message,
                "method": f"against baseline {baseline.path}; {thresholds.describe()}",
                "baseline_sha256": baseline.sha256, **figures}).model_dump())
    return gated


def shard_thresholds(provenance: list[dict[str, Any]]) -> Thresholds:
    """The gate thresholds the shards ran with (`--ncap-gate-*`); shards that disagree cannot be gated as one.
    Shards from before thresholds were recorded count as the defaults."""
    used = {tuple(sorted(p.get("gate", dataclasses.asdict(Thresholds())).items())) for p in provenance}
    if len(used) > 1:
        raise NcapError(f"the shards ran with different gate thresholds ({'; '.join(str(dict(u)) for u in used)}); "
                        "rerun them with the same --ncap-gate-* options")
    return Thresholds(**dict(used.pop())) if used else Thresholds()


def with_gate(records: list[dict[str, Any]], baseline: Baseline, thresholds: Thresholds) -> list[dict[str, Any]]:
    """The shards' records, every cell gated: a verdict a shard reached in its own run against this very baseline
    stays (it could time the baseline's artifact beside its own), the other cells are gated on the baseline's
    stored figures."""
    decided = {r["cell"] for r in records if r["metric"] == "regression" and r["verdict"] in DECIDED
               and r.get("baseline_sha256") == baseline.sha256}
    kept = [r for r in records if r["metric"] != "regression" or r["cell"] in decided]
    return kept + regression_records([r for r in kept if r["cell"] not in decided], baseline, thresholds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ncap", description="dms-ncap tools")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge report folders of many runs into one report")
    merge.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the merged report goes")
    merge.add_argument("--baseline", type=Path, metavar="FILE", help="gate the merged figures on this baseline")
    merge.add_argument("--strict", action="store_true",
                       help="exit 3 (incomplete) unless every requirement is established by a measured pass")
    merge.add_argument("shards", type=Path, nargs="+", metavar="SHARD_DIR", help="report folders (--ncap-report)")
    validate = commands.add_parser("validate", help="run the tool-qualification checks and write validation.md")
    validate.add_argument("--out", type=Path, default=Path("reports/validation"), metavar="DIR",
                          help="where validation.md goes (default reports/validation)")
    validate.add_argument("--results", type=Path, action="append", default=[], metavar="RESULTS_JSONL",
                          help="a compliance run's results.jsonl whose self-audits join the report (repeatable)")
    profile = commands.add_parser("profile", help="time synthetic kernels here and fit this machine's latency "
                                  "predictor (docs/latency-prediction.md)")
    profile.add_argument("--minutes", type=float, default=25.0, help="the profiling budget (default 25)")
    profile.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    profile.add_argument("--platform", default="host", help="the platform the file is for (default host)")
    profile.add_argument("--device", metavar="ssh://USER@HOST[:PORT]", help="time the blocks on this board")
    profile.add_argument("--out", type=Path, metavar="FILE", help="default: predictors/PLATFORM.json in the cache")
    args = parser.parse_args(argv)
    if args.command == "profile":
        return _profile(args)
    if args.command == "validate":
        try:
            return validation.validate(args.out, args.results)
        except NcapError as exc:
            print(f"ncap validate: {exc}", file=sys.stderr)
            return outcome.EXIT_BAD_INPUT
    try:
        records, provenance = merge_shards(args.shards)
        notes = None
        if args.baseline:
            baseline = load_baseline(args.baseline)
            records = with_gate(records, baseline, shard_thresholds(provenance))
            notes = gate_notes(baseline, records)
    except NcapError as exc:
        print(f"ncap merge: {exc}", file=sys.stderr)
        return outcome.EXIT_BAD_INPUT
    (args.out / STORE).unlink(missing_ok=True)
    store = ResultsStore(args.out / STORE)
    for record in records:
        store.append(StoredRecord.model_validate(record))
    render_report(records, args.out, provenance, notes)
    compliance, gate = outcome.compliance(records), outcome.gate(records)
    print(f"ncap merge: {len(records)} records from {len(args.shards)} shards -> {args.out}\n"
          f"compliance: {compliance['verdict']} ({compliance['reason']})\ngate: {gate['verdict']} ({gate['reason']})")
    if notes and notes.machine_differences:
        print("WARNING: the baseline comes from a different machine: " + "; ".join(notes.machine_differences))
    status = outcome.exit_status(records, args.strict)
    print(f"exit {status}: {EXIT_MEANINGS[status]}")
    return status


def _profile(args: argparse.Namespace) -> int:
    from harness.device.address import DeviceAddress
    from harness.device.remote import AgentSession
    from harness.project.predictor import keep_board_samples, predictor_path
    from harness.project.profiling import DeviceBench, HostBench, Plan, profile_platform

    try:
        if args.minutes <= 0 or args.threads < 1:
            raise NcapError("--minutes must be above 0 and --threads at least 1")
        plan = Plan(args.minutes * 60, args.threads)
        if args.device:
            with AgentSession(DeviceAddress.parse(args.device)) as agent:
                predictor = profile_platform(plan, DeviceBench(agent), args.platform)
        else:
            predictor = profile_platform(plan, HostBench(), args.platform)
    except NcapError as exc:
        print(f"ncap profile: {exc}", file=sys.stderr)
        return outcome.EXIT_BAD_INPUT
    out = args.out or predictor_path(args.platform)
    predictor = keep_board_samples(predictor, out)
    predictor.save(out)
    print(f"ncap profile: {predictor.describe()}; written to {out}")
    return 0
