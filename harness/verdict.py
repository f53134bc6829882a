"""Verdicts: a figure against a limit, with a message that gives the figure, the limit and the margin."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.requirements import Limit

Status = Literal["pass", "fail", "skip", "error"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    message: str


def format_figure(value: float) -> str:
    """Three significant digits without scientific notation for the magnitudes the harness meets."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def judge(what: str, figure: float, unit: str, limit: Limit) -> Verdict:
    """`what` names the figure, e.g. "latency p99 (95 % upper bound)"."""
    margin = limit.value - figure
    share = f" ({abs(margin) / limit.value:.1%} of the limit)" if limit.value else ""
    shown = f"{what} {format_figure(figure)} {unit}"
    if limit.admits(figure):
        return Verdict("pass", f"{shown} within {limit.wording()} {unit}; margin {format_figure(margin)} {unit}{share}")
    return Verdict("fail", f"{shown} breaks the limit {limit.wording()} {unit} by {format_figure(-margin)} {unit}"
                           f"{share}; limit from {limit.source}")
