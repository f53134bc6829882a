"""The gate's statistics: is a cell slower, bigger or less accurate than in the baseline?

Latency regresses only when it is slower with statistical significance (one-sided Mann-Whitney U
on the samples) AND by more than a practical threshold on the median ratio, as asv does: noise
alone rarely passes both, and a significant but negligible change is not worth blocking a merge.
A latency regression must also show in a second, fresh measurement when the caller can make one:
on a shared machine a whole run sometimes lands in a busy moment (measured here: reruns of the same
artifact 1.5-1.8x slower with nothing else of ours running, and stretches of minutes 5-14 % slower).
Best, the baseline's own artifact is timed again beside the current one, the two alternating every
few calls, so the machine's drift slows both alike (harness.measure.latency.time_alternating); such a
second look repeats the first look's experiment, so its samples join the first's and the verdict is on
both (judged alone, a second look of a 1.10x slower artifact dipped under the 5 % threshold in 2 runs of
20 of benchmarks/gate_quality.py). A second look that could only time the current artifact again, beside
stored samples, is judged alone: it is there to rule out a slow spell of this run.
Peak memory gets the same second look: a fresh process's peak varies by up to 5 % here (see
harness.measure.memory).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from harness.gate.baseline import Baseline, fingerprint_differences
from harness.verdict import Verdict, format_figure


@dataclass(frozen=True)
class Thresholds:
    alpha: float = 0.01  # significance level of the latency test
    latency: float = 0.05  # relative slow-down of the median that counts
    memory: float = 0.05  # relative growth of peak memory, and of the artifact's size, that counts
    accuracy_pt: float = 0.5  # top-1 drop, in points, that counts

    def describe(self) -> str:
        return (f"latency: Mann-Whitney U p < {self.alpha:g} and median +{self.latency:.0%}; "
                f"peak memory and model size +{self.memory:.0%}; accuracy -{self.accuracy_pt:g} pt")


@dataclass(frozen=True)
class Check:
    name: str
    before: float
    after: float
    unit: str
    ratio: float
    threshold: str
    regressed: bool
    p_value: float | None = None
    confirmation_ratio: float | None = None  # the second look's ratio, when one was made

    def describe(self) -> str:
        p_value = f", p = {self.p_value:.2g}" if self.p_value is not None else ""
        confirmation = ""
        if self.confirmation_ratio is not None:
            outcome = "confirms it" if self.regressed else "does not confirm it: counted as noise"
            confirmation = f"; a second look (ratio {self.confirmation_ratio:.3f}) {outcome}"
        return (f"{self.name} {format_figure(self.before)} -> {format_figure(self.after)} {self.unit} "
                f"(ratio {self.ratio:.3f}{p_value}; threshold {self.threshold}{confirmation})")


@dataclass(frozen=True)
class SecondLook:
    """Fresh (before, after) figures of a cell, asked for only when a first comparison finds a regression:
    best the baseline's own artifact measured again in this job beside the current one, else a new
    measurement of the current artifact beside the stored baseline figures."""

    latency: Callable[[], tuple[list[float], list[float]]]  # the new samples, ms; before is [] if none are new
    memory: Callable[[], tuple[float, float]]  # peak memory, MB: (the new or else the stored peak, the new peak)


def latency_check(before_ms: list[float], after_ms: list[float], thresholds: Thresholds,
                  remeasure: Callable[[], tuple[list[float], list[float]]] | None = None) -> Check:
    """The latency test; a regression found stands only if it holds again with `remeasure()`'s new samples:
    added to the first look's when both artifacts were timed again, else the new timing against `before_ms`."""
    def second_look() -> Check:
        more_before, more_after = remeasure()
        if not more_before:
            return _latency_test(before_ms, more_after, thresholds)
        return _latency_test([*before_ms, *more_before], [*after_ms, *more_after], thresholds)
    return _confirmed(_latency_test(before_ms, after_ms, thresholds), remeasure and second_look)


def memory_check(before_mb: float, after_mb: float, thresholds: Thresholds,
                 remeasure: Callable[[], tuple[float, float]] | None = None) -> Check:
    """Peak memory growth; a growth found stands only if `remeasure()` shows it too."""
    return _confirmed(_memory_test(before_mb, after_mb, thresholds),
                      remeasure and (lambda: _memory_test(*remeasure(), thresholds)))


