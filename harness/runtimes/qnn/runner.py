"""onnxruntime-qnn's HTP backend opened as a runner: a compiled context (EPContext ONNX + `*_qnn.bin`) or a QDQ model
for one SoC. Needs only numpy, ONNX Runtime and onnxruntime-qnn, so the board agent can load it as well as the host
(where the HTP is emulated on the CPU).

onnxruntime-qnn is a plugin execution provider: `providers=["QNNExecutionProvider"]` silently runs everything on
the CPU; the library is registered with ONNX Runtime and the session is given its devices instead.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from harness.errors import NcapError
from harness.runtimes.onnxruntime.runner import pick_tensor

EP_NAME = "QNNExecutionProvider"


def qnn_version() -> str | None:
    """onnxruntime-qnn's version where it imports, else None."""
    try:
        import onnxruntime_qnn
    except ImportError:
        return None
    return onnxruntime_qnn.__version__


def qnn_session(model: Path, soc_model: int, config: dict[str, str] | None = None,
                batch_axes: Iterable[str] = ()) -> ort.InferenceSession:
    """A session with the QNN HTP backend for SoC id `soc_model`; `batch_axes` (symbolic dimensions) are fixed to 1,
    since the HTP compiles static shapes."""
    import onnxruntime_qnn

    if not any(device.ep_name == EP_NAME for device in ort.get_ep_devices()):  # a second registration is an error
        ort.register_execution_provider_library(EP_NAME, onnxruntime_qnn.get_library_path())
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    for name, value in (config or {}).items():
        options.add_session_config_entry(name, value)
    for dim in batch_axes:
        options.add_free_dimension_override_by_name(dim, 1)
    devices = [device for device in ort.get_ep_devices() if device.ep_name == EP_NAME]
    options.add_provider_for_devices(devices, {"backend_path": onnxruntime_qnn.get_qnn_htp_path(),
                                               "soc_model": str(soc_model)})
    try:
        return ort.InferenceSession(str(model), options)
    except Exception as exc:  # ORT raises several unrelated types when the compiler refuses a graph
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise NcapError(f"QNN could not compile or load {model.name} for soc_model {soc_model}: {detail}") from exc


class QnnRunner:
    """Runs a compiled context batch 1 (the context is compiled for one image), on the HTP or its emulator."""

    name = "onnxruntime-qnn"

    def __init__(self, model: Path, soc_model: int, output_name: str | None = None) -> None:
        self.model, self.soc_model, self._output_name = model, soc_model, output_name
        self._session: ort.InferenceSession | None = None
        self.last_inference_seconds = float("nan")

    def __enter__(self) -> QnnRunner:
        if qnn_version() is None:
            raise NcapError("onnxruntime-qnn is not installed where this runs: pip install onnxruntime-qnn "
                            "(or the harness's .[qnn] extra)")
        self._session = qnn_session(self.model, self.soc_model)
        # named as the ONNX Runtime runner names them: a card's output missing from the context is an error, never
        # quietly the first output
        self._input = pick_tensor(self._session.get_inputs(), None, "input", self.model).name
        self._output = pick_tensor(self._session.get_outputs(), self._output_name, "output", self.model).name
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._session = None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise RuntimeError("infer() outside the runner's `with` block")
        started = time.perf_counter()
        (result,) = self._session.run([self._output], {self._input: batch})
        self.last_inference_seconds = time.perf_counter() - started
        return result

    @property
    def max_batch(self) -> int:
        return 1

    @property
    def settings(self) -> dict[str, Any]:
        return {"runtime": self.name, "onnxruntime_qnn": qnn_version(), "onnxruntime": ort.__version__,
                "soc_model": self.soc_model, "backend": "libQnnHtp.so"}
