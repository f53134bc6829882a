"""LiteRT runner (ai-edge-litert): a .tflite model on the CPU or through a delegate (NPU, GPU)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import NcapError


def _interpreter_module() -> Any:
    try:
        from ai_edge_litert import interpreter
    except ImportError as exc:
        raise NcapError("LiteRT is not installed: pip install 'dms-ncap[litert]' (ai-edge-litert)") from exc
    return interpreter


class LiteRTRunner:
    name = "litert"

    def __init__(self, model: Path, *, threads: int = 1, delegate: Path | None = None) -> None:
        """`delegate`: the shared library of a LiteRT delegate, e.g. NXP's libvx_delegate.so for the i.MX 8 NPU."""
        self.model, self.threads, self.delegate = model, threads, delegate
        self.last_inference_seconds = float("nan")
        self._interpreter: Any = None

    def __enter__(self) -> LiteRTRunner:
        litert = _interpreter_module()
        delegates = [litert.load_delegate(str(self.delegate))] if self.delegate else []
        try:
            self._interpreter = litert.Interpreter(model_path=str(self.model), num_threads=self.threads,
                                                   experimental_delegates=delegates)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise NcapError(f"LiteRT cannot load {self.model}: {str(exc).splitlines()[0][:300]}") from exc
        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1:
            raise NcapError(f"{self.model.name} has {len(inputs)} inputs; the LiteRT runner takes one")
        (self._input,), self._output = inputs, self._interpreter.get_output_details()[0]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._interpreter = None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._interpreter is None:
            raise RuntimeError("infer() outside the runner's `with` block")
        if list(batch.shape) != list(self._input["shape"]):
            self._interpreter.resize_tensor_input(self._input["index"], list(batch.shape))
            self._interpreter.allocate_tensors()
        started = time.perf_counter()
        self._interpreter.set_tensor(self._input["index"], batch.astype(self._input["dtype"], copy=False))
        self._interpreter.invoke()
        result = self._interpreter.get_tensor(self._output["index"])
        self.last_inference_seconds = time.perf_counter() - started
        return result

    @property
    def max_batch(self) -> int | None:
        first = int(self._input["shape_signature"][0])
        return None if first < 0 else first

    @property
    def settings(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"runtime": f"ai-edge-litert {version('ai-edge-litert')}", "threads": self.threads,
                "delegate": str(self.delegate) if self.delegate else None}
