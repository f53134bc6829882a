"""Power over a measurement window: a real meter where one is reachable, else a labelled estimate.

Energy is integrated only over the window the latency loop runs in (as MLPerf Power does), so
the figure belongs to the inferences, not to the harness around them. Two kinds of meter follow
one protocol: an energy counter read at both ends of the window (RAPL, NVML), and a power sampler
polled by a background thread whose samples are integrated over the window (tegrastats, hwmon
INA2xx rails, a bench analyser over SCPI; see `harness.measure.meters`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from harness.errors import NcapError

RAPL_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class PowerReading:
    watts: float
    joules: float
    seconds: float
    grade: str  # "measured", "host-measured" or "estimated"
    method: str
    sample_rate_hz: float | None = None  # achieved rate of a sampling meter; None for a counter or estimate


class PowerMeter(Protocol):
    def start(self) -> None: ...

    def stop(self) -> PowerReading: ...


class EnergyCounterMeter:
    """A cumulative energy counter (joules) read at both ends of the window."""

    def __init__(self, read_joules: Callable[[], float], grade: str, method: str) -> None:
        self.read_joules, self.grade, self.method = read_joules, grade, method

    def start(self) -> None:
        self._started, self._energy = time.perf_counter(), self.read_joules()

    def stop(self) -> PowerReading:
        joules = self.read_joules() - self._energy
        seconds = time.perf_counter() - self._started
        return PowerReading(joules / seconds, joules, seconds, self.grade, self.method)


class RaplCounter:
    """Linux powercap/RAPL package counters (`intel-rapl:N/energy_uj`) summed, unwrapped into joules.

    Each read adds the change since the previous one, so a counter that wraps at
    `max_energy_range_uj` between two reads still adds up."""

    def __init__(self, zones: list[Path]) -> None:
        self.zones = zones
        self._last = self._raw()
        self._joules = 0.0

    def _raw(self) -> list[int]:
        return [int((zone / "energy_uj").read_text()) for zone in self.zones]

    def __call__(self) -> float:
        now = self._raw()
        for zone, before, after in zip(self.zones, self._last, now, strict=True):
            if after < before:
                after += int((zone / "max_energy_range_uj").read_text())
            self._joules += (after - before) / 1e6
        self._last = now
        return self._joules


def rapl_meter(zones: list[Path], grade: str = "host-measured") -> EnergyCounterMeter:
    return EnergyCounterMeter(RaplCounter(zones), grade, (
        f"Linux powercap RAPL energy counters ({len(zones)} package zone(s)), integrated over the latency "
        "window; whole package, not only this process"))


def integrate_window(times: np.ndarray, watts: np.ndarray, start: float, stop: float) -> float:
    """Joules between `start` and `stop` by the trapezoid rule over timestamped power samples,
    the signal linearly interpolated at both edges so nothing outside the window counts."""
    times, watts = np.asarray(times, dtype=np.float64), np.asarray(watts, dtype=np.float64)
    if times.size < 2 or stop <= start:
        raise NcapError(f"{times.size} power sample(s) over a {stop - start:.3g} s window cannot be integrated; "
                        "lengthen the window (--ncap-min-seconds) or raise the meter's sampling rate")
    inside = (times > start) & (times < stop)
    edges = np.interp([start, stop], times, watts)
    t = np.concatenate(([start], times[inside], [stop]))
    w = np.concatenate(([edges[0]], watts[inside], [edges[1]]))
    return float(np.sum((w[1:] + w[:-1]) / 2 * np.diff(t)))


WattsReader = Callable[[], float]
PowerSource = Callable[[], AbstractContextManager[WattsReader]]


def steady(read_watts: WattsReader) -> PowerSource:
    """A source that needs no opening or closing (a sysfs file, an NVML handle)."""
    return lambda: nullcontext(read_watts)


class SamplingMeter:
    """Polls a power source at `rate_hz` on a background thread from start to stop and integrates
    the samples over exactly that window. The source is opened per window (a fresh tegrastats
    process, a SCPI session) so no stale reading queued between windows is counted; its reader may
    block (the next tegrastats line, a SCPI answer): the thread sleeps only what is left of a period."""

    def __init__(self, source: PowerSource, rate_hz: float, grade: str, method: str,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if rate_hz <= 0:
            raise NcapError(f"power sampling rate must be positive, got {rate_hz} Hz")
        self.source, self.rate_hz, self.grade, self.method, self.clock = source, rate_hz, grade, method, clock
        self._samples: list[tuple[float, float]] = []
        self._first, self._stopping = threading.Event(), threading.Event()
        self._error: BaseException | None = None

    def _poll(self) -> None:
        try:
            with self.source() as read_watts:
                period, tick = 1 / self.rate_hz, self.clock()
                while True:
                    watts = read_watts()
                    self._samples.append((self.clock(), watts))
                    self._first.set()
                    if self._stopping.is_set():
                        break  # this last sample lies after the window's end
                    tick += period
                    self._stopping.wait(max(0.0, tick - self.clock()))
        except Exception as exc:  # surfaced by start()/stop(): a meter that fails gives no figure
            self._error = exc
        finally:
            self._first.set()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise NcapError(f"power meter failed ({self.method}): {self._error}") from self._error

    def start(self) -> None:
        self._samples.clear()
        self._first.clear()
        self._stopping.clear()
        self._error = None
        self._thread = threading.Thread(target=self._poll, name="ncap-power-sampler", daemon=True)
        self._thread.start()
        self._first.wait()  # the window opens after a first sample, so its left edge is not extrapolated
        self._raise_if_failed()
        self._started = self.clock()

    def stop(self) -> PowerReading:
        stopped = self.clock()
        self._stopping.set()
        self._thread.join()
        self._raise_if_failed()
        times, watts = np.array(self._samples).T
        seconds = stopped - self._started
        joules = integrate_window(times, watts, self._started, stopped)
        rate = (len(times) - 1) / (times[-1] - times[0])
        return PowerReading(joules / seconds, joules, seconds, self.grade,
                            f"{self.method}; {len(times)} samples at {rate:.3g} Hz, trapezoid-integrated "
                            "over the latency window", rate)


class CpuTimeEstimate:
    """Process CPU time over the window times the platform's per-core active power: an estimate."""

    def __init__(self, watts_per_core: float, source: str) -> None:
        import psutil  # here, not at the top: the device-side agent imports this module on boards without psutil

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
