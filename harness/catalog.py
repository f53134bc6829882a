"""The requirements a run checks: their ids, their wording and the figure each test asserts.

One table read by the fixtures (JUnit properties), the gate and the report's traceability matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Requirement:
    id: str
    wording: str
    figures: tuple[str, ...]  # keys of the asserted figure in the metric's record, the first present counts
    unit: str


REQUIREMENTS = {
    "latency": Requirement("NCAP-LAT-01", "p99 detection latency (upper 95 % confidence bound), batch 1",
                           ("p99_ucb_ms", "projected_ms"), "ms"),
    "memory": Requirement("NCAP-MEM-01", "peak resident memory of the inference process", ("peak_mb",), "MB"),
    "power": Requirement("NCAP-PWR-01", "average power over the latency window", ("watts",), "W"),
    "accuracy": Requirement("NCAP-ACC-{precision}", "top-1 accuracy drop vs FP32 of the same network",
                            ("drop_pt",), "pt"),
    "placement": Requirement("NCAP-NPU-01", "every node runs on the NPU (none falls back to the CPU), as compiled "
                             "for the chip", ("fallback_nodes",), "nodes"),
    "regression": Requirement("NCAP-REG-01", "no regression against the baseline (latency, memory, accuracy)",
                              ("latency_ratio",), "x"),
    "audit": Requirement("NCAP-AUD-01", "self-audits of the timing: timed outputs match the accuracy path's "
                         "(MLPerf TEST01), a repeated input is not faster than varied ones (TEST04)",
                         ("repeat_speed_ratio",), "x"),
    # one record per protocol state (its `state` field); normal driving asserts false alerts per hour instead
    "scenario": Requirement("NCAP-SCN-01", "Euro NCAP driver state warned in time, without false alerts "
                            "(harness/scenarios/protocol.yaml)", ("warning_bound_s", "false_alerts_per_hour"), "s"),
}


def requirement_id(metric: str, precision: str) -> str:
    return REQUIREMENTS[metric].id.format(precision=precision.upper())


def asserted_figure(metric: str, figures: dict[str, Any]) -> float | None:
    """The figure a metric's test asserts, or None when the record has none."""
    return next((figures[key] for key in REQUIREMENTS[metric].figures if figures.get(key) is not None), None)


# The exported network, unoptimised: every accuracy drop is measured against its cell. `prune:0.5,fp32` ends in
# FP32 too but is an optimised network with a drop of its own.
REFERENCE_RECIPE = "fp32"


def is_reference(recipe: str) -> bool:
    return recipe == REFERENCE_RECIPE


# The profile of the machine the harness runs on (the --platform default): its CPU runs the network, so there is no
# NPU placement to check there.
HOST_PLATFORM = "host"


def is_requirement(metric: str, recipe: str, platform: str) -> bool:
    """Whether a record counts toward compliance: not the gate, not the self-audits (they decide whether the
    evidence is valid), not the reference's accuracy, and not NPU placement on the host."""
    return metric not in ("regression", "audit") and not (metric == "accuracy" and is_reference(recipe)) and not (
        metric == "placement" and platform == HOST_PLATFORM)
