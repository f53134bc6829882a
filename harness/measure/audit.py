"""Self-audits of a timing, after MLPerf LoadGen's compliance tests TEST01 and TEST04.

A latency means something only if the timed calls did the work. TEST01 (timed outputs): the outputs the runtime
gave while it was timed are compared with a fresh session's outputs for the same inputs, as the accuracy path
gets them; a runtime that skips or short-cuts work under timing would show. TEST04 (repeated input): one input
timed repeatedly, in alternation with varied inputs, must not be much faster than they are; a runtime that caches
results by input would show. A run whose audits fail is invalid (harness.report.outcome)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.measure.latency import timed_call
from harness.runtimes.base import Runner

SPOT_CHECKS = 8  # timed outputs kept and compared (rows spread evenly over the timed inputs)
# TEST01 compares like with like (the same artifact, runtime and settings), so only float reordering separates
# them; an output off by more is not the same computation.
OUTPUT_TOLERANCE = 1e-4
REPEAT_RUNS = 100  # (varied, repeated) pairs timed in alternation for TEST04, at least
# and for at least this long: 100 pairs of a 10 us network take 2 ms, and their medians' ratio ranged 0.73-1.47
# over 40 audits here (a false alarm at 0.8); 0.2 s of pairs kept it within 0.93-1.05
REPEAT_MIN_S = 0.2
# TEST04: a repeated input may be at most this much faster than varied ones. Inputs do change a CNN's time a
# little (docs/measurements.md, "Latency over the input distribution": p50 spreads of a few %); a result cache
# makes a repeat tens of times faster.
REPEAT_SPEEDUP_LIMIT = 0.20


@dataclass(frozen=True)
class Audit:
    name: str
    passed: bool
    message: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SelfAudit:
    """The audits a source ran on a cell's timing, or the reason it could run none."""

    audits: tuple[Audit, ...] = ()
    grade: str | None = None  # of the timing audited
    reason: str | None = None


def spot_rows(inputs: int) -> frozenset[int]:
    """The rows of the timed inputs whose outputs are kept for TEST01."""
    return frozenset(np.linspace(0, inputs - 1, min(SPOT_CHECKS, inputs)).round().astype(int).tolist())


def timed_outputs_agree(timed: dict[int, np.ndarray], reference: Callable[[int], np.ndarray]) -> Audit:
    """TEST01: each kept timed output against the reference path's output for the same input row."""
    if not timed:
        return Audit("timed outputs", False, "no output of a timed run was kept, so none could be checked")
    worst, differing = 0.0, []
    for row, output in sorted(timed.items()):
        expected = reference(row)
        if output.shape != expected.shape or not np.isfinite(output).all():
            differing.append(row)
            continue
        error = float(np.max(np.abs(output - expected)) / max(1.0, float(np.max(np.abs(expected)))))
        worst = max(worst, error)
        if error > OUTPUT_TOLERANCE or np.argmax(output) != np.argmax(expected):
            differing.append(row)
    figures = {"spot_checked": len(timed), "differing": len(differing), "worst_relative_error": worst}
    if differing:
        return Audit("timed outputs", False, (
            f"{len(differing)} of {len(timed)} timed outputs differ from the accuracy path's outputs for the same "
            f"inputs (rows {differing}): the timed runs did not compute what is judged"), figures)
    return Audit("timed outputs", True, (f"{len(timed)} timed outputs match the accuracy path's (worst relative "
                                         f"error {worst:.1e}, tolerance {OUTPUT_TOLERANCE:g})"), figures)


def repeated_input_speed(runner: Runner, inputs: np.ndarray, runs: int = REPEAT_RUNS,
                         min_seconds: float = REPEAT_MIN_S) -> Audit:
    """TEST04: one input repeated vs the same input shifted by a distinct tiny offset each call, timed in
    alternation so a slow spell hits both alike. The shifted copies are other bytes, so a result cache never has
    them, but the same work for the network. Both sides get a new buffer per call, read once before it is timed."""
    for row in range(min(10, len(inputs))):  # warm-up: a fresh session's first calls are slow
        runner.infer(inputs[row:row + 1])
    first = inputs[:1]
    # the call's time by side and by its place in the pair: a runtime whose second call of two runs faster gives
    # each side a two-speed mix, whose median falls anywhere between the speeds; compared place by place it cannot
    timed_ns: dict[tuple[str, int], list[int]] = {(side, place): [] for side in ("repeat", "varied")
                                                  for place in (0, 1)}
    index, deadline = 0, time.perf_counter() + min_seconds
    while index < runs or time.perf_counter() < deadline or index % 2:  # whole ABBA quads: each side first alike
        unseen = first + np.asarray((index + 1) * 1e-6, dtype=first.dtype)
        again = first + np.zeros((), dtype=first.dtype)  # the same bytes each time, in a buffer as new
        unseen.sum(), again.sum()
        # ABBA: a call right after another can run faster (the runtime's threads still awake), so each side is
        # timed first in half of the pairs
        pair = (("varied", unseen), ("repeat", again))
        for place, (side, sample) in enumerate(pair if index % 2 == 0 else reversed(pair)):
            timed_ns[side, place].append(timed_call(runner, sample)[0])
        index += 1
    median = {key: float(np.median(times)) for key, times in timed_ns.items()}
    ratio = float(np.sqrt(median["repeat", 0] / median["varied", 0] * median["repeat", 1] / median["varied", 1]))
    figures = {"repeat_p50_ms": float(np.median(timed_ns["repeat", 0] + timed_ns["repeat", 1])) / 1e6,
               "varied_p50_ms": float(np.median(timed_ns["varied", 0] + timed_ns["varied", 1])) / 1e6,
               "repeat_speed_ratio": ratio, "pairs": index}
    wording = (f"one input repeated took {ratio:.2f}x the time of varied inputs (p50s, place by place in {index} "
               f"alternating pairs; at least {1 - REPEAT_SPEEDUP_LIMIT:.2f}x expected)")
    if ratio < 1 - REPEAT_SPEEDUP_LIMIT:
        return Audit("repeated input", False, f"{wording}: the runtime may be reusing results", figures)
    return Audit("repeated input", True, wording, figures)

