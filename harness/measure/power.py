"""Power over a measurement window: a real meter where the OS offers one, else a labelled estimate.

Energy is integrated only over the window the latency loop runs in (as MLPerf Power does), so
the figure belongs to the inferences, not to the harness around them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from harness.platform import Platform

RAPL_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class PowerReading:
    watts: float
    joules: float
    seconds: float
    grade: str  # "host-measured" or "estimated"
    method: str


class PowerMeter(Protocol):
    def start(self) -> None: ...

    def stop(self) -> PowerReading: ...


class RaplMeter:
    """Linux powercap/RAPL package-energy counters (`intel-rapl:N/energy_uj`), summed over packages."""

    def __init__(self, zones: list[Path]) -> None:
        self.zones = zones

    def _read(self) -> list[int]:
        return [int((zone / "energy_uj").read_text()) for zone in self.zones]

    def start(self) -> None:
        self._started, self._energy = time.perf_counter(), self._read()

    def stop(self) -> PowerReading:
        seconds = time.perf_counter() - self._started
        joules = 0.0
        for zone, before, after in zip(self.zones, self._energy, self._read(), strict=True):
            if after < before:  # the counter wrapped at max_energy_range_uj
                after += int((zone / "max_energy_range_uj").read_text())
            joules += (after - before) / 1e6
        return PowerReading(joules / seconds, joules, seconds, "host-measured",
                            f"Linux powercap RAPL energy counters ({len(self.zones)} package zone(s)), "
                            "integrated over the latency window; whole package, not only this process")


class CpuTimeEstimate:
    """Process CPU time over the window times the platform's per-core active power: an estimate."""

    def __init__(self, watts_per_core: float, source: str) -> None:
        self.watts_per_core, self.source = watts_per_core, source
        self._process = psutil.Process()

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return times.user + times.system

    def start(self) -> None:
        self._started, self._cpu = time.perf_counter(), self._cpu_seconds()

    def stop(self) -> PowerReading:
        seconds = time.perf_counter() - self._started
        joules = (self._cpu_seconds() - self._cpu) * self.watts_per_core
        return PowerReading(joules / seconds, joules, seconds, "estimated",
                            f"process CPU time over the latency window x {self.watts_per_core:g} W per busy core "
                            f"({self.source}); no power meter on this machine")


def rapl_zones(root: Path = RAPL_ROOT) -> list[Path]:
    """Top-level readable RAPL package zones (`intel-rapl:0`, not the `:0:0` sub-zones)."""
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    readable = []
    for zone in zones:
        try:
            int((zone / "energy_uj").read_text())
        except (OSError, ValueError):
            continue
        readable.append(zone)
    return readable


def meter_for(platform: Platform) -> PowerMeter | None:
    """The best power source here for a host run; None when neither a meter nor an estimate exists."""
    zones = rapl_zones()
    if zones:
        return RaplMeter(zones)
    if platform.power is not None:
        figure = platform.power.per_core_active_w
        return CpuTimeEstimate(figure.value, figure.source)
    return None
