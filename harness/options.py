"""The command line turned into a run's options, each value checked at start-up: a mistake is one usage-error
line naming the option and the fix (pytest exit 4), before anything is measured."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from harness.cell import RunOptions
from harness.device.address import DeviceAddress
from harness.device.lab import LabAddress
from harness.errors import NcapError
from harness.gate.baseline import load_baseline
from harness.gate.compare import Thresholds
from harness.measure.latency import MIN_RUNS_FOR_P99_BOUND, LatencyPlan
from harness.measure.meters import check_spec
from harness.optimize.recipe import expand_recipe, known_precisions, parse_recipe
from harness.platform import Platform, load_platform
from harness.requirements import load_requirements
from harness.scenarios.plan import ScenarioPlan

DEFAULT_MODELS = ("dmsnet", "mobilenet_v3_small", "resnet18")


def run_options(config: pytest.Config) -> RunOptions:
    """The run's options from the command line, each checked; a bad one is an NcapError naming it and the fix."""
    platform = load_platform(config.getoption("platform"))
    models = tuple(m.strip() for value in config.getoption("model") or DEFAULT_MODELS for m in value.split(","))
    recipes = (tuple(expand_recipe(r) for r in config.getoption("recipe"))
               or _precisions(config.getoption("precision"), platform))
    for recipe in recipes:
        parse_recipe(recipe)  # a malformed recipe is a usage error now, not an error in every cell
    requirements_file = config.getoption("ncap_requirements")
    plan = _latency_plan(config)
    if config.getoption("ncap_power_meter"):
        check_spec(config.getoption("ncap_power_meter"))
    baseline_file = config.getoption("ncap_baseline")
    gate = _thresholds(config)
    dataset_dir = config.getoption("dataset")
    if dataset_dir is not None and not dataset_dir.is_dir():
        raise NcapError(f"--dataset {dataset_dir} is not a folder; give an ImageFolder tree (DIR/<class>/*.png)")
    threads = config.getoption("ncap_threads")
    if threads is not None and threads < 1:
        raise NcapError(f"--ncap-threads {threads} is not a thread count; give 1 or more")
    extra = {"threads": threads} if threads else {}
    return RunOptions(platform=platform, models=models, recipes=recipes, scenarios=_scenario_plan(config),
                      requirements=load_requirements(requirements_file), report_dir=_report_dir(config),
                      dataset_dir=dataset_dir, latency_plan=plan,
                      assert_estimates=config.getoption("ncap_assert_estimates"),
                      requirements_file=requirements_file, strict=config.getoption("ncap_strict"),
                      power_meter=config.getoption("ncap_power_meter"), device=_device(config, platform),
                      baseline=load_baseline(baseline_file) if baseline_file else None, gate=gate,
                      denormals_as_zero=config.getoption("ncap_denormals_as_zero"), **extra)


def _latency_plan(config: pytest.Config) -> LatencyPlan:
    """The plan the options ask for, or an NcapError naming the option that cannot give a p99 bound."""
    warmup, runs, seconds = (config.getoption(name) for name in ("ncap_warmup", "ncap_min_runs", "ncap_min_seconds"))
    if warmup < 0:
        raise NcapError(f"--ncap-warmup {warmup} is negative; give 0 or more warm-up runs")
    if runs < MIN_RUNS_FOR_P99_BOUND:
        raise NcapError(f"--ncap-min-runs {runs} is too few for a 95 % upper bound on p99; give at least "
                        f"{MIN_RUNS_FOR_P99_BOUND}")
    if not math.isfinite(seconds) or seconds < 0:
        raise NcapError(f"--ncap-min-seconds {seconds} is not a finite, non-negative duration; give e.g. 2")
    return LatencyPlan(warmup, runs, seconds)


def _scenario_plan(config: pytest.Config) -> ScenarioPlan:
    runs, fps = config.getoption("ncap_scenario_runs"), config.getoption("ncap_fps")
    if runs < 1:
        raise NcapError(f"--ncap-scenario-runs {runs} is not a number of sequences; give 1 or more")
    if not (math.isfinite(fps) and fps > 0):
        raise NcapError(f"--ncap-fps {fps} is not a camera rate; give a positive number such as 30")
    return ScenarioPlan(runs, fps, config.getoption("ncap_scenario_protocol"),
                        tuple(config.getoption("ncap_scenario_recording")))


def _report_dir(config: pytest.Config) -> Path:
    """The report folder, made now: a path that is a file, or a folder that cannot be written, is a usage error
    before anything is measured, not a lost report after."""
    folder = config.getoption("ncap_report")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".ncap-write-check"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise NcapError(f"--ncap-report {folder} cannot hold the report ({exc.strerror or exc}); give a folder "
                        "that can be written") from exc
    return folder


def _thresholds(config: pytest.Config) -> Thresholds:
    """The gate's thresholds, or an NcapError naming the option: a NaN or out-of-range one would pass any change."""
    alpha, latency, memory, accuracy = (config.getoption(f"ncap_gate_{name}")
                                        for name in ("alpha", "latency", "memory", "accuracy"))
    if not (math.isfinite(alpha) and 0 < alpha < 1):
        raise NcapError(f"--ncap-gate-alpha {alpha} is not a significance level; give a number between 0 and 1")
    for name, value in (("latency", latency), ("memory", memory), ("accuracy", accuracy)):
        if not (math.isfinite(value) and value >= 0):
            raise NcapError(f"--ncap-gate-{name} {value} is not a finite, non-negative threshold")
    return Thresholds(alpha, latency, memory, accuracy)


def _device(config: pytest.Config, platform: Platform) -> DeviceAddress | LabAddress | None:
    if config.getoption("device") == "":
        raise NcapError("--device is empty; give ssh://USER@HOST[:PORT], labgrid://PLACE or labgrid://?TAG=VALUE, "
                        "or leave the option out")
    address = config.getoption("device") or platform.device
    if not address:
        return None
    if address.startswith("labgrid:"):  # labgrid's pytest plugin adds --lg-env and --lg-coordinator
        lg_env = config.getoption("lg_env", None) or os.environ.get("LG_ENV")
        return LabAddress.parse(address, Path(lg_env) if lg_env else None, config.getoption("lg_coordinator", None))
    return DeviceAddress.parse(address)


def _precisions(text: str | None, platform: Platform) -> tuple[str, ...]:
    if text is not None and not text.strip(", "):
        raise NcapError(f"--precision {text!r} names no precision; known: {', '.join(known_precisions())}")
    precisions = (tuple(p.strip() for p in text.split(",")) if text
                  else tuple(platform.default_precisions or platform.precisions))
    unknown = [p for p in precisions if p not in known_precisions()]
    if unknown:
        raise NcapError(f"unknown precision {', '.join(unknown)}; known: {', '.join(known_precisions())}")
    return precisions
