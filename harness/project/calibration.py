"""Calibrating a chip's roofline efficiency on the source article's documented latencies.

The datasheet roofline is a lower bound: real layers reach only part of the peak. Where the article
documents a network's optimised latency on the chip, the efficiency is solved so that the projection
of that same network (same architecture, input size and precision) equals it; every other cell on
that chip and precision is then a prediction. The calibration cell itself reproduces the article by
construction and is labelled as such, never counted as a prediction.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.platform import ArticleBaseline, Platform
from harness.project.graph import graph_cost
from harness.project.roofline import Roofline, target_roofline

# Efficiency is a share of the datasheet peak; above 1 the article's figure beats the datasheet itself
EFFICIENCY_RANGE = (1e-4, 1.0)


@dataclass(frozen=True)
class CalibratedRoofline:
    roofline: Roofline
    baseline: ArticleBaseline | None  # the article's figure it was solved on; None when uncalibrated


def calibration_baseline(platform: Platform, precision: str) -> ArticleBaseline | None:
    return next((b for b in platform.baselines
                 if b.after_precision == precision and b.zoo_model and b.input_size), None)


def calibrated_roofline(platform: Platform, precision: str,
                        reference: Callable[[ArticleBaseline], Path]) -> CalibratedRoofline:
    """The chip's roofline for `precision`, its efficiency solved on the article's baseline when the
    profile names one; `reference(baseline)` builds that baseline's network as an ONNX artifact."""
    baseline = calibration_baseline(platform, precision)
    if baseline is None:
        return CalibratedRoofline(target_roofline(platform, precision), None)
    cost = graph_cost(reference(baseline))
    target_s = baseline.after_ms / 1e3

    def seconds(efficiency: float) -> float:
        return target_roofline(platform, precision, efficiency).seconds(cost)

    low, high = EFFICIENCY_RANGE
    where = (f"{baseline.model} at {baseline.input_size[0]}x{baseline.input_size[1]} {precision}, "
             f"{baseline.after_ms:g} ms ({baseline.source}; {baseline.assumption or 'no assumption stated'})")
    if seconds(high) > target_s:  # memory-bound: even the full peak is slower than the article
        return CalibratedRoofline(target_roofline(platform, precision, high, (
            f"not calibrated: at the full datasheet peak the projection of {where} is already "
            f"{seconds(high) * 1e3:.3g} ms, so no efficiency reproduces it")), None)
    for _ in range(60):  # bisection in log space: latency falls monotonically as efficiency rises
        middle = (low * high) ** 0.5
        low, high = (middle, high) if seconds(middle) > target_s else (low, middle)
    return CalibratedRoofline(target_roofline(platform, precision, high, f"calibrated on {where}"), baseline)
