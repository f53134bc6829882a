"""Power meters: each source's parser on recorded samples, and energy integrated only over the window."""
from __future__ import annotations

import stat
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from harness.errors import NcapError
from harness.measure import meters
from harness.measure.power import EnergyCounterMeter, RaplCounter, SamplingMeter, integrate_window, steady

DATA = Path(__file__).parent / "data" / "power"


def square_wave(t: np.ndarray | float) -> np.ndarray:
    """2 W and 6 W alternating every 50 ms: 4 W on average over whole periods."""
    return np.where(np.floor(np.asarray(t) / 0.05) % 2 == 0, 2.0, 6.0)


@pytest.mark.qualification(kind="known answer")
def test_integration_counts_only_the_window_of_a_known_signal():
    times = np.arange(0, 1.0, 0.001)
    watts = square_wave(times)
    watts[times < 0.2] = 100.0  # load outside the window must not count
    watts[times > 0.8] = 100.0
    assert integrate_window(times, watts, 0.2, 0.8) == pytest.approx(0.6 * 4.0, rel=0.01)
    assert integrate_window(times, watts, 0.2, 0.25) == pytest.approx(0.05 * 2.0, rel=0.02)


@pytest.mark.qualification(kind="known answer")
def test_integration_interpolates_at_the_edges():
    assert integrate_window(np.array([0.0, 1.0]), np.array([0.0, 10.0]), 0.5, 1.0) == pytest.approx(3.75)
    with pytest.raises(NcapError, match="cannot be integrated"):
        integrate_window(np.array([0.0]), np.array([1.0]), 0.0, 1.0)


@pytest.mark.qualification(kind="known answer")
def test_sampling_meter_on_a_known_square_wave_records_its_rate():
    started = time.perf_counter()
    meter = SamplingMeter(steady(lambda: float(square_wave(time.perf_counter() - started))), 500, "measured",
                          "fake square wave")
    meter.start()
    time.sleep(0.5)  # ten whole periods
    reading = meter.stop()
    assert reading.watts == pytest.approx(4.0, rel=0.1)
    assert reading.joules == pytest.approx(reading.watts * reading.seconds)
    assert 100 < reading.sample_rate_hz <= 600 and "Hz" in reading.method
    assert reading.grade == "measured"


def test_sampling_meter_reports_a_source_that_fails():
    def broken() -> float:
        raise OSError("sensor gone")
    meter = SamplingMeter(steady(broken), 100, "measured", "broken")
    with pytest.raises(NcapError, match="sensor gone"):
        meter.start()


@pytest.mark.qualification(kind="known answer")
def test_energy_counter_meter_and_rapl_wraparound(tmp_path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "max_energy_range_uj").write_text("1000000\n")
    (zone / "energy_uj").write_text("900000\n")
    counter = RaplCounter([zone])
    (zone / "energy_uj").write_text("100000\n")  # wrapped: +0.2 J
    assert counter() == pytest.approx(0.2)
    energy = iter([10.0, 13.0])
    meter = EnergyCounterMeter(lambda: next(energy), "host-measured", "fake counter")
    meter.start()
    reading = meter.stop()
    assert reading.joules == pytest.approx(3.0) and reading.sample_rate_hz is None


@pytest.mark.parametrize("recording, rails, watts", [
    ("tegrastats-agx-orin.txt", {"VDD_GPU_SOC": 3.191, "VDD_CPU_CV": 0.797, "VIN_SYS_5V0": 4.2, "NC": 0.0,
                                 "VDDQ_VDD2_1V8AO": 0.503}, 3.191 + 0.797 + 4.2 + 0.503),
    ("tegrastats-orin-nano.txt", {"VDD_IN": 4.85, "VDD_CPU_GPU_CV": 0.551, "VDD_SOC": 1.378}, 4.85),
    ("tegrastats-nano.txt", {"POM_5V_IN": 1.198, "POM_5V_GPU": 0.0, "POM_5V_CPU": 0.159}, 1.198),
])
def test_tegrastats_parser_on_recorded_lines(recording, rails, watts):
    line = (DATA / recording).read_text().splitlines()[0]
    assert meters.parse_tegrastats(line) == pytest.approx(rails)  # RAM 4526/30536MB etc. are not rails
    assert meters.board_watts(meters.parse_tegrastats(line)) == pytest.approx(watts)


