"""The profiling plan: time synthetic blocks on this machine within a time budget, then refit and sample more
where the predictor is wrong (adaptive sampling, after nn-Meter and LitePred), and write the platform's
predictor file.

Each block is timed twice: its wall time without the profiler (what a caller waits) and its kernels' times
under ONNX Runtime's profiler (what the per-type regressors learn); the difference is the runtime's overhead.
"""
from __future__ import annotations

import json
import platform as host_platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort

from harness.device.remote import AgentSession, profile_blocks_on_device
from harness.project.blocks import (
    Config,
    block_feeds,
    block_model,
    block_shape,
    evict_bytes,
    perturb,
    sample_config,
)
from harness.project.drift import Drift, panel_sized, plan_drifts
from harness.project.kernels import Kernel, kernels_from_profile
from harness.project.predictor import Predictor, PredictorRecord, Sample, cross_validated_errors, timed_kernels
from harness.runtimes.onnxruntime.profile import PROFILE_WARMUP, WALL_S, seconds_per_run, time_and_profile

PRECISIONS = ("fp32", "fp16", "int8")
EXPLORE_SHARE = 0.4  # of the budget on random blocks before the first refit: every kernel type gets samples
ROUND_SHARE = 0.1  # of the budget per adaptive round
EXPLORE_IN_ROUND = 0.25  # of each round's blocks still random, so no region is left unsampled
TARGET = 0.10  # a kernel sample predicted further off than this (cross-validated) is a region to sample more
PANEL_BLOCKS = 40  # random blocks re-timed every minute: the machine's speed by kernel size (4 s a reading here)
PANEL_EVERY_S = 60.0  # a shared machine's speed moves for minutes, and slow spells slow small kernels most


@dataclass(frozen=True)
class Plan:
    budget_s: float
    threads: int = 1
    precisions: tuple[str, ...] = PRECISIONS
    seed: int = 0


class Bench(Protocol):
    """Where blocks are timed: this machine (HostBench) or a board (DeviceBench)."""

    machine: str
    runtime: str
    batch: int  # blocks timed per call: one here, a shipment on a board

    def time(self, configs: list[Config], threads: int) -> list[Sample]: ...

    def wall_ms(self, configs: list[Config], threads: int) -> list[float | None]:
        """The blocks' wall times now, timed as `time` times them but without their profiles (the drift panel);
        None for a block that could not be timed."""
        ...


class HostBench:
    batch = 1

    def __init__(self) -> None:
        self.machine, self.runtime = _machine(), f"onnxruntime {ort.__version__}"
        self._built: dict[str, tuple[bytes, dict[str, np.ndarray]]] = {}  # the panel's blocks, built once

    def time(self, configs: list[Config], threads: int) -> list[Sample]:
        return [block_sample(c, *time_and_profile(block_model(c), block_feeds(c), threads, evict_bytes(c)))
                for c in configs]

    def wall_ms(self, configs: list[Config], threads: int) -> list[float | None]:
        times: list[float | None] = []
        for config in configs:
            key = json.dumps(config, sort_keys=True)
            if key not in self._built:
                self._built[key] = block_model(config), block_feeds(config)
            times.append(seconds_per_run(*self._built[key], threads, WALL_S, evict_bytes(config)) * 1e3)
        return times


class DeviceBench:
    """The same blocks timed and profiled on a board, shipped a batch at a time through one connection."""

    batch = 16

    def __init__(self, agent: AgentSession) -> None:
        self.agent, self.machine, self.runtime = agent, f"the board {agent.address}", "onnxruntime on the board"

    def time(self, configs: list[Config], threads: int) -> list[Sample]:
        results = profile_blocks_on_device(self.agent, [(block_model(c), block_shape(c), evict_bytes(c))
                                                         for c in configs], threads)
        return [block_sample(config, *result) for config, result in zip(configs, results, strict=True)]

    def wall_ms(self, configs: list[Config], threads: int) -> list[float | None]:
        return [sample.wall_ms for sample in self.time(configs, threads)]


def block_sample(config: Config, wall_s: float, events: list[dict[str, Any]], graph: bytes) -> Sample:
    """A block's sample from its wall time and its per-layer profile (`time_and_profile`'s result)."""
    kernels = kernels_from_profile(onnx.load_from_string(graph).graph, events, PROFILE_WARMUP, evict_bytes(config),
                                   block=True)
    return Sample(config, wall_s * 1e3, kernels)


