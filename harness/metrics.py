"""One small function per metric: a source's evidence and the requirement's limit become a judged record.

The metrics never ask where a figure came from; the evidence carries its grade and method.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.catalog import REFERENCE_RECIPE, is_reference
from harness.cell import Cell, Record, RunOptions
from harness.errors import NcapError
from harness.gate.baseline import gated_figures
from harness.gate.compare import regression_verdict
from harness.optimize.recipe import Artifact, parse_recipe
from harness.requirements import Limit
from harness.sources.base import Evidence, FigureSource
from harness.verdict import Verdict, judge

INTEGER_PRECISIONS = ("int8", "int4")  # quantised cells (qat and mixed end in int8), whose layers can drift from FP32


def judged(cell: Cell, metric: str, evidence: Evidence, unit: str, limit: Limit) -> Record:
    """The evidence against the limit; a figure the source cannot give is a skip with its reason, never a pass."""
    if evidence.value is None:
        if evidence.grade is not None:  # a source that should have given the figure and could not
            raise NcapError(evidence.reason or f"{evidence.what} could not be obtained")
        return Record(cell, metric, Verdict("skip", evidence.reason or "no figure"), limit=limit.value,
                      limit_source=limit.source)
    verdict = judge(evidence.what, evidence.value, unit, limit)
    if evidence.lower_bound and verdict.status == "pass":
        verdict = Verdict("skip", (
            f"{evidence.what} {evidence.value:.3g} {unit} is a lower bound: within {limit.wording()} {unit} it shows "
            "nothing, since the true figure may be above the limit; measure on the device (--device ssh://...)"))
    if evidence.caveat:
        verdict = Verdict(verdict.status, f"{verdict.message} [{evidence.caveat}]")
    return Record(cell, metric, verdict, evidence.grade, evidence.method, limit.value, limit.source, evidence.figures)


def latency(cell: Cell, source: FigureSource, options: RunOptions) -> Record:
    return judged(cell, "latency", source.latency(cell), "ms", options.requirements.latency_ms)


def memory(cell: Cell, source: FigureSource, options: RunOptions) -> Record:
    return judged(cell, "memory", source.memory(cell), "MB", options.requirements.memory_mb)


def power(cell: Cell, source: FigureSource, options: RunOptions) -> Record:
    """An estimate is recorded but skipped unless the user asks to assert it (--ncap-assert-estimates)."""
    evidence = source.power(cell)
    record = judged(cell, "power", evidence, "W", options.requirements.power_w)
    if evidence.grade == "estimated" and not options.assert_estimates:
        record.verdict = Verdict("skip", (
            f"power {evidence.value:.3g} W is only an estimate ({evidence.method}); a host CPU estimate says nothing "
            "about a 5 W car chip. Use --ncap-assert-estimates to assert it anyway"))
    return record


def accuracy(cell: Cell, source: FigureSource, options: RunOptions, artifact: Artifact, detector: bool,
             dataset_name: str, evaluation_images: int, drift: Callable[[], dict[str, Any]]) -> Record:
    """Top-1 drop against the same network's reference recipe (FP32), held to the precision's limit or to the
    budget the recipe was given; an integer cell's record names the layers that drift most (`drift`)."""
    if detector:
        return Record(cell, "accuracy", Verdict("skip", (
            f"{cell.model} is a detector: its accuracy is mAP on labelled boxes, and {dataset_name} has none "
            "(the embedded data labels driver states); run with a detection set to measure it")))
    evidence = source.top1(cell)
    if evidence.value is None:
        return Record(cell, "accuracy", Verdict("skip", evidence.reason or "no accuracy figure"))
    top1 = evidence.value
    figures: dict[str, Any] = {"accuracy": top1, "evaluation_images": evaluation_images} | evidence.figures
    if is_reference(cell.recipe):
        return Record(cell, "accuracy", Verdict("skip", (
            f"FP32 is the reference the other precisions' drops are measured against (top-1 {top1:.2%})")),
            evidence.grade, evidence.method, figures=figures)
    reference = source.top1(Cell(cell.model, REFERENCE_RECIPE, cell.platform)).value
    drop_pt = (reference - top1) * 100
    figures |= {"reference_accuracy": reference, "drop_pt": drop_pt}
    limit = _accuracy_limit(cell, options)
    if limit is None:
        raise NcapError(f"no accuracy-drop limit for {cell.precision}; add accuracy_drop_pt.{cell.precision} "
                        "to the requirements file")
    verdict = judge(f"top-1 drop vs FP32 ({reference:.2%} -> {top1:.2%})", drop_pt, "pt", limit)
    for step in artifact.manifest["steps"]:  # a mixed-precision search explains its choice
        figures |= {key: step["did"][key] for key in ("sensitivity", "assignment") if key in step["did"]}
    if cell.precision in INTEGER_PRECISIONS:
        figures["layer_drift"] = drift()
    return Record(cell, "accuracy", verdict, evidence.grade, evidence.method, limit.value, limit.source, figures)


