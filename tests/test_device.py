"""Runs on a board over SSH, against a real OpenSSH server on 127.0.0.1: success, wrong host key,
unknown host key, unreachable host, runner crash mid-run; each with its outcome and nothing measured lost."""
from __future__ import annotations

import json
import os
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from sshd import SSHD, free_port, keygen, local_sshd

from conftest import SUITE
from harness.device.address import DeviceAddress
from harness.device.remote import DeviceJob, DeviceRunError, run_on_device
from harness.errors import NcapError
from harness.measure.latency import LatencyPlan
from harness.merge import main as ncap_main
from harness.platform import Runtime
from harness.project import blocks
from harness.project.kernels import FEATURES, Kernel
from harness.project.predictor import PredictorRecord, Sample, add_samples, load_predictor, predictor_path

pytestmark = pytest.mark.skipif(not os.path.exists(SSHD), reason="no OpenSSH server here: apt install openssh-server")

QUICK = LatencyPlan(warmup_runs=2, min_runs=300, min_seconds=0.05)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    with local_sshd(tmp_path_factory.mktemp("board")) as running:
        yield running


@pytest.fixture
def tiny_job(tmp_path) -> DeviceJob:
    from conftest import tiny_classifier

    inputs = np.random.default_rng(0).standard_normal((30, 3, 16, 16)).astype(np.float32)
    return DeviceJob(tiny_classifier(tmp_path / "tiny.onnx"), inputs, np.random.default_rng(1).permutation(30),
                     Runtime(name="onnxruntime"), "fp32", 1, QUICK)


def crashing_python(folder: Path, after_s: float) -> Path:
    """An interpreter that lets the agent start, then kills it with SIGKILL: a runner crash mid-run."""
    wrapper = folder / "python-that-crashes"
    wrapper.write_text(f"""#!/bin/sh
case "$*" in
  *harness.device.agent*) "{sys.executable}" "$@" & child=$!; sleep {after_s}; kill -9 $child; wait $child; exit $? ;;
esac
exec "{sys.executable}" "$@"
""")
    wrapper.chmod(0o755)
    return wrapper


def test_a_board_run_streams_back_timings_memory_and_predictions(board, tiny_job):
    run = run_on_device(DeviceAddress.parse(board.address()), tiny_job)
    assert run.done and len(run.samples_ms) >= 300 and min(run.samples_ms) > 0
    assert run.memory.peak_mb >= run.memory.loaded_mb > run.memory.baseline_mb > 0
    assert len(run.top1) == 30 and run.score_shapes[0] == [30, 5]
    assert run.settings["runtime"].startswith("onnxruntime") and run.settings["device"].endswith(f":{board.port}")


def test_a_changed_host_key_is_refused(board, tiny_job, tmp_path):
    impostor = keygen(tmp_path / "other_host_key")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{board.port} {Path(f'{impostor}.pub').read_text()}")
    with pytest.raises(NcapError, match="not the key known_hosts holds for it.*man in the middle"):
        run_on_device(DeviceAddress.parse(board.address(known_hosts=known_hosts)), tiny_job)


