"""The host's side of a run on a board: ship the agent and the artifact, start the agent, collect its stream.

Each run opens its own connection and its own remote folder, removed afterwards, so a board that
was lost during one cell serves the next one as soon as it is back.
"""
from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paramiko

import harness
from harness.device.address import DeviceAddress
from harness.device.ssh import RemoteCommand, SshSession
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


class AgentSession:
    """One connection to a board with the harness's sources unpacked in a remote folder of its own, removed on
    exit (a board that is already gone keeps it, under /tmp)."""

    def __init__(self, address: DeviceAddress) -> None:
        self.address = address
        self._ssh = SshSession(address)

    def __enter__(self) -> AgentSession:
        self._ssh.__enter__()
        try:
            self.workdir = self._ssh.check_output(["mktemp", "-d", "/tmp/ncap-agent.XXXXXX"]).strip()
            self.put(agent_bundle(), "agent.tar.gz")
            self._ssh.check_output([self.address.python, "-m", "tarfile", "-e", f"{self.workdir}/agent.tar.gz",
                                    self.workdir])
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if hasattr(self, "workdir"):
            _remove(self._ssh, self.workdir)
        self._ssh.__exit__()

    def put(self, content: bytes, name: str) -> None:
        self._ssh.put(content, f"{self.workdir}/{name}")

    def run(self, module: str, *args: str) -> RemoteCommand:
        """`python -m MODULE ARGS` in the remote folder, the harness's sources on its path."""
        return self._ssh.run([self.address.python, "-m", module, *args], cwd=self.workdir, pythonpath=self.workdir)


def run_on_device(address: DeviceAddress, job: DeviceJob) -> DeviceRun:
    """Run `job` on the board; a run that ends without its `done` line is a DeviceRunError with what it got."""
    result = DeviceRun(str(address))
    with AgentSession(address) as agent:
        agent.put(job.model.read_bytes(), f"model{job.model.suffix}")
        for companion in job.companions:
            agent.put(companion.read_bytes(), companion.name)
        agent.put(_npy(job.inputs), "inputs.npy")
        agent.put(_npy(job.timing_order), "timing_order.npy")
        remote = agent.run("harness.device.agent", *_agent_argv(job))
        try:
            for event in events(remote):
                result.take(event)
        except NcapError as exc:
            raise DeviceRunError(str(exc), result.partial_figures()) from exc
        if not result.done:
            raise DeviceRunError(f"the runner on {address} stopped before the end ({_ended(remote)}) after "
                                 f"{len(result.samples_ms)} timed inferences; they are kept in the record, rerun the "
                                 "cell", result.partial_figures())
    return result


def profile_blocks_on_device(agent: AgentSession, models: list[tuple[bytes, list[int], int]],
                             threads: int) -> list[tuple[float, list[dict[str, Any]], bytes]]:
    """Each (ONNX bytes, input shape, bytes evicted between runs) timed and profiled on the board
    (harness.device.block_agent), in order: (wall seconds, per-layer profile events, optimised graph bytes) each,
    as the host's `time_and_profile`."""
    manifest = []
    for index, (model, shape, evict) in enumerate(models):
        agent.put(model, f"block{index}.onnx")
        manifest.append({"file": f"block{index}.onnx", "shape": shape, "evict_bytes": evict})
    agent.put(json.dumps(manifest).encode(), "blocks.json")
    remote = agent.run("harness.device.block_agent", "blocks.json", "--threads", str(threads))
    results, done = [], False
    for event in events(remote):
        if event["event"] == "block":
            results.append((event["wall_s"], event["events"], base64.b64decode(event["graph"])))
        elif event["event"] == "error":
            raise NcapError(f"the block profiler on {agent.address} failed: {event['message']}")
        done = done or event["event"] == "done"
    if not done:
        raise NcapError(f"the block profiler on {agent.address} stopped after {len(results)} of {len(models)} "
                        f"blocks ({_ended(remote)}); rerun `ncap profile`")
    return results


def events(remote: RemoteCommand) -> Iterator[dict[str, Any]]:
    """The JSON lines a remote agent streams; anything else it prints is not an event."""
    for line in remote.lines():
        if line.startswith("{"):
            yield json.loads(line)


def _ended(remote: RemoteCommand) -> str:
    status = remote.exit_status()
    detail = remote.stderr_tail()
    ended = "the connection was lost" if status == -1 else f"it exited with status {status}"
    return f"{ended}{': ' + detail if detail else ''}"


def _agent_argv(job: DeviceJob) -> list[str]:
    runtime, plan = job.runtime, job.plan
    argv = [f"model{job.model.suffix}", "--runtime", runtime.name,
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
