"""N played sequences of one state become one judged record: the warning-time distribution with a bound at a
stated confidence, missed and late warnings, false alerts per hour, and a verdict that claims only what N runs
can show."""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from scipy import stats

from harness.cell import Cell, Record
from harness.scenarios.play import Played
from harness.scenarios.protocol import Protocol
from harness.scenarios.sequences import Sequence
from harness.scenarios.timing import Latency
from harness.verdict import Verdict

METRIC = "scenario"
RATE_STATE = "normal_driving"  # judged on false alerts per hour, the others on the share of runs that succeed


def share_bounds(successes: int, runs: int, confidence: float) -> tuple[float, float]:
    """One-sided Clopper-Pearson bounds on the share of successful runs, each at `confidence`."""
    lower = 0.0 if successes == 0 else float(stats.beta.ppf(1 - confidence, successes, runs - successes + 1))
    upper = 1.0 if successes == runs else float(stats.beta.ppf(confidence, successes + 1, runs - successes))
    return lower, upper


def rate_bounds(events: int, hours: float, confidence: float) -> tuple[float, float]:
    """One-sided exact Poisson bounds on events per hour, each at `confidence`."""
    lower = 0.0 if events == 0 else float(stats.chi2.ppf(1 - confidence, 2 * events) / 2) / hours
    upper = float(stats.chi2.ppf(confidence, 2 * events + 2) / 2) / hours
    return lower, upper


def quantile_bounded_by_max(runs: int, confidence: float) -> float:
    """The highest quantile q for which the largest of `runs` samples is an upper bound at `confidence`:
    P(max < x_q) = q^runs, so q = (1 - confidence)^(1 / runs)."""
    return float((1 - confidence) ** (1 / runs))


def judge_state(cell: Cell, state: str, played: list[Played], sequences: list[Sequence], protocol: Protocol,
                latency: Latency, how: str) -> Record:
    """The record of one state: `played` are its sequences, in order; `how` says where the per-frame states came
    from."""
    expected, rule = protocol.states[state], protocol.judge
    runs = len(played)
    succeeded = sum(p.on_time for p in played)
    hours = sum(p.seconds for p in played) / 3600
    false_alerts = sum(p.false_alerts for p in played)
    processed = sum(p.frames - p.dropped for p in played)
    figures: dict[str, Any] = {
        "state": state, "clause": expected.clause, "runs": runs, "succeeded": succeeded,
        "false_alerts": false_alerts, "hours": hours, "false_alerts_per_hour": false_alerts / hours,
        "frame_accuracy": sum(p.correct for p in played) / processed if processed else None,
        "dropped_share": sum(p.dropped for p in played) / sum(p.frames for p in played),
        "sequences": {p.sequence: _sequence_figures(p, s) for p, s in zip(played, sequences, strict=True)},
        "coverage": coverage(sequences), "confidence": rule.confidence, "latency_lower_bound": latency.lower_bound}
    method = f"{runs} scripted sequences at {sequences[0].fps:g} fps; {how}; {latency.describe()}"
    figures["unit"] = "s" if expected.must_warn else "alerts/h"
    if state == RATE_STATE:
        verdict, limit = _rate_verdict(figures, rule.false_alerts_per_hour, rule.confidence), rule.false_alerts_per_hour
    else:
        if expected.must_warn:
            figures |= _warning_figures(played, expected.warn_within_s, rule.confidence)
        verdict, limit = _share_verdict(state, figures, rule.on_time_share, rule.confidence,
                                        expected.warn_within_s), expected.warn_within_s
    if latency.lower_bound and verdict.status == "pass":
        verdict = Verdict("skip", f"{verdict.message}; but the processing time is a lower bound ({latency.method}), "
                                  "so warnings may come later than computed: nothing is shown")
    return Record(cell, METRIC, verdict, latency.grade, method, limit, expected.clause, figures)