def test_an_unknown_host_key_is_not_trusted_on_first_use(board, tiny_job, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(NcapError, match=r"is not in known_hosts \(it offers ssh-ed25519 SHA256:.*ssh-keyscan"):
        run_on_device(DeviceAddress.parse(board.address(known_hosts=empty)), tiny_job)


def test_an_unreachable_board_is_a_clear_error(board, tiny_job):
    with pytest.raises(NcapError, match="unreachable.*check the address, the network and that sshd runs"):
        run_on_device(DeviceAddress.parse(board.address(port=free_port())), tiny_job)


def test_a_runner_crash_mid_run_keeps_what_was_measured(board, tiny_job, tmp_path):
    python = crashing_python(tmp_path, after_s=2)
    long_run = DeviceJob(**{**tiny_job.__dict__, "plan": LatencyPlan(warmup_runs=2, min_runs=300, min_seconds=60)})
    stopped = r"stopped before the end \(it exited with status 137.*timed inferences; they are kept"
    with pytest.raises(DeviceRunError, match=stopped) as error:
        run_on_device(DeviceAddress.parse(board.address(python=str(python))), long_run)
    assert error.value.figures["samples_received"] > 0
    assert len(error.value.figures["samples_ms"]) > 0


def test_a_runtime_missing_on_the_board_is_named(board, tiny_job):
    qnn = DeviceJob(**{**tiny_job.__dict__, "runtime": Runtime(name="onnxruntime",
                                                               execution_provider="QNNExecutionProvider")})
    with pytest.raises(NcapError, match="runner on .* failed: ONNX Runtime .* has no QNNExecutionProvider"):
        run_on_device(DeviceAddress.parse(board.address()), qnn)


def test_a_tflite_ships_to_the_board_and_a_missing_delegate_there_is_named(board, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="LiteRT is in the test extra: pip install -e '.[test]'")
    from test_runners import tiny_tflite

    weights = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    inputs = np.random.default_rng(1).standard_normal((30, 4)).astype(np.float32)
    job = DeviceJob(tiny_tflite(tmp_path / "tiny.tflite", weights), inputs, np.arange(30), Runtime(name="litert"),
                    "int8", 1, QUICK)
    run = run_on_device(DeviceAddress.parse(board.address()), job)
    assert run.settings["runtime"].startswith("ai-edge-litert") and len(run.samples_ms) >= 300
    assert run.top1 == (inputs @ weights.T).argmax(axis=1).tolist()  # answered one input at a time (batch 1)
    imx8 = DeviceJob(**{**job.__dict__, "runtime": Runtime(name="litert", delegate="vx_delegate")})
    with pytest.raises(NcapError, match="runner on .* failed: the LiteRT delegate libvx_delegate.so cannot be loaded"):
        run_on_device(DeviceAddress.parse(board.address()), imx8)


@pytest.mark.parametrize("text, problem", [
    ("http://board", "not an ssh:// address"),
    ("ssh://root@board:99999", "malformed .Port out of range"),
    ("ssh://root@board:0", "names port 0"),
    ("ssh://root@[fe80::1", "malformed .Invalid IPv6 URL"),
    ("ssh://root@board?pyhton=/usr/bin/python3", "unknown option"),
])
def test_a_malformed_device_address_is_named(text, problem):
    with pytest.raises(NcapError, match=problem):
        DeviceAddress.parse(text)


FAST = ["-rs", "--ncap-min-runs", "300", "--ncap-min-seconds", "0.05", "--ncap-warmup", "2", "-p", "no:cacheprovider"]


def board_run(pytester, card, folder, address: str) -> tuple[pytest.RunResult, list[dict]]:
    pytester.makepyfile(test_ncap=SUITE.read_text())
    result = pytester.runpytest("-m", "ncap", "--model", str(card), "--dataset", str(folder),
                                "--precision", "fp32,int8", "--device", address, *FAST)
    lines = (pytester.path / "reports" / "out" / "results.jsonl").read_text().splitlines()
    return result, [json.loads(line) for line in lines]


def test_device_option_grades_every_figure_measured(pytester, board, tiny_card, image_folder):
    predictor_path("host").unlink(missing_ok=True)
    result, written = board_run(pytester, tiny_card, image_folder, board.address())
    # latency, memory (both cells) and the int8 accuracy drop pass on the board; power has no meter named, the
    # board's timing is not self-audited (the agent keeps no timed outputs), and the host profile names no NPU
    result.assert_outcomes(passed=5, skipped=9)
    measured = [r for r in written if r["verdict"] == "pass"]
    assert measured and all(r["grade"] == "measured" and f"127.0.0.1:{board.port}" in r["method"] for r in measured)
    accuracy = next(r for r in written if r["metric"] == "accuracy" and r["precision"] == "int8")
    assert accuracy["grade"] == "measured" and accuracy["evaluation_images"] > 0  # the board's own predictions
    assert "no power meter was named" in next(r for r in written if r["metric"] == "power")["message"]
    # each cell's per-layer profile joined the platform's latency predictor, the Conv's time among them
    added = json.loads(predictor_path("host").read_text())
    assert [u["what"] for u in added["record"]["updates"]] == ["tiny-fp32-host", "tiny-int8-host"]
    assert all(any("Conv" in kind and us > 0 for _, kind, _, us, _ in s["kernels"]) for s in added["samples"])


def test_a_board_lost_mid_run_errors_and_keeps_the_samples(pytester, board, tiny_card, image_folder, tmp_path):
    python = crashing_python(tmp_path, after_s=1)
    address = board.address(python=str(python))
    pytester.makepyfile(test_ncap=SUITE.read_text())
    result = pytester.runpytest("-m", "ncap", "--model", str(tiny_card), "--dataset", str(image_folder),
                                "--precision", "fp32", "--device", address, *FAST[:-4], "--ncap-min-seconds", "60",
                                "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0 and outcomes["errors"] >= 3
    lines = (pytester.path / "reports" / "out" / "results.jsonl").read_text().splitlines()
    errors = [json.loads(line) for line in lines if json.loads(line)["verdict"] == "error"]
    assert errors and all(r["samples_received"] > 0 and "stopped before the end" in r["message"] for r in errors)


@pytest.mark.skipif(find_spec("sklearn") is None, reason="the predictor's regressors need scikit-learn: .[predict]")
def test_the_profiling_plan_runs_on_the_board(board, tmp_path, capsys, monkeypatch):
    # small blocks: a batch of 16 blocks of the real plan (up to 128 MB each) would take minutes to ship and time
    monkeypatch.setattr(blocks, "MAX_MACS", 1e6)
    monkeypatch.setattr(blocks, "MAX_WEIGHTS", 1e5)
    out = tmp_path / "board.json"
    conv = Kernel("conv", "Conv:float", dict.fromkeys(FEATURES, 1.0), 5.0)
    earlier = Sample({"network": "tiny-fp32-imx8"}, 1.0, [conv])  # a compliance run on the board added it
    add_samples(out, [earlier], PredictorRecord("imx8", "board", "onnxruntime", 1, "then", 0.0, {}), "tiny-fp32-imx8")
    assert ncap_main(["profile", "--device", board.address(), "--minutes", "0.05", "--platform", "imx8",
                      "--out", str(out)]) == 0
    predictor = load_predictor(out)
    assert predictor.record.platform == "imx8" and str(board.port) in predictor.record.machine
    assert predictor.samples and all(s.wall_ms > 0 and s.kernels for s in predictor.samples)
    assert len(predictor.record.panel["readings_ms"]) >= 2 and f"written to {out}" in capsys.readouterr().out
    # the new plan replaced the blocks and kept what a compliance run on the board had added
    assert earlier in predictor.samples and [u["what"] for u in predictor.record.updates] == ["tiny-fp32-imx8"]
