"""The real power sources behind `PowerMeter`: NVML, tegrastats, hwmon INA2xx rails, a SCPI analyser.

Each is a small reader plus a constructor returning a meter from `harness.measure.power`; a lab
picks one with `--ncap-power-meter SPEC` (see `meter_from_spec`), no code change.
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import NcapError
from harness.measure.power import (
    CpuTimeEstimate,
    EnergyCounterMeter,
    PowerMeter,
    SamplingMeter,
    WattsReader,
    rapl_meter,
    rapl_zones,
    steady,
)

if TYPE_CHECKING:  # only for hints: the board agent imports the meters without the profile schema
    from harness.platform import Platform

HWMON_ROOT = Path("/sys/class/hwmon")
# A rail reading in a tegrastats line: `VDD_GPU_SOC 3191mW/3191mW` (Orin) or `POM_5V_IN 1198/1198`
# (older boards, milliwatts without a unit): NAME current/average. `RAM 2462/30536MB` must not match.
TEGRASTATS_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
# Rails that already carry the whole module's input; where one is reported, summing more would double count.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")


# --- NVML (NVIDIA GPUs) -------------------------------------------------------------------
def nvml_meter(index: int = 0, rate_hz: float = 10.0, grade: str = "host-measured") -> PowerMeter:
    """The GPU's energy counter (Volta and later) or, where the driver has none, its sampled power draw."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError as exc:
        raise NcapError("NVML power needs nvidia-ml-py: pip install 'dms-ncap[devices]'") from exc
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
    except pynvml.NVMLError as exc:
        raise NcapError(f"NVML cannot open GPU {index}: {exc}; is the NVIDIA driver loaded?") from exc
    where = f"GPU {index} ({name}), whole board, not only this process"
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError_NotSupported:
        return SamplingMeter(steady(lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1e3), rate_hz, grade,
                             f"NVML power draw (nvmlDeviceGetPowerUsage, averaged by the driver) of {where}")
    return EnergyCounterMeter(lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3, grade,
                              f"NVML total-energy counter (nvmlDeviceGetTotalEnergyConsumption) of {where}, "
                              "read at both ends of the latency window")


# --- tegrastats (Jetson / DRIVE Orin) -----------------------------------------------------
def parse_tegrastats(line: str) -> dict[str, float]:
    """Each rail's current power in watts from one tegrastats line; an empty dict for a line without rails."""
    return {name: int(now) / 1e3 for name, now, _average in TEGRASTATS_RAIL.findall(line)}


def board_watts(rails: dict[str, float], chosen: tuple[str, ...] = ()) -> float:
    """The chosen rails' sum; by default the module input rail where reported, else every rail."""
    if not rails:
        raise NcapError("a tegrastats line reported no power rails; does this board have INA rail monitors?")
    names = chosen or next(((name,) for name in INPUT_RAILS if name in rails), tuple(rails))
    missing = [name for name in names if name not in rails]
    if missing:
        raise NcapError(f"tegrastats reports no rail {', '.join(missing)}; it reports {', '.join(rails)}")
    return sum(rails[name] for name in names)


def tegrastats_meter(rails: tuple[str, ...] = (), interval_ms: int = 100, command: str = "tegrastats",
                     grade: str = "measured") -> SamplingMeter:
    @contextmanager
    def source() -> Iterator[WattsReader]:
        try:
            process = subprocess.Popen([command, "--interval", str(interval_ms)], stdout=subprocess.PIPE,
                                       text=True)
        except FileNotFoundError as exc:
            raise NcapError(f"{command} not found; it ships with NVIDIA Jetson Linux / DRIVE OS") from exc

        def read() -> float:
            line = process.stdout.readline()
            if not line:
                raise NcapError(f"{command} exited (code {process.poll()}) while sampling")
            return board_watts(parse_tegrastats(line), rails)
        try:
            yield read
        finally:
            process.terminate()
            process.wait()
    which = "+".join(rails) or "module input rail (VDD_IN/POM_5V_IN) or the sum of all rails"
    return SamplingMeter(source, 1e3 / interval_ms, grade, f"tegrastats rails {which}, every {interval_ms} ms")


# --- hwmon INA2xx rail sensors ------------------------------------------------------------
def ina_sensors(root: Path = HWMON_ROOT) -> dict[str, Path]:
    """hwmon devices whose driver is a TI INA2xx/INA3221 current monitor, by `hwmonN` folder name."""
    return {path.name: path for path in sorted(root.glob("hwmon*"))
            if (path / "name").is_file() and (path / "name").read_text().strip().startswith("ina")}


