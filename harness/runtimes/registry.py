"""Runners by runtime name. The host run, the memory probe and the board agent open runners through this one
table; each runtime's module is imported only when asked for, so a board needs only its own runtime."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import NcapError
from harness.runtimes.base import Runner


@dataclass(frozen=True)
class RunnerSpec:
    """How to open a model: the runtime and what it needs. Fields a runtime does not use are ignored by it."""

    runtime: str = "onnxruntime"
    threads: int = 1
    provider: str = "CPUExecutionProvider"  # ONNX Runtime's execution provider
    input_name: str | None = None
    output_name: str | None = None
    spinning: bool = True  # ONNX Runtime's idle workers spin (off when two sessions take turns)
    denormals_as_zero: bool = False  # ONNX Runtime's workers flush denormals
    delegate: str | None = None  # LiteRT delegate: a library path, or a name (`vx_delegate`) the loader finds
    precision: str = "fp32"  # TensorRT engine precision
    soc_model: int | None = None  # onnxruntime-qnn: the Qualcomm SoC id a context was compiled for


def _onnxruntime(model: Path, spec: RunnerSpec) -> Runner:
    from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner

    return OnnxRuntimeRunner(model, input_name=spec.input_name, output_name=spec.output_name, provider=spec.provider,
                             threads=spec.threads, spinning=spec.spinning, denormals_as_zero=spec.denormals_as_zero)


def _tensorrt(model: Path, spec: RunnerSpec) -> Runner:
    from harness.runtimes.tensorrt.runner import TensorRTRunner

    return TensorRTRunner(model, precision=spec.precision)


def _litert(model: Path, spec: RunnerSpec) -> Runner:
    from harness.runtimes.litert.runner import LiteRTRunner

    return LiteRTRunner(model, threads=spec.threads, delegate=spec.delegate)


def _qnn(model: Path, spec: RunnerSpec) -> Runner:
    from harness.runtimes.qnn.runner import QnnRunner

    if spec.soc_model is None:
        raise NcapError("the onnxruntime-qnn runner needs the SoC id (soc_model) the context was compiled for")
    return QnnRunner(model, spec.soc_model, spec.output_name)


RUNNERS: dict[str, Callable[[Path, RunnerSpec], Runner]] = {
    "onnxruntime": _onnxruntime, "tensorrt": _tensorrt, "litert": _litert, "onnxruntime-qnn": _qnn}


def open_runner(model: Path, spec: RunnerSpec) -> Runner:
    """The runner for `spec.runtime`, not yet entered (entering loads the model)."""
    if spec.runtime not in RUNNERS:
        raise NcapError(f"no runner for runtime {spec.runtime!r}; known: {', '.join(RUNNERS)}")
    return RUNNERS[spec.runtime](model, spec)
