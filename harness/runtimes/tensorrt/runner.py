"""TensorRT runner: runs an engine built from an ONNX file (FP32, FP16 or INT8; loader.py builds and caches it)
on the GPU.

Written against the TensorRT 10 Python API (name-based tensor addresses, `execute_async_v3`);
device buffers are torch CUDA tensors, so no other CUDA binding is needed. INT8 expects a
quantised (QDQ) ONNX artifact: the scales come from the graph, no calibrator runs here.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import NcapError
from harness.runtimes.tensorrt.loader import build_engine, cached_engine

MAX_BATCH = 8  # the optimisation profile's upper bound for a dynamic batch axis


def _tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise NcapError("TensorRT is not installed: install NVIDIA's `tensorrt` wheel matching the CUDA driver "
                        "(pip install tensorrt) on a machine with an NVIDIA GPU") from exc
    return tensorrt


class TensorRTRunner:
    name = "tensorrt"

    def __init__(self, model: Path, *, precision: str = "fp32", workspace_bytes: int = 1 << 30) -> None:
        if precision not in ("fp32", "fp16", "int8"):
            raise NcapError(f"TensorRT runs fp32, fp16 or int8, not {precision}")
        self.model, self.precision, self.workspace_bytes = model, precision, workspace_bytes
        self.last_inference_seconds = float("nan")
        self._context: Any = None

    def __enter__(self) -> TensorRTRunner:
        trt = self._trt = _tensorrt()
        import torch

        if not torch.cuda.is_available():
            raise NcapError("TensorRT needs an NVIDIA GPU and torch with CUDA to hold its buffers; none here")
        settings = {"precision": self.precision, "workspace_bytes": self.workspace_bytes, "max_batch": MAX_BATCH,
                    "tensorrt": trt.__version__, "gpu": torch.cuda.get_device_name()}
        serialized = cached_engine(self.model, settings, lambda: build_engine(
            trt, self.model, self.precision, self.workspace_bytes, MAX_BATCH))
        logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise NcapError(f"{self.model.name} has {len(inputs)} inputs; the TensorRT runner takes one")
        (self._input,), self._output = inputs, outputs[0]
        self._stream = torch.cuda.Stream()
        self._torch = torch
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._context = self._engine = None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._context is None:
            raise RuntimeError("infer() outside the runner's `with` block")
        torch, context = self._torch, self._context
        started = time.perf_counter()  # host to device, run and back: what a caller waits for
        source = torch.from_numpy(np.ascontiguousarray(batch)).cuda()
        context.set_input_shape(self._input, tuple(batch.shape))
        context.set_tensor_address(self._input, source.data_ptr())
        dtype = torch.from_numpy(np.empty(0, self._trt.nptype(self._engine.get_tensor_dtype(self._output)))).dtype
        result = torch.empty(tuple(context.get_tensor_shape(self._output)), dtype=dtype, device="cuda")
        context.set_tensor_address(self._output, result.data_ptr())
        with torch.cuda.stream(self._stream):
            if not context.execute_async_v3(self._stream.cuda_stream):
                raise NcapError(f"TensorRT failed to run {self.model.name}")
        self._stream.synchronize()
        output = result.cpu().numpy()
        self.last_inference_seconds = time.perf_counter() - started
        return output

    @property
    def max_batch(self) -> int | None:
        first = self._engine.get_tensor_shape(self._input)[0]
        return MAX_BATCH if first < 0 else first

    @property
    def settings(self) -> dict[str, Any]:
        return {"runtime": f"tensorrt {_tensorrt().__version__}", "precision": self.precision,
                "workspace_bytes": self.workspace_bytes}