def _confirmed(check: Check, second_look: Callable[[], Check] | None) -> Check:
    if not check.regressed or second_look is None:
        return check
    again = second_look()
    return replace(check, regressed=again.regressed, confirmation_ratio=again.ratio)


def _latency_test(before_ms: list[float], after_ms: list[float], thresholds: Thresholds) -> Check:
    before, after = np.median(before_ms), np.median(after_ms)
    p_value = float(mannwhitneyu(after_ms, before_ms, alternative="greater").pvalue)
    ratio = float(after / before)
    regressed = p_value < thresholds.alpha and ratio > 1 + thresholds.latency
    return Check("latency median", float(before), float(after), "ms", ratio,
                 f"p < {thresholds.alpha:g} and ratio > {1 + thresholds.latency:g}", regressed, p_value)


def size_check(before_bytes: float, after_bytes: float, thresholds: Thresholds) -> Check:
    """The artifact's file size: exact, so no second look; it shows a bigger model even where the runtime's
    arena, which grows in chunks, hides it in the peak."""
    return _growth("model size", before_bytes / 2**20, after_bytes / 2**20, thresholds)


def _memory_test(before_mb: float, after_mb: float, thresholds: Thresholds) -> Check:
    return _growth("peak memory", before_mb, after_mb, thresholds)


def _growth(name: str, before_mb: float, after_mb: float, thresholds: Thresholds) -> Check:
    ratio = after_mb / before_mb
    return Check(name, before_mb, after_mb, "MB", ratio, f"ratio > {1 + thresholds.memory:g}",
                 ratio > 1 + thresholds.memory)


def accuracy_check(before: float, after: float, thresholds: Thresholds) -> Check:
    drop_pt = (before - after) * 100
    return Check("top-1", before * 100, after * 100, "%", after / before if before else float("nan"),
                 f"drop > {thresholds.accuracy_pt:g} pt", drop_pt > thresholds.accuracy_pt)


def compare_cell(before: dict[str, Any], after: dict[str, Any], thresholds: Thresholds,
                 second_look: SecondLook | None = None) -> list[Check]:
    """Every check both runs have figures for (see baseline.GATED_FIGURES)."""
    checks = {"samples_ms": lambda b, a: latency_check(b, a, thresholds, second_look and second_look.latency),
              "peak_mb": lambda b, a: memory_check(b, a, thresholds, second_look and second_look.memory),
              "model_size_bytes": lambda b, a: size_check(b, a, thresholds),
              "accuracy": lambda b, a: accuracy_check(b, a, thresholds)}
    return [check(before[key], after[key]) for key, check in checks.items() if key in before and key in after]


def regression_verdict(cell: str, before: dict[str, Any] | None, after: dict[str, Any],
                       thresholds: Thresholds, second_look: SecondLook | None = None) -> tuple[Verdict, dict[str, Any]]:
    """The gate's verdict on one cell and the figures behind it; a cell it cannot compare is a skip, never a pass."""
    if before is None:
        return Verdict("skip", f"{cell} is new: the baseline has no figures for it; save a new baseline to gate it"), {}
    checks = compare_cell(before, after, thresholds, second_look)
    if not checks:
        return Verdict("skip", f"{cell}: no figure measured in both the baseline and this run"), {}
    latency = next((c for c in checks if c.name == "latency median"), None)
    figures = {"checks": [asdict(c) for c in checks], "latency_ratio": latency.ratio if latency else None,
               "p_value": latency.p_value if latency else None}
    regressed = [c for c in checks if c.regressed]
    if regressed:
        return Verdict("fail", "regression against the baseline: " + _described(regressed)), figures
    return Verdict("pass", "no regression: " + _described(checks)), figures


def _described(checks: list[Check]) -> str:
    return "; ".join(check.describe() for check in checks)


@dataclass(frozen=True)
class GateNotes:
    """What a reader of the gate's outcome must know beyond the per-cell verdicts."""

    baseline: str
    machine_differences: list[str]  # non-empty: the comparison is across machines and hardly meaningful
    missing_cells: list[str]  # in the baseline, not in this run


def gate_notes(baseline: Baseline, records: list[dict[str, Any]]) -> GateNotes:
    current = next((r["machine"] for r in records if r.get("machine")), None)
    differences = fingerprint_differences(baseline.fingerprint, current) if current is not None else []
    present = {r["cell"] for r in records}
    return GateNotes(str(baseline.path), differences, sorted(set(baseline.cells) - present))
