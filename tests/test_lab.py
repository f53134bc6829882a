"""Boards from a labgrid pool, with everything real on 127.0.0.1: labgrid's coordinator and exporter, started here,
publish the test sshd as places; runs acquire, measure and release them through `--device labgrid://...`."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lab import LABGRID_INSTALLED, local_lab
from sshd import SSHD, free_port, local_sshd

from conftest import SUITE, tiny_classifier, write_card, write_image_folder
from harness.device.lab import NEEDS_EXTRA, LabAddress, LabLease, _held_place
from harness.errors import NcapError

needs_labgrid = pytest.mark.skipif(importlib.util.find_spec("labgrid") is None,
                                   reason="labgrid is not installed: pip install 'dms-ncap[lab]'")
needs_lab = pytest.mark.skipif(not (LABGRID_INSTALLED and os.path.exists(SSHD)),
                               reason="labgrid or an OpenSSH server is missing here: pip install 'dms-ncap[lab]', "
                                      "apt install openssh-server")
PLACES = {"bench-1": {"soc": "qcs8255"}, "bench-2": {"soc": "qcs8255"}, "bench-3": {"soc": "tda4vm"}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with local_sshd(tmp_path_factory.mktemp("board")) as board:
        with local_lab(tmp_path_factory.mktemp("lab"), board, PLACES) as running:
            yield running


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny model's card and an image folder, shared by the module's runs (and their artifact cache)."""
    folder = tmp_path_factory.mktemp("inputs")
    tiny_classifier(folder / "tiny.onnx")
    return write_card(folder, "tiny.onnx"), write_image_folder(folder / "images")


def start_run(folder: Path, inputs: tuple[Path, Path], device: str, *options: str) -> subprocess.Popen:
    """A compliance run of the tiny model (fp32 and int8 latency and memory) in its own process, as CI starts one."""
    card, images = inputs
    folder.mkdir()
    environment = {**os.environ, "NCAP_CACHE": str(card.parent / "cache")}
    # a ctrl-c as a terminal sends it: tests started as a background job of a script (`.ci/run &`) inherit SIGINT
    # ignored, and Python then never raises KeyboardInterrupt (the stopped-run test timed out that way)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", str(SUITE), "-m", "ncap", "-k", "latency or memory", "--model", str(card),
         "--dataset", str(images), "--device", device, "--ncap-report", str(folder / "report"),
         "--ncap-min-runs", "300", "--ncap-min-seconds", "1", "--ncap-warmup", "2", "-p", "no:cacheprovider",
         *options], cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def read_until(run: subprocess.Popen, text: str) -> str:
    """The run's output up to and including the first line with `text`."""
    seen = []
    for line in run.stdout:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"the run ended without {text!r}: {''.join(seen)[-3000:]}")


def gated_python(folder: Path, gate: Path) -> Path:
    """The board's interpreter, holding the agent back until `gate` exists: a run that keeps its place busy."""
    wrapper = folder / "python-behind-a-gate"
    wrapper.write_text(f"""#!/bin/sh
case "$*" in *harness.device.agent*) while [ ! -e "{gate}" ]; do sleep 0.1; done ;; esac
exec "{sys.executable}" "$@"
""")
    wrapper.chmod(0o755)
    return wrapper


def finished(run: subprocess.Popen, before: str = "") -> tuple[str, list[dict]]:
    output = before + run.communicate(timeout=600)[0]
    assert run.returncode == 0, output[-4000:]
    report = Path(run.args[run.args.index("--ncap-report") + 1])
    return output, [json.loads(line) for line in (report / "results.jsonl").read_text().splitlines()]


def lab_line(output: str, what: str) -> tuple[str, str]:
    """(place, UTC time) of the run's `[ncap] lab: acquired/released place P ... at T` line."""
    line = next(line for line in output.splitlines() if f"lab: {what} place" in line)
    return line.split(" place ")[1].split()[0], line.rsplit(" at ", 1)[1].strip()


@needs_lab
def test_two_runs_on_one_place_take_turns_and_both_measure(lab, inputs, tmp_path):
    """The first run holds the place (its board run waits behind a gate) until the second reports waiting."""
    gate = tmp_path / "gate"
    address = lab.address("bench-1", python=gated_python(tmp_path, gate))
    first_run = start_run(tmp_path / "first", inputs, address, "--precision", "fp32")
    first_head = read_until(first_run, "lab: acquired place bench-1")
    second_run = start_run(tmp_path / "second", inputs, address, "--precision", "fp32")
    second_head = read_until(second_run, "still waiting for place bench-1")
    gate.touch()
    (first_out, first), (second_out, second) = finished(first_run, first_head), finished(second_run, second_head)
    for records in (first, second):
        latency = next(r for r in records if r["metric"] == "latency")
        assert latency["verdict"] == "pass" and latency["grade"] == "measured" and latency["n"] >= 300
        assert latency["lab_place"] == "bench-1" and latency["board"].endswith(f"@127.0.0.1:{lab.board.port}")
        assert "labgrid place bench-1" in latency["method"]
    # never at once: the second run, told who held the place, acquired it after the first released it
    assert "(bench-1: acquired by" in second_out
    assert lab_line(first_out, "released")[1] <= lab_line(second_out, "acquired")[1]
    assert lab.acquired_by("bench-1") is None


