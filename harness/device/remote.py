"""The host's side of a run on a board: ship the agent and the artifact, start the agent, collect its stream.

Each run opens its own connection and its own remote folder, removed afterwards, so a board that
was lost during one cell serves the next one as soon as it is back.
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paramiko

import harness
from harness.device.address import DeviceAddress
from harness.device.ssh import SshSession
from harness.errors import NcapError
from harness.gate.baseline import sample_summary
from harness.measure.latency import LatencyPlan, LatencyRun
from harness.measure.memory import MemoryReading
from harness.measure.power import PowerReading
from harness.platform import Runtime

LAYER_PROFILE_RUNS = 20  # profiled runs per layer after the timing: a few seconds on a small network


class DeviceRunError(NcapError):
    """A board run that stopped part-way; `figures` holds what it measured before, for the results store."""

    def __init__(self, message: str, figures: dict[str, Any]) -> None:
        super().__init__(message)
        self.figures = figures


@dataclass(frozen=True)
class DeviceJob:
    model: Path
    inputs: np.ndarray  # evaluation inputs, answered with top-1 indices
    timing_order: np.ndarray  # which rows of `inputs` are timed for latency, in that order
    runtime: Runtime
    precision: str
    threads: int
    plan: LatencyPlan
    power_meter: str | None = None  # a meter spec read on the board
    input_name: str | None = None
    output_name: str | None = None
    denormals_as_zero: bool = False
    companions: tuple[Path, ...] = ()  # files the model loads from beside it (a QNN context's *_qnn.bin), by name
    soc_model: int | None = None  # a QNN context's SoC id


@dataclass
class DeviceRun:
    """What the agent streamed back."""

    device: str
    settings: dict[str, Any] = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)
    input_index: list[int] = field(default_factory=list)  # the timed input (its place in the timing order) per sample
    power: PowerReading | None = None
    memory: MemoryReading | None = None
    top1: list[int] = field(default_factory=list)
    score_shapes: list[list[int]] = field(default_factory=list)
    nonfinite_scores: int = 0
    layers: dict[str, Any] | None = None  # ONNX Runtime's per-node profile and optimised graph (--layer-profile)
    done: bool = False

    def take(self, event: dict[str, Any]) -> None:
        kind = event.pop("event")
        if kind == "latency":
            self.samples_ms.append(event["ms"])
            self.input_index.append(event["input"])
        elif kind == "loaded":
            self.settings = event["settings"] | {"device": self.device}
        elif kind == "power":
            self.power = PowerReading(**event)
        elif kind == "memory":
            self.memory = MemoryReading(**event, method=(
                f"peak RSS (VmHWM) of the runner process on {self.device}, after its batch-1 timing runs; "
                "includes the interpreter and runtime library"))
        elif kind == "scores":
            self.top1 += event["top1"]
            self.score_shapes.append(event["shape"])
            self.nonfinite_scores += event.get("nonfinite", 0)
        elif kind == "layers":
            self.layers = event
        elif kind == "error":
            raise NcapError(f"the runner on {self.device} failed: {event['message']}")
        elif kind == "done":
            self.done = True

    def latency_run(self) -> LatencyRun:
        return LatencyRun(np.asarray(self.samples_ms), self.power, np.asarray(self.input_index))

    def partial_figures(self) -> dict[str, Any]:
        """What a broken run measured, kept in the error's record."""
        figures: dict[str, Any] = {"samples_received": len(self.samples_ms)}
        if self.samples_ms:
            figures["samples_ms"] = sample_summary(np.asarray(self.samples_ms))
        if self.memory is not None:
            figures["peak_mb"] = self.memory.peak_mb
        return figures


def agent_bundle() -> bytes:
    """The harness's Python sources as a tar: the agent imports a few of them (see its docstring)."""
    package = Path(harness.__file__).parent
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for source in sorted(package.rglob("*.py")):
            tar.add(source, arcname=f"harness/{source.relative_to(package)}")
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def run_on_device(address: DeviceAddress, job: DeviceJob) -> DeviceRun:
    """Run `job` on the board; a run that ends without its `done` line is a DeviceRunError with what it got."""
    result = DeviceRun(str(address))
    with SshSession(address) as ssh:
        workdir = ssh.check_output(["mktemp", "-d", "/tmp/ncap-agent.XXXXXX"]).strip()
        try:
            ssh.put(agent_bundle(), f"{workdir}/agent.tar.gz")
            ssh.put(job.model.read_bytes(), f"{workdir}/model{job.model.suffix}")
            for companion in job.companions:
                ssh.put(companion.read_bytes(), f"{workdir}/{companion.name}")
            ssh.put(_npy(job.inputs), f"{workdir}/inputs.npy")
            ssh.put(_npy(job.timing_order), f"{workdir}/timing_order.npy")
            ssh.check_output([address.python, "-m", "tarfile", "-e", f"{workdir}/agent.tar.gz", workdir])
            remote = ssh.run(_agent_argv(address, job), cwd=workdir, pythonpath=workdir)
            try:
                for line in remote.lines():
                    if line.startswith("{"):
                        result.take(json.loads(line))
            except NcapError as exc:
                raise DeviceRunError(str(exc), result.partial_figures()) from exc
            status = remote.exit_status()
            if not result.done:
                ended = "the connection was lost" if status == -1 else f"it exited with status {status}"
                detail = remote.stderr_tail()
                raise DeviceRunError(
                    f"the runner on {address} stopped before the end ({ended}{': ' + detail if detail else ''}) "
                    f"after {len(result.samples_ms)} timed inferences; they are kept in the record, rerun the cell",
                    result.partial_figures())
        finally:
            _remove(ssh, workdir)
    return result


def _agent_argv(address: DeviceAddress, job: DeviceJob) -> list[str]:
    runtime, plan = job.runtime, job.plan
    argv = [address.python, "-m", "harness.device.agent", f"model{job.model.suffix}", "--runtime", runtime.name,
            "--precision", job.precision, "--threads", str(job.threads), "--inputs", "inputs.npy",
            "--timing-order", "timing_order.npy",
            "--warmup", str(plan.warmup_runs), "--min-runs", str(plan.min_runs), "--min-seconds", str(plan.min_seconds)]
    optional = {"--provider": runtime.execution_provider, "--delegate": runtime.delegate,
                "--input-name": job.input_name, "--output-name": job.output_name, "--power": job.power_meter,
                "--soc-model": str(job.soc_model) if job.soc_model is not None else None}
    flags = ["--denormals-as-zero"] if job.denormals_as_zero else []
    if runtime.name == "onnxruntime" and runtime.execution_provider in (None, "CPUExecutionProvider"):
        flags += ["--layer-profile", str(LAYER_PROFILE_RUNS)]  # per-layer samples for the platform's predictor
    return argv + flags + [item for flag, value in optional.items() if value for item in (flag, value)]


def _remove(ssh: SshSession, workdir: str) -> None:
    """Clean up the remote folder; a board that is already gone keeps it (it is under /tmp)."""
    try:
        ssh.check_output(["rm", "-rf", "--", workdir])
    except (NcapError, OSError, EOFError, paramiko.SSHException):
        pass
