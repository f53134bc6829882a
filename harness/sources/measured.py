"""Evidence from measurements, the same for every source that measures (host, board)."""
from __future__ import annotations

import dataclasses
from typing import Any

from harness.gate.baseline import sample_summary
from harness.measure.latency import LatencyRun
from harness.measure.memory import MemoryReading
from harness.measure.power import PowerReading
from harness.measure.stats import InputSpread, LatencyStats
from harness.models.card import ModelCard
from harness.sources.base import Evidence
from harness.workspace import TIMING_ORDER_SEED


def latency_evidence(run: LatencyRun, grade: str, method: str, settings: dict[str, Any],
                     machine: dict[str, Any]) -> Evidence:
    """The upper 95 % bound on p99 over the timed inputs, with the samples' statistics and per-input spread."""
    stats = LatencyStats.from_samples(run.samples_ms)
    spread = InputSpread.from_samples(run.samples_ms, run.input_index)
    figures = {**dataclasses.asdict(stats), "settings": settings, "samples_ms": sample_summary(run.samples_ms),
               "machine": machine, "timing_inputs": spread.inputs, "timing_order_seed": TIMING_ORDER_SEED,
               "fastest_decile_p50_ms": spread.fastest_decile_p50_ms,
               "slowest_decile_p50_ms": spread.slowest_decile_p50_ms}
    return Evidence(stats.p99_ucb_ms, "latency p99 (upper 95 % bound)", grade, method, figures,
                    reason=None if stats.p99_ucb_ms is not None else
                    f"{stats.n} latency samples are too few for a 95 % bound on p99 (needs 299)")


def power_evidence(reading: PowerReading | None, reason: str) -> Evidence:
    """Average power over the latency window, graded as its meter says; `reason` where there is no reading."""
    if reading is None:
        return Evidence(None, "average power", None, None, reason=reason)
    return Evidence(reading.watts, "average power", reading.grade, reading.method,
                    {"watts": reading.watts, "joules": reading.joules, "window_s": reading.seconds})


def memory_evidence(reading: MemoryReading, grade: str, size_bytes: int) -> Evidence:
    """Peak resident memory of the process that ran the artifact, beside the artifact's file size."""
    return Evidence(reading.peak_mb, "peak memory", grade, reading.method, {
        "peak_mb": reading.peak_mb, "loaded_mb": reading.loaded_mb, "baseline_mb": reading.baseline_mb,
        "probes_mb": reading.probes_mb, "model_size_bytes": size_bytes})


def input_wording(card: ModelCard) -> str:
    """The input a timing fed, for the record's settings: layout, channels and size."""
    return f"{card.input.layout} {card.input.channels}x{card.input.size[0]}x{card.input.size[1]}"