def hwmon_watts(sensor: Path, channel: int = 1) -> float:
    """`power<N>_input` (µW) where the driver offers it (ina2xx), else `curr<N>_input` (mA) x `in<N>_input`
    (mV, the bus voltage; ina3221)."""
    power = sensor / f"power{channel}_input"
    if power.is_file():
        return int(power.read_text()) / 1e6
    try:
        milliamps = int((sensor / f"curr{channel}_input").read_text())
        millivolts = int((sensor / f"in{channel}_input").read_text())
    except FileNotFoundError as exc:
        raise NcapError(f"{sensor} has neither power{channel}_input nor "
                        f"curr{channel}_input + in{channel}_input") from exc
    return milliamps * millivolts / 1e6


def hwmon_meter(sensor: Path, channel: int = 1, rate_hz: float = 100.0, grade: str = "measured") -> SamplingMeter:
    driver = (sensor / "name").read_text().strip()
    return SamplingMeter(steady(lambda: hwmon_watts(sensor, channel)), rate_hz, grade,
                         f"hwmon {driver} rail sensor {sensor} channel {channel}")


# --- a bench power analyser over SCPI -----------------------------------------------------
def scpi_meter(resource: str, query: str = "MEAS:POW?", backend: str = "", rate_hz: float = 10.0,
               grade: str = "measured") -> SamplingMeter:
    """`backend` is PyVISA's: "" for the system VISA or pyvisa-py, "file.yaml@sim" for pyvisa-sim."""
    try:
        import pyvisa
    except ImportError as exc:
        raise NcapError("a SCPI power analyser needs PyVISA: pip install 'dms-ncap[devices]'") from exc

    @contextmanager
    def source() -> Iterator[WattsReader]:
        manager = pyvisa.ResourceManager(backend)
        try:
            instrument = manager.open_resource(resource, read_termination="\n", write_termination="\n")
        except pyvisa.Error as exc:
            manager.close()
            raise NcapError(f"cannot open power analyser {resource}: {exc}") from exc
        def read() -> float:
            answer = instrument.query(query)
            try:
                return float(answer)
            except ValueError:
                raise NcapError(f"power analyser {resource} answered {answer!r} to {query!r}, not a number") from None
        try:
            yield read
        finally:
            instrument.close()
            manager.close()
    return SamplingMeter(source, rate_hz, grade, f"bench power analyser {resource} over SCPI ({query!r})")


SPEC_FORMS = "rapl, nvml[:GPU], tegrastats[:RAIL+RAIL], hwmon:hwmonN[:CHANNEL] or scpi:VISA_RESOURCE"


def check_spec(spec: str) -> None:
    """An NcapError naming the mistake when `spec` is not a meter spec; checked at start-up, so a typo is a usage
    error rather than an error in every cell. Whether the meter is there is known only where it is read."""
    kind, _, argument = spec.partition(":")
    name, _, channel = argument.partition(":")
    well_formed = {"rapl": not argument, "nvml": argument == "" or argument.isdigit(), "tegrastats": True,
                   "hwmon": bool(name) and (channel == "" or channel.isdigit()), "scpi": bool(argument)}
    if not well_formed.get(kind, False):
        raise NcapError(f"--ncap-power-meter {spec!r} is not a meter spec; use {SPEC_FORMS}")


def meter_from_spec(spec: str, grade: str = "host-measured") -> PowerMeter:
    """`rapl`, `nvml[:GPU]`, `tegrastats[:RAIL+RAIL]`, `hwmon:hwmonN[:CHANNEL]` or `scpi:VISA_RESOURCE`."""
    check_spec(spec)
    kind, _, argument = spec.partition(":")
    if kind == "rapl":
        zones = rapl_zones()
        if not zones:
            raise NcapError("no readable powercap/RAPL zone under /sys/class/powercap (needs root on recent kernels)")
        return rapl_meter(zones, grade)
    if kind == "nvml":
        return nvml_meter(int(argument or 0), grade=grade)
    if kind == "tegrastats":
        return tegrastats_meter(tuple(filter(None, argument.split("+"))), grade=grade)
    if kind == "hwmon":
        name, _, channel = argument.partition(":")
        sensors = ina_sensors()
        if name not in sensors:
            raise NcapError(f"no INA hwmon sensor {name!r}; found: {', '.join(sensors) or 'none'}")
        return hwmon_meter(sensors[name], int(channel or 1), grade=grade)
    return scpi_meter(argument, grade=grade)


def meter_for(platform: Platform, spec: str | None = None) -> PowerMeter | None:
    """The meter `spec` names (see `harness.measure.meters.meter_from_spec`), else the best source
    here for a host run; None when neither a meter nor an estimate exists."""
    if spec:
        return meter_from_spec(spec)
    zones = rapl_zones()
    if zones:
        return rapl_meter(zones)
    if platform.power is not None and platform.power.per_core_active_w is not None:
        figure = platform.power.per_core_active_w
        return CpuTimeEstimate(figure.value, figure.source)
    return None
