"""A projected figure for one artifact on one roofline, with how it was obtained."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.project.graph import graph_cost
from harness.project.roofline import Roofline


@dataclass(frozen=True)
class Projection:
    latency_ms: float
    memory_mb: float
    ops: float
    layers: int
    latency_method: str
    memory_method: str


def project(model: Path, roofline: Roofline) -> Projection:
    cost = graph_cost(model)
    return Projection(
        latency_ms=roofline.seconds(cost) * 1e3,
        memory_mb=(cost.weight_bytes + cost.peak_activation_bytes) / 2**20,
        ops=cost.ops, layers=len(cost.layers),
        latency_method=(f"roofline projection of {len(cost.layers)} layers ({cost.ops / 1e9:.3g} Gop at batch 1; "
                        f"per layer the longer of compute and memory time, from ONNX shape inference): "
                        f"{roofline.source}"),
        memory_method=("weights at their stored precision plus the largest activation set one layer reads and "
                       "writes: a lower bound (no runtime, allocator or OS footprint)"))