@needs_lab
def test_two_workers_measure_two_cells_at_once_on_two_places(lab, inputs, tmp_path):
    pytest.importorskip("xdist")
    output, records = finished(start_run(tmp_path / "pool", inputs, lab.address(soc="qcs8255"),
                                         "--precision", "fp32,int8", "-n", "2"))
    latency = {r["cell"]: r for r in records if r["metric"] == "latency"}
    assert len(latency) == 2 and all(r["verdict"] == "pass" for r in latency.values()), output[-3000:]
    one, other = latency.values()
    assert {one["lab_place"], other["lab_place"]} == {"bench-1", "bench-2"}
    assert output.count("lab: acquired place") == 2 and output.count("lab: released place") == 2  # each worker's
    # each worker held its place from its acquisition until its latency record: the two spans overlap
    assert one["lab_acquired_at"] < other["timestamp"] and other["lab_acquired_at"] < one["timestamp"]
    assert lab.acquired_by("bench-1") is None and lab.acquired_by("bench-2") is None


@needs_lab
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_stopped_run_leaves_the_place_released(lab, inputs, tmp_path, stop):
    run = start_run(tmp_path / "stopped", inputs, lab.address("bench-2"), "--precision", "fp32",
                    "--ncap-min-seconds", "120")
    read_until(run, "lab: acquired place bench-2")
    assert lab.acquired_by("bench-2") is not None
    read_until(run, "on ssh://")  # into the board run
    time.sleep(1)
    run.send_signal(stop)
    rest = run.communicate(timeout=60)[0]
    if stop == signal.SIGINT:  # pytest's session end released it, and said so
        assert run.returncode == pytest.ExitCode.INTERRUPTED and "lab: released place bench-2" in rest, rest
    deadline = time.monotonic() + 20
    while lab.acquired_by("bench-2") is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert lab.acquired_by("bench-2") is None


@needs_lab
def test_a_place_someone_else_holds_times_out_with_a_clear_error(lab):
    lab.client("-p", "bench-3", "acquire", user="alice")
    try:
        lease = LabLease(LabAddress.parse(lab.address("bench-3", timeout=2)), lambda message: None)
        started = time.monotonic()
        with pytest.raises(NcapError, match=r"place bench-3 did not come free within 2 s \(bench-3: acquired by "
                                            r".*/alice since .*\); wait for it or ask its holder to release it"):
            lease.acquire()
        assert time.monotonic() - started < 30
        with pytest.raises(NcapError, match="did not come free"):  # the next cell hears it at once
            lease.acquire()
        lease.release()
    finally:
        lab.client("-p", "bench-3", "release", user="alice")
    assert lab.acquired_by("bench-3") is None  # nobody else's place was touched, and our reservation is gone
    assert "bench-3" not in lab.client("reservations").stdout


@needs_lab
def test_tags_no_place_has_are_named_with_the_places_there_are(lab):
    with pytest.raises(NcapError, match=r"no place on the labgrid coordinator .* matches soc=orin; it has: bench-1"):
        LabLease(LabAddress.parse(lab.address(soc="orin")), lambda message: None).acquire()


@needs_lab
def test_a_coordinator_that_is_down_is_a_clear_error(lab):
    address = LabAddress.parse(lab.address("bench-1", coordinator=f"127.0.0.1:{free_port()}"))
    with pytest.raises(NcapError, match=r"coordinator at 127.0.0.1:\d+ does not answer .*start labgrid-coordinator"):
        LabLease(address, lambda message: None).acquire()


@needs_labgrid
@pytest.mark.parametrize("text, problem", [
    ("labgrid://", "names neither a place nor tags"),
    ("labgrid://bench-1/extra", "not a labgrid:// address"),
    ("labgrid://?SOC=qcs8255", "SOC is not a TAG=VALUE filter"),
    ("labgrid://?soc=", "soc is not a TAG=VALUE filter"),
    ("labgrid://bench-1?timeout=nan", "timeout=nan is not a positive number of seconds"),
    ("labgrid://bench-1?timeout=0", "timeout=0 is not a positive number"),
])
def test_a_malformed_lab_address_is_named(text, problem):
    with pytest.raises(NcapError, match=problem):
        LabAddress.parse(text)


