"""A roofline per precision: each layer takes the longer of its compute time and its memory time."""
from __future__ import annotations

from dataclasses import dataclass

from harness.errors import NcapError
from harness.platform import Platform
from harness.project.graph import GraphCost


@dataclass(frozen=True)
class Roofline:
    ops_per_s: float  # attainable peak for the precision
    bytes_per_s: float | None  # memory bandwidth; None leaves the memory roof out (a compute-only bound)
    overhead_s: float  # fixed cost of one inference (runtime entry, input copy)
    per_layer_s: float  # fixed cost of each executed layer (kernel dispatch or launch)
    efficiency: float  # share of the peak a real layer attains
    source: str  # where each figure comes from, for the record's method

    def seconds(self, cost: GraphCost) -> float:
        compute = self.ops_per_s * self.efficiency
        return self.overhead_s + sum(
            max(layer.ops / compute, layer.bytes / self.bytes_per_s if self.bytes_per_s else 0.0) + self.per_layer_s
            for layer in cost.layers)


def target_roofline(platform: Platform, precision: str, efficiency: float = 1.0,
                    efficiency_source: str = "uncalibrated (1.0): a lower bound on latency") -> Roofline:
    """The chip's datasheet roofline; no per-inference or per-layer overhead is known for a target."""
    peak = platform.peak_tops.get(precision)
    if peak is None:
        raise NcapError(f"{platform.name}'s profile gives no peak_tops.{precision}; a projection needs the chip's "
                        "peak operations for the precision (add it with its source)")
    bandwidth = platform.memory_bandwidth_gbs
    memory = (f"memory {bandwidth.value:g} GB/s ({bandwidth.source})" if bandwidth
              else "no memory bandwidth in the profile, so no memory roof (compute-only)")
    return Roofline(peak.value * 1e12, bandwidth.value * 1e9 if bandwidth else None, 0.0, 0.0, efficiency,
                    f"{precision} peak {peak.value:g} TOPS ({peak.source}); {memory}; efficiency {efficiency:.3g} "
                    f"({efficiency_source})")