def test_tegrastats_rail_choice_and_errors():
    rails = meters.parse_tegrastats((DATA / "tegrastats-agx-orin.txt").read_text().splitlines()[1])
    assert meters.board_watts(rails, ("VDD_GPU_SOC",)) == pytest.approx(9.954)
    with pytest.raises(NcapError, match="no rail VDD_IN"):
        meters.board_watts(rails, ("VDD_IN",))
    with pytest.raises(NcapError, match="no power rails"):
        meters.board_watts(meters.parse_tegrastats("RAM 2462/7620MB CPU [9%@1510]"))


def test_tegrastats_meter_runs_the_tool_per_window(tmp_path):
    fake = tmp_path / "tegrastats"  # stands in for the board's tool: prints the recorded lines in a loop
    fake.write_text(f"#!/bin/sh\nwhile true; do cat {DATA / 'tegrastats-agx-orin.txt'}; sleep 0.01; done\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    meter = meters.tegrastats_meter(("VDD_GPU_SOC",), interval_ms=10, command=str(fake))
    meter.start()
    time.sleep(0.2)
    reading = meter.stop()
    assert 3.191 <= reading.watts <= 9.954 and reading.sample_rate_hz > 0
    assert "VDD_GPU_SOC" in reading.method


def test_hwmon_ina_sensors_from_a_recorded_sysfs_tree():
    sensors = meters.ina_sensors(DATA / "hwmon")
    assert list(sensors) == ["hwmon0", "hwmon1"]  # coretemp is not a rail monitor
    assert meters.hwmon_watts(sensors["hwmon0"]) == pytest.approx(2.375)  # power1_input, µW
    assert meters.hwmon_watts(sensors["hwmon1"], 2) == pytest.approx(5.0 * 1.02)  # mA x mV
    with pytest.raises(NcapError, match="neither power3_input"):
        meters.hwmon_watts(sensors["hwmon1"], 3)
    reading = _window(meters.hwmon_meter(sensors["hwmon1"], 1, rate_hz=200))
    assert reading.watts == pytest.approx(19.072 * 0.216) and "ina3221" in reading.method


def test_scpi_analyser_through_pyvisa_sim():
    pytest.importorskip("pyvisa_sim", reason="pyvisa-sim is in the test extra: pip install -e '.[test]'")
    meter = meters.scpi_meter("TCPIP::192.0.2.10::INSTR", backend=f"{DATA / 'analyser.yaml'}@sim", rate_hz=50)
    reading = _window(meter)
    assert reading.watts == pytest.approx(3.75) and reading.sample_rate_hz > 0
    unknown = meters.scpi_meter("TCPIP::192.0.2.10::INSTR", "MEAS:TEMP?", f"{DATA / 'analyser.yaml'}@sim")
    with pytest.raises(NcapError, match="answered 'ERROR' to 'MEAS:TEMP[?]', not a number"):
        unknown.start()


@pytest.mark.parametrize("energy_supported", [True, False])
def test_nvml_prefers_the_energy_counter(monkeypatch, energy_supported):
    class NotSupported(Exception):
        pass
    readings = iter([1000.0, 1000.0, 4000.0])  # mJ

    def energy(_handle):
        if not energy_supported:
            raise NotSupported()
        return next(readings)
    fake = types.SimpleNamespace(
        NVMLError=Exception, NVMLError_NotSupported=NotSupported, nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda index: index, nvmlDeviceGetName=lambda _h: "Fake GPU",
        nvmlDeviceGetTotalEnergyConsumption=energy, nvmlDeviceGetPowerUsage=lambda _h: 75000)  # mW
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter = meters.nvml_meter(0, rate_hz=200)
    reading = _window(meter)
    if energy_supported:
        assert isinstance(meter, EnergyCounterMeter) and reading.joules == pytest.approx(3.0)
    else:
        assert isinstance(meter, SamplingMeter) and reading.watts == pytest.approx(75.0)
    assert "Fake GPU" in reading.method


def test_an_unknown_meter_spec_lists_the_known_ones():
    with pytest.raises(NcapError, match="'watt-o-matic' is not a meter spec.*nvml"):
        meters.meter_from_spec("watt-o-matic")


def _window(meter, seconds: float = 0.05):
    meter.start()
    time.sleep(seconds)
    return meter.stop()

