"""The vocabulary of a run: its options, a cell (model x recipe x platform), and one measurement as judged."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.device.address import DeviceAddress
from harness.device.lab import LabAddress
from harness.gate.baseline import Baseline
from harness.gate.compare import Thresholds
from harness.measure.latency import LatencyPlan
from harness.optimize.recipe import parse_recipe
from harness.platform import Platform
from harness.requirements import Requirements
from harness.scenarios.plan import ScenarioPlan
from harness.verdict import Verdict


@dataclass(frozen=True)
class RunOptions:
    platform: Platform
    models: tuple[str, ...]  # zoo names or model-card paths
    recipes: tuple[str, ...]  # e.g. ("fp32", "int8", "fuse,int8"); each ends in a precision
    requirements: Requirements
    report_dir: Path
    dataset_dir: Path | None = None
    latency_plan: LatencyPlan = LatencyPlan()
    threads: int = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    assert_estimates: bool = False
    requirements_file: Path | None = None
    baseline: Baseline | None = None  # --ncap-baseline: adds the regression gate
    gate: Thresholds = Thresholds()
    strict: bool = False  # homologation mode: only `measured` (on-target) evidence can pass
    power_meter: str | None = None  # --ncap-power-meter SPEC, read on the board with a device; else RAPL or estimate
    device: DeviceAddress | LabAddress | None = None  # --device or the profile's `device:`: figures are measured on
    # that board, or on a board taken from a labgrid pool
    denormals_as_zero: bool = False  # --ncap-denormals-as-zero: off, as deployed runtimes run
    scenarios: ScenarioPlan = ScenarioPlan()  # the scenario tests (suites/test_scenarios.py)


@dataclass(frozen=True)
class Cell:
    model: str
    recipe: str
    platform: str

    @property
    def precision(self) -> str:
        """The precision the recipe's last step ends in: `qat` and `mixed` end in int8."""
        return parse_recipe(self.recipe)[-1].precision

    @property
    def id(self) -> str:
        return f"{self.model}-{self.recipe.replace(',', '+')}-{self.platform}"


@dataclass
class Record:
    """One measurement as judged: the figures, how they were obtained, and the verdict."""

    cell: Cell
    metric: str
    verdict: Verdict
    grade: str | None = None
    method: str | None = None
    limit: float | None = None
    limit_source: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