@settings(max_examples=150, deadline=None)
@given(st.builds("labgrid://{}?{}".format, st.text(max_size=10), st.text(max_size=30)))
def test_any_lab_address_is_an_address_or_one_clear_error(text):
    try:
        address = LabAddress.parse(text)
    except NcapError as exc:
        assert str(exc) and "\n" not in str(exc), str(exc)
        return
    assert (address.place or address.tags) and math.isfinite(address.timeout_s) and address.timeout_s > 0


def test_a_network_service_becomes_the_ssh_address_with_the_run_s_ssh_options():
    address = LabAddress("qcs8255-3", {}, "lab:20408", ssh={"python": "/opt/py", "known_hosts": "/lab/known_hosts"})
    held = _held_place({"place": "qcs8255-3", "tags": {"soc": "qcs8255"}, "address": "10.0.4.13", "port": 2222,
                        "username": "root", "password": "s3cret", "at": "2026-12-01T18:00:00.000+00:00"}, address)
    board = held.board
    assert (str(board), board.python, str(board.known_hosts), board.password) == (
        "ssh://root@10.0.4.13:2222", "/opt/py", "/lab/known_hosts", "s3cret")
    assert "s3cret" not in repr(held)  # the lab's password never reaches a log line


@needs_labgrid
def test_the_coordinator_comes_from_the_address_or_lg_coordinator(monkeypatch):
    monkeypatch.setenv("LG_COORDINATOR", "lab.example:20408")
    assert LabAddress.parse("labgrid://?soc=qcs8255").coordinator == "lab.example:20408"
    chosen = LabAddress.parse("labgrid://bench-1?coordinator=other:1&timeout=90&soc=qcs8255&identity=/k")
    assert (chosen.coordinator, chosen.place, chosen.tags, chosen.timeout_s, chosen.ssh) == (
        "other:1", "bench-1", {"soc": "qcs8255"}, 90.0, {"identity": "/k"})


@needs_labgrid
@pytest.mark.parametrize("text", ["labgrid://", "labgrid://?timeout=5"])
def test_an_lg_env_file_gives_the_place_coordinator_and_key(tmp_path, monkeypatch, text):
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    env = write_lg_env(tmp_path, "bench-3", "lab.example:20408")
    address = LabAddress.parse(text, env)
    assert (address.place, address.tags, address.coordinator, address.ssh["identity"]) == (
        "bench-3", {}, "lab.example:20408", str(tmp_path / "keys" / "lab_key"))
    assert LabAddress.parse(text, env, lg_coordinator="other:1").coordinator == "other:1"  # --lg-coordinator wins
    assert LabAddress.parse("labgrid://?soc=tda4vm", env).place is None  # tags in the address win over the file
    bad = tmp_path / "two.yaml"
    bad.write_text("targets: {a: {resources: {}}, b: {resources: {}}}\n")
    with pytest.raises(NcapError, match="has targets a, b: name one `main`"):
        LabAddress.parse(text, bad)


def write_lg_env(folder: Path, place: str, coordinator: str) -> Path:
    """A labgrid environment file as labs keep them: the target's place, its SSH key, the coordinator."""
    env = folder / "lab-env.yaml"
    env.write_text(f"""\
targets:
  main:
    resources:
      RemotePlace:
        name: {place}
    drivers:
      SSHDriver:
        keyfile: keys/lab_key
options:
  coordinator_address: {coordinator}
""")
    return env


@needs_lab
def test_a_run_with_labgrid_s_own_env_file(lab, inputs, tmp_path):
    """`--lg-env` (labgrid's pytest plugin) names the place, coordinator and key; the run acquires and measures."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "lab_key").write_bytes(lab.board.identity.read_bytes())
    (tmp_path / "keys" / "lab_key").chmod(0o600)
    env = write_lg_env(tmp_path, "bench-3", lab.coordinator)
    device = f"labgrid://?python={sys.executable}&known_hosts={lab.board.known_hosts}"
    output, records = finished(start_run(tmp_path / "env", inputs, device, "--lg-env", str(env),
                                         "--precision", "fp32", "--ncap-min-seconds", "0.05"))
    latency = next(r for r in records if r["metric"] == "latency")
    assert latency["verdict"] == "pass" and latency["lab_place"] == "bench-3", output[-3000:]
    assert lab.acquired_by("bench-3") is None


def test_without_labgrid_the_message_names_the_extra(monkeypatch, pytester):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "labgrid" else real(name, *a))
    with pytest.raises(NcapError, match=r"needs labgrid: pip install 'dms-ncap\[lab\]'"):
        LabAddress.parse("labgrid://?soc=qcs8255")
    pytester.makepyfile(test_ncap=SUITE.read_text())
    result = pytester.runpytest("-m", "ncap", "--device", "labgrid://bench-1", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {NEEDS_EXTRA}" in result.stderr.lines