def profile_platform(plan: Plan, bench: Bench, platform: str = "host",
                     progress: Callable[[float, str], None] | None = None) -> Predictor:
    """Run the plan on `bench` to its budget and return the fitted predictor (`progress` gets the share of the
    budget spent and a line of status as it goes). A panel of random blocks is timed first, as samples like any
    other, then re-timed every PANEL_EVERY_S and at the end: the machine's speed by kernel size through the plan."""
    report = progress or _bar
    rng = np.random.default_rng(plan.seed)
    started = time.monotonic()

    def spent() -> float:
        return time.monotonic() - started

    panel = _panel(rng, plan.precisions)
    samples = bench.time(panel, plan.threads)
    timed_at = [spent() / 2] * len(samples)
    readings = [(timed_at[0], [s.wall_ms for s in samples])]  # (seconds into the plan, the panel's wall times)
    queue: list[Config] = []
    status = "exploring"
    while spent() < plan.budget_s:
        if spent() - readings[-1][0] >= PANEL_EVERY_S:
            readings.append(_read(bench, panel, plan.threads, spent))
        if not queue:
            if spent() < EXPLORE_SHARE * plan.budget_s:
                queue = [sample_config(rng, str(rng.choice(plan.precisions))) for _ in range(bench.batch)]
            else:
                queue, status = _adaptive_round(samples, plan, rng, spent())
        batch_from = spent()
        batch = bench.time(queue[:bench.batch], plan.threads)
        now = spent()
        samples += batch
        timed_at += [(batch_from + now) / 2] * len(batch)
        queue = queue[bench.batch:]
        report(min(0.99, now / plan.budget_s), f"{len(samples)} blocks; {status}")
    readings.append(_read(bench, panel, plan.threads, spent))
    drift_panel = {"blocks": panel, "kernels": [len(s.kernels) for s in samples[:len(panel)]],
                   "readings_s": [at for at, _ in readings], "readings_ms": [times for _, times in readings]}
    record = PredictorRecord(platform, bench.machine, bench.runtime, plan.threads,
                             datetime.now(UTC).isoformat(timespec="seconds"), round(spent(), 1), drift_panel)
    report(1.0, f"{len(samples)} blocks in {spent() / 60:.1f} min")
    return Predictor(record, at_plan_speed(samples, timed_at, drift_panel))


def at_plan_speed(samples: list[Sample], timed_at: list[float], panel: dict[str, Any]) -> list[Sample]:
    """The samples' times brought to the plan's median speed: a shared machine's speed moves over a plan, and a
    block timed in a slow minute would teach the regressors a slow kernel. The panel's readings give the
    machine's drift at each reading, by kernel size (`plan_drifts`); each kernel's time is divided by the drift
    at its size, interpolated to when its block was timed (seconds into the plan), and the block's wall time by
    its kernels' drift weighted by their times. Readings of too few blocks (a board's failed ones) are left out."""
    read = [(at, drift) for at, drift in zip(panel["readings_s"], plan_drifts(panel["readings_ms"], panel["kernels"]),
                                              strict=True) if drift is not None]
    if not read:
        return samples
    read_at = [at for at, _ in read]
    intercepts = np.interp(timed_at, read_at, [drift.intercept for _, drift in read])
    slopes = np.interp(timed_at, read_at, [drift.slope for _, drift in read])
    brought = []
    for sample, intercept, slope in zip(samples, intercepts, slopes, strict=True):
        drift = Drift(float(intercept), float(slope))
        timed = [k.microseconds for k in sample.kernels if k.microseconds is not None]
        brought.append(Sample(sample.block, None if sample.wall_ms is None else sample.wall_ms / drift.at(timed),
                              [replace(k, microseconds=None if k.microseconds is None
                                       else k.microseconds / drift.factor(k.microseconds))
                               for k in sample.kernels]))
    return brought


def _panel(rng: np.random.Generator, precisions: tuple[str, ...]) -> list[Config]:
    """PANEL_BLOCKS random blocks small enough to keep built (`panel_sized`)."""
    panel: list[Config] = []
    while len(panel) < PANEL_BLOCKS:
        config = sample_config(rng, str(rng.choice(precisions)))
        if panel_sized(config):
            panel.append(config)
    return panel


def _read(bench: Bench, panel: list[Config], threads: int,
          spent: Callable[[], float]) -> tuple[float, list[float | None]]:
    """One reading of the panel's wall times, dated at its middle."""
    read_from = spent()
    times = bench.wall_ms(panel, threads)
    return (read_from + spent()) / 2, times


def _adaptive_round(samples: list[Sample], plan: Plan, rng: np.random.Generator,
                    spent_s: float) -> tuple[list[Config], str]:
    """The next round's blocks: neighbours of the blocks whose kernels the current fit predicts worst, each
    kernel type weighted by its share of samples off target and of the time, plus some random ones."""
    per_block_s = spent_s / len(samples)
    count = max(4, int(ROUND_SHARE * plan.budget_s / per_block_s))
    owners: dict[str, list[int]] = defaultdict(list)
    by_kind: dict[str, list[Kernel]] = defaultdict(list)
    for index, kernel in timed_kernels(samples):
        owners[kernel.kind].append(index)
        by_kind[kernel.kind].append(kernel)
    total_us = sum(k.microseconds or 0.0 for kernels in by_kind.values() for k in kernels)
    weights, worst = {}, {}
    for kind, kernels in by_kind.items():
        errors = np.abs(cross_validated_errors(kernels))
        off = errors > TARGET
        time_share = sum(k.microseconds or 0.0 for k in kernels) / max(total_us, 1e-9)
        weights[kind] = float(off.mean()) * time_share ** 0.5
        worst[kind] = [owners[kind][i] for i in np.flatnonzero(off)]
    configs = [sample_config(rng, str(rng.choice(plan.precisions))) for _ in range(int(count * EXPLORE_IN_ROUND))]
    kinds = [kind for kind in weights if weights[kind] > 0 and worst[kind]]
    if kinds:
        shares = np.array([weights[kind] for kind in kinds])
        for kind in rng.choice(kinds, size=count - len(configs), p=shares / shares.sum()):
            configs.append(perturb(samples[int(rng.choice(worst[kind]))].block, rng))
    ranked = sorted(kinds, key=weights.__getitem__, reverse=True)[:3]
    return configs, "refining " + ", ".join(ranked) if ranked else "sampling at random"


def _bar(fraction: float, status: str) -> None:
    """A progress bar on stderr, redrawn in place."""
    filled = int(30 * fraction)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {status[:80]:80}")
    if fraction >= 1.0:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return host_platform.processor() or host_platform.machine()