def _sequence_figures(p: Played, s: Sequence) -> dict[str, Any]:
    """What one run did, with the conditions it ran under: which matrix level breaks a state."""
    processed = p.frames - p.dropped
    return {"conditions": s.conditions.describe() if s.conditions else "recording", "gaze": ", ".join(s.gazes),
            "succeeded": p.on_time, "warning_s": p.warning_s, "alerts": [f"{a.kind}@{a.at_s:.2f}s" for a in p.alerts],
            "frame_accuracy": p.correct / processed if processed else None}


def _warning_figures(played: list[Played], within_s: float, confidence: float) -> dict[str, Any]:
    times = [p.warning_s for p in played if p.warning_s is not None]
    figures: dict[str, Any] = {"warning_s": times, "missed": sum(p.warning_s is None for p in played),
                               "late": sum(p.warning_s is not None and p.warning_s > within_s for p in played)}
    if times:
        figures |= {"warning_median_s": float(np.median(times)), "warning_max_s": max(times)}
    if times and not figures["missed"]:  # with a miss the largest time bounds nothing
        figures |= {"warning_bound_s": max(times), "warning_bound_quantile": quantile_bounded_by_max(len(times),
                                                                                                    confidence)}
    return figures


def _share_verdict(state: str, figures: dict[str, Any], share: float, confidence: float,
                   within_s: float | None) -> Verdict:
    runs, ok = figures["runs"], figures["succeeded"]
    lower, upper = share_bounds(ok, runs, confidence)
    figures |= {"success_share_lower": lower, "success_share_upper": upper}
    success = f"warned within {within_s:g} s" if within_s is not None else "gave no warning"
    told = f"{state}: {success} in {ok}/{runs} runs"
    if within_s is not None:
        told += f" (missed {figures['missed']}, late {figures['late']}"
        told += f"; warning time median {figures['warning_median_s']:.2f} s, max {figures['warning_max_s']:.2f} s)" \
            if "warning_max_s" in figures else ")"
    else:
        told += f" ({figures['false_alerts']} false alert(s))"
    c = f"{confidence:.0%}"
    if lower >= share:
        return Verdict("pass", f"{told}; at {c} confidence at least {lower:.1%} of runs succeed (>= {share:.0%})")
    if upper < share:
        return Verdict("fail", f"{told}; at {c} confidence at most {upper:.1%} of runs succeed (< {share:.0%})")
    needed = next(n for n in range(1, 100000) if share_bounds(n, n, confidence)[0] >= share)
    return Verdict("skip", f"{told}; {runs} runs cannot show {share:.0%} of runs succeed at {c} confidence (the share "
                           f"lies in [{lower:.1%}, {upper:.1%}]); {needed} runs without a failure would "
                           "(--ncap-scenario-runs)")


def _rate_verdict(figures: dict[str, Any], limit: float, confidence: float) -> Verdict:
    events, hours = figures["false_alerts"], figures["hours"]
    lower, upper = rate_bounds(events, hours, confidence)
    figures |= {"false_alerts_per_hour_lower": lower, "false_alerts_per_hour_upper": upper}
    told = (f"normal driving: {events} false alert(s) in {hours * 60:.1f} min ({figures['false_alerts_per_hour']:.3g}"
            f"/h); at {confidence:.0%} confidence the rate lies in [{lower:.3g}, {upper:.3g}]/h")
    if upper <= limit:
        return Verdict("pass", f"{told}, within {limit:g}/h")
    if lower > limit:
        return Verdict("fail", f"{told}, above {limit:g}/h")
    return Verdict("skip", f"{told}: too little driving to tell against {limit:g}/h (--ncap-scenario-runs)")


def coverage(sequences: list[Sequence]) -> dict[str, dict[str, int]]:
    """How many sequences each level of each matrix dimension had."""
    count = {dimension: Counter(str(getattr(s.conditions, dimension)) for s in sequences if s.conditions)
             for dimension in ("lighting", "eyewear", "occlusion", "skin_type", "aperture_mm")}
    count["gaze"] = Counter(g for s in sequences for g in s.gazes)
    return {dimension: dict(sorted(levels.items())) for dimension, levels in count.items()}
