"""ONNX Runtime runner, for any execution provider the installed build offers."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from harness.errors import NcapError


def session_options(threads: int, spinning: bool = True, denormals_as_zero: bool = False) -> ort.SessionOptions:
    """The settings every harness session uses: `threads` intra-op threads, sequential execution. `spinning`
    off makes idle worker threads sleep at once instead of spinning for the next call: slower for one
    session alone (5-15 % here), but sessions taking turns no longer take each other's CPU (with it on,
    ResNet18 FP32 timed in turns with five other sessions read 5.8 ms instead of 2.5 ms, and the gate's
    same-artifact ratio spread over 0.92-1.05x instead of 0.98-1.02x). `denormals_as_zero` flushes denormal
    floats to zero: faster on inputs that produce them, and not what a deployed runtime does by default."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.add_session_config_entry("session.set_denormal_as_zero", "1" if denormals_as_zero else "0")
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: ORT's warnings would drown the pytest output
    return options


class OnnxRuntimeRunner:
    name = "onnxruntime"

    def __init__(self, model: Path, *, input_name: str | None = None, output_name: str | None = None,
                 provider: str = "CPUExecutionProvider", threads: int = 1, spinning: bool = True,
                 denormals_as_zero: bool = False) -> None:
        self.model, self.provider, self.threads, self.spinning = model, provider, threads, spinning
        self.denormals_as_zero = denormals_as_zero
        self._input_name, self._output_name = input_name, output_name
        self._session: ort.InferenceSession | None = None
        self.last_inference_seconds = float("nan")

    def __enter__(self) -> OnnxRuntimeRunner:
        if self.provider not in ort.get_available_providers():
            raise NcapError(f"ONNX Runtime {ort.__version__} here has no {self.provider}; available: "
                            f"{', '.join(ort.get_available_providers())}; install the build that has it")
        try:
            self._session = ort.InferenceSession(str(self.model), session_options(self.threads, self.spinning,
                                                                                  self.denormals_as_zero),
                                                 providers=[self.provider])
        except Exception as exc:  # ORT raises several unrelated types for an unreadable model
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NcapError(f"ONNX Runtime cannot load {self.model}: {first_line[:300]}; "
                            "check that the file is a complete, valid ONNX model") from exc
        self._input = pick_tensor(self._session.get_inputs(), self._input_name, "input", self.model)
        self._output = pick_tensor(self._session.get_outputs(), self._output_name, "output", self.model)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._session = None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise RuntimeError("infer() outside the runner's `with` block")
        feed = {self._input.name: batch}
        started = time.perf_counter()
        try:
            (result,) = self._session.run([self._output.name], feed)
        except (ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                ort.capi.onnxruntime_pybind11_state.Fail) as exc:
            raise NcapError(f"{self.model.name} rejected an input of shape {list(batch.shape)} "
                            f"(it declares {self._input.shape}): {str(exc).splitlines()[0][:200]}; "
                            "fix input.size / layout / channels in the model card") from exc
        self.last_inference_seconds = time.perf_counter() - started
        return result

    @property
    def max_batch(self) -> int | None:
        first = self._input.shape[0] if self._input.shape else None
        return first if isinstance(first, int) else None

    @property
    def settings(self) -> dict[str, Any]:
        spinning = {} if self.spinning else {"worker_spinning": False}
        return {"runtime": f"onnxruntime {ort.__version__}", "execution_provider": self.provider,
                "threads": self.threads, "denormals_as_zero": self.denormals_as_zero} | spinning


def pick_tensor(nodes: list[Any], wanted: str | None, kind: str, model: Path) -> Any:
    """The session input or output named `wanted` (the only one where no name is given); else one line naming
    the choices and the card field to fix."""
    names = [node.name for node in nodes]
    if wanted is None:
        if len(nodes) == 1:
            return nodes[0]
        raise NcapError(f"{model.name} has {len(nodes)} {kind}s ({', '.join(names)}); "
                        f"name the one to use as {kind}.name in the model card")
    for node in nodes:
        if node.name == wanted:
            return node
    raise NcapError(f"{model.name} has no {kind} named {wanted!r} (it has {', '.join(names)}); "
                    f"fix {kind}.name in the model card")
