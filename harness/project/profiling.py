"""The profiling plan: time synthetic blocks on this machine within a time budget, then refit and sample more
where the predictor is wrong (adaptive sampling, after nn-Meter and LitePred), and write the platform's
predictor file.

Each block is timed twice: its wall time without the profiler (what a caller waits) and its kernels' times
under ONNX Runtime's profiler (what the per-type regressors learn); the difference is the runtime's overhead.
"""
from __future__ import annotations

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
from harness.project.kernels import Kernel, kernels_from_profile
from harness.project.predictor import Predictor, PredictorRecord, Sample, cross_validated_errors, timed_kernels
from harness.runtimes.onnxruntime.profile import PROFILE_WARMUP, seconds_per_run, time_and_profile

PRECISIONS = ("fp32", "fp16", "int8")
EXPLORE_SHARE = 0.4  # of the budget on random blocks before the first refit: every kernel type gets samples
ROUND_SHARE = 0.1  # of the budget per adaptive round
EXPLORE_IN_ROUND = 0.25  # of each round's blocks still random, so no region is left unsampled
TARGET = 0.10  # a kernel sample predicted further off than this (cross-validated) is a region to sample more
PROBE_S = 1.0  # seconds of timing of the probe
PROBE_EVERY_S = 60.0  # the probe is timed this often during the plan: a shared machine's speed moves for minutes
# The drift reference: a mid-network convolution, timed through the fit and beside every held-out network
PROBE: Config = {"block": "conv", "precision": "fp32", "channels": 64, "out_channels": 64, "size": 32, "kernel": 3,
                 "stride": 1, "depthwise": False, "activation": "Relu", "copies": 1}


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

    def probe_ms(self, threads: int) -> float:
        """The drift reference's median time now."""
        ...


class HostBench:
    batch = 1

    def __init__(self) -> None:
        self.machine, self.runtime = _machine(), f"onnxruntime {ort.__version__}"

    def time(self, configs: list[Config], threads: int) -> list[Sample]:
        return [block_sample(c, *time_and_profile(block_model(c), block_feeds(c), threads, evict_bytes(c)))
                for c in configs]

    def probe_ms(self, threads: int) -> float:
        return seconds_per_run(block_model(PROBE), block_feeds(PROBE), threads, PROBE_S) * 1e3


class DeviceBench:
    """The same blocks timed and profiled on a board, shipped a batch at a time through one connection."""

    batch = 16

    def __init__(self, agent: AgentSession) -> None:
        self.agent, self.machine, self.runtime = agent, f"the board {agent.address}", "onnxruntime on the board"

    def time(self, configs: list[Config], threads: int) -> list[Sample]:
        results = profile_blocks_on_device(self.agent, [(block_model(c), block_shape(c), evict_bytes(c))
                                                         for c in configs], threads)
        return [block_sample(config, *result) for config, result in zip(configs, results, strict=True)]

    def probe_ms(self, threads: int) -> float:
        return self.time([PROBE], threads)[0].wall_ms or float("nan")


def block_sample(config: Config, wall_s: float, events: list[dict[str, Any]], graph: bytes) -> Sample:
    """A block's sample from its wall time and its per-layer profile (`time_and_profile`'s result)."""
    kernels = kernels_from_profile(onnx.load_from_string(graph).graph, events, PROFILE_WARMUP, evict_bytes(config))
    return Sample(config, wall_s * 1e3, kernels)


def profile_platform(plan: Plan, bench: Bench, platform: str = "host",
                     progress: Callable[[float, str], None] | None = None) -> Predictor:
    """Run the plan on `bench` to its budget and return the fitted predictor (`progress` gets the share of the
    budget spent and a line of status as it goes)."""
    report = progress or _bar
    rng = np.random.default_rng(plan.seed)
    started = time.monotonic()
    samples: list[Sample] = []
    queue: list[Config] = []

    def spent() -> float:
        return time.monotonic() - started

    status, readings, read_at, timed_at, next_reading = "exploring", [], [], [], 0.0
    while spent() < plan.budget_s:
        if spent() >= next_reading:
            read_at.append(spent())
            readings.append(bench.probe_ms(plan.threads))
            next_reading = spent() + PROBE_EVERY_S
        if not queue:
            if spent() < EXPLORE_SHARE * plan.budget_s or not samples:  # a slow first probe leaves none to refine
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
    read_at.append(spent())
    readings.append(bench.probe_ms(plan.threads))
    # the speed the samples are brought to is the probe's median over the plan, not its last reading
    probe = {"block": PROBE, "ms": float(np.median(readings)), "readings_ms": readings, "readings_s": read_at}
    record = PredictorRecord(platform, bench.machine, bench.runtime, plan.threads,
                             datetime.now(UTC).isoformat(timespec="seconds"), round(spent(), 1), probe)
    report(1.0, f"{len(samples)} blocks in {spent() / 60:.1f} min")
    return Predictor(record, at_median_speed(samples, timed_at, probe))


def at_median_speed(samples: list[Sample], timed_at: list[float], probe: dict[str, Any]) -> list[Sample]:
    """The samples' times brought to the plan's median speed: a shared machine's speed moves by 5-10 % over a plan
    (the probe's readings, minute by minute), and a block timed in a fast minute would teach the regressors a
    fast kernel. Each block's times are divided by the probe's reading interpolated to when it was timed (seconds
    into the plan), over the readings' median; readings that are not positive numbers (a board's failed probe) are
    left out."""
    read_at, readings = np.asarray(probe["readings_s"], float), np.asarray(probe["readings_ms"], float)
    usable = np.isfinite(readings) & (readings > 0)
    if not usable.any():
        return samples
    slower = np.interp(timed_at, read_at[usable], readings[usable]) / np.median(readings[usable])
    return [Sample(sample.block, None if sample.wall_ms is None else sample.wall_ms / factor,
                   [replace(k, microseconds=None if k.microseconds is None else k.microseconds / factor)
                    for k in sample.kernels])
            for sample, factor in zip(samples, slower, strict=True)]


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