def _accuracy_limit(cell: Cell, options: RunOptions) -> Limit | None:
    """A recipe that was given its own accuracy budget (mixed:0.5) is held to it; others to their precision's."""
    budget = getattr(parse_recipe(cell.recipe)[-1], "accuracy_budget_pt", None)
    if budget is not None:
        return Limit(value=budget, source=f"the accuracy budget the recipe {cell.recipe!r} was asked for")
    return options.requirements.accuracy_drop_pt.get(cell.precision)


def placement(cell: Cell, evidence: Evidence, options: RunOptions) -> Record:
    """Nodes the chip's compiler left to the CPU, against the limit (none); the evidence names them."""
    return judged(cell, "placement", evidence, "nodes", options.requirements.npu_fallback_nodes)


def audit(cell: Cell, source: FigureSource) -> Record:
    """The self-audits of the cell's timing: any failure makes the run's evidence invalid."""
    outcome = source.audit(cell)
    if not outcome.audits:
        return Record(cell, "audit", Verdict("skip", outcome.reason or "no self-audit ran"))
    failed = [a for a in outcome.audits if not a.passed]
    told = failed or outcome.audits
    verdict = Verdict("fail" if failed else "pass", "; ".join(f"{a.name}: {a.message}" for a in told))
    figures = {"audits": [{"name": a.name, "passed": a.passed, "message": a.message, **a.figures}
                          for a in outcome.audits]}
    for one in outcome.audits:
        figures |= one.figures
    return Record(cell, "audit", verdict, outcome.grade, "self-audits after MLPerf TEST01 (timed outputs) and TEST04 "
                                                         "(repeated input), harness.measure.audit", figures=figures)


def regression(cell: Cell, source: FigureSource, options: RunOptions,
               current_records: Callable[[], list[Record]]) -> Record:
    """The cell against the baseline (`current_records`: its latency, memory and accuracy records, measured only
    when there is a baseline): latency paired with the baseline's own artifact where the source can time
    both now, else against the stored samples; a regression is confirmed by a second look before it fails."""
    baseline = options.baseline
    if baseline is None:
        return Record(cell, "regression", Verdict("skip", "no baseline to compare with; pass --ncap-baseline FILE"))
    stored = baseline.cells.get(cell.id)
    second_look = source.second_look(cell, stored or {})
    if second_look is None:
        return Record(cell, "regression", Verdict("skip", (
            f"regression on {cell.platform} is not gated: its figures are projected and the gate compares "
            "measurements; run on the device (--device ssh://...)")))
    measured = current_records()
    current = gated_figures(record.figures for record in measured)
    # With the baseline's own artifact at hand, latency is compared on the two timed in alternation now, not on
    # samples stored from another moment: a baseline saved in a slow spell hid a 1.14x slow-down in 19 of 20 runs
    # of benchmarks/gate_quality.py, and one saved in a fast spell raises false alarms.
    paired = source.paired_timing(cell, stored) if stored and "samples_ms" in current else None
    if paired is not None:
        stored, current = {**stored, "samples_ms": paired[0]}, {**current, "samples_ms": paired[1]}
    verdict, figures = regression_verdict(cell.id, stored, current, options.gate, second_look)
    latency_how = ("latency of the baseline's artifact and this one timed in alternation in this run (ONNX Runtime "
                   "workers not spinning, for both)" if paired else "latency against the baseline's stored samples")
    grade = next((record.grade for record in measured if record.grade), None)
    return Record(cell, "regression", verdict, grade,
                  f"against baseline {baseline.path} ({baseline.created}); {latency_how}; {options.gate.describe()}",
                  figures={**figures, "baseline_sha256": baseline.sha256})
