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

    def __init__(self, model: Path, *, threads: int = 1, delegate: str | Path | None = None) -> None:
        """`delegate`: a LiteRT delegate's shared library, a path or a name the loader finds (`vx_delegate`, NXP's
        libvx_delegate.so for the i.MX 8 NPU, as a profile names it)."""
        self.model, self.threads, self.delegate = model, threads, delegate and delegate_library(delegate)
        self.last_inference_seconds = float("nan")
        self._interpreter: Any = None

    def __enter__(self) -> LiteRTRunner:
        litert = _interpreter_module()
        delegates = [_load_delegate(litert, self.delegate)] if self.delegate else []
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
        self._interpreter.set_tensor(self._input["index"], _quantized(batch, self._input))
        self._interpreter.invoke()
        result = _dequantized(self._interpreter.get_tensor(self._output["index"]), self._output)
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


def delegate_library(delegate: str | Path) -> str:
    """A profile's delegate name as the library file the loader looks for (`vx_delegate` -> `libvx_delegate.so`);
    a path or a file name is kept."""
    text = str(delegate)
    return text if "/" in text or ".so" in text else f"lib{text}.so"


def _load_delegate(litert: Any, library: str) -> Any:
    try:
        return litert.load_delegate(library)
    except (ValueError, OSError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise NcapError(f"the LiteRT delegate {library} cannot be loaded on this machine ({detail}); install it "
                        "(for the i.MX 8: NXP's tflite-vx-delegate from the eIQ BSP, /usr/lib/libvx_delegate.so) or "
                        "set `runtime.delegate` in the platform profile to its path") from exc


def _quantized(batch: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    """A float batch as the model's input takes it: an integer input (a full-integer model) is quantised with the
    input's own scale and zero point, as the application on the board does before it invokes the model."""
    dtype = np.dtype(tensor["dtype"])
    scale, zero_point = tensor["quantization"]
    if dtype.kind not in "iu" or not scale:
        return batch.astype(dtype, copy=False)
    limits = np.iinfo(dtype)
    return np.clip(np.round(batch / scale) + zero_point, limits.min, limits.max).astype(dtype)


def _dequantized(result: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    """An integer output back to the real values it stands for; a float output as it is."""
    scale, zero_point = tensor["quantization"]
    if result.dtype.kind not in "iu" or not scale:
        return result
    return ((result.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)
