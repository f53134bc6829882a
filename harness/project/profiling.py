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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harness.project.blocks import Config, block_feeds, block_model, perturb, sample_config
from harness.project.host import seconds_per_run
from harness.project.kernels import profile_model
from harness.project.predictor import Predictor, PredictorRecord, Sample

PRECISIONS = ("fp32", "fp16", "int8")
EXPLORE_SHARE = 0.4  # of the budget on random blocks before the first refit: every kernel type gets samples
ROUND_SHARE = 0.1  # of the budget per adaptive round
EXPLORE_IN_ROUND = 0.25  # of each round's blocks still random, so no region is left unsampled
TARGET = 0.10  # a kernel sample predicted further off than this (cross-validated) is a region to sample more
WALL_S, PROFILE_S, PROBE_S = 0.05, 0.08, 1.0  # seconds of timing per block, wall and profiled; the probe's
# The drift reference: a mid-network convolution, timed at the end of the fit and beside every held-out network
PROBE: Config = {"block": "conv", "precision": "fp32", "channels": 64, "out_channels": 64, "size": 32, "kernel": 3,
                 "stride": 1, "depthwise": False, "activation": "Relu"}


@dataclass(frozen=True)
class Plan:
    budget_s: float
    threads: int = 1
    precisions: tuple[str, ...] = PRECISIONS
    seed: int = 0


def time_block(config: Config, threads: int) -> Sample:
    """One block's unprofiled wall time and its kernels' profiled times."""
    model, feeds = block_model(config), block_feeds(config)
    wall_s = seconds_per_run(model, feeds, threads, WALL_S)
    runs = int(np.clip(PROFILE_S / max(wall_s, 1e-6), 5, 50))
    return Sample(config, wall_s * 1e3, profile_model(model, feeds, threads, runs=runs))


def probe_ms(threads: int, budget_s: float = PROBE_S) -> float:
    """The drift reference's median time now."""
    return seconds_per_run(block_model(PROBE), block_feeds(PROBE), threads, budget_s) * 1e3


def profile_platform(plan: Plan, platform: str = "host",
                     progress: Callable[[float, str], None] | None = None) -> Predictor:
    """Run the plan to its budget and return the fitted predictor (`progress` gets the share of the budget
    spent and a line of status as it goes)."""
    report = progress or _bar
    rng = np.random.default_rng(plan.seed)
    started = time.monotonic()
    samples: list[Sample] = []
    queue: list[Config] = []

    def spent() -> float:
        return time.monotonic() - started

    status = "exploring"
    while spent() < plan.budget_s:
        if not queue:
            if spent() < EXPLORE_SHARE * plan.budget_s:
                queue = [sample_config(rng, str(rng.choice(plan.precisions)))]
            else:
                queue, status = _adaptive_round(samples, plan, rng, spent())
        samples.append(time_block(queue.pop(0), plan.threads))
        report(min(0.99, spent() / plan.budget_s), f"{len(samples)} blocks; {status}")
    probe = {"block": PROBE, "ms": probe_ms(plan.threads)}
    record = PredictorRecord(platform, _machine(), f"onnxruntime {ort.__version__}", plan.threads,
                             datetime.now(UTC).isoformat(timespec="seconds"), round(spent(), 1), probe)
    report(1.0, f"{len(samples)} blocks in {spent() / 60:.1f} min")
    return Predictor(record, samples)


def _adaptive_round(samples: list[Sample], plan: Plan, rng: np.random.Generator,
                    spent_s: float) -> tuple[list[Config], str]:
    """The next round's blocks: neighbours of the blocks whose kernels the current fit predicts worst, each
    kernel type weighted by its share of samples off target and of the time, plus some random ones."""
    predictor = Predictor(PredictorRecord("", "", "", plan.threads, "", spent_s, {}), samples)
    per_block_s = spent_s / len(samples)
    count = max(4, int(ROUND_SHARE * plan.budget_s / per_block_s))
    owners: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        for kernel in sample.kernels:
            if kernel.microseconds is not None:
                owners.setdefault(kernel.kind, []).append(index)
    total_us = sum(k.microseconds or 0.0 for s in samples for k in s.kernels)
    weights, worst = {}, {}
    for kind, kernels in predictor.by_kind.items():
        errors = np.abs(predictor.cross_validated_errors(kind))
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
