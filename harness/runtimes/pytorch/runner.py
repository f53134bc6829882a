"""PyTorch runner: a torch module in eval mode, on the CPU or a CUDA device."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from harness.errors import NcapError


class PyTorchRunner:
    name = "pytorch"

    def __init__(self, module: torch.nn.Module, *, device: str = "cpu", threads: int = 1,
                 dtype: torch.dtype = torch.float32) -> None:
        self.module, self.device, self.threads, self.dtype = module, torch.device(device), threads, dtype
        self.last_inference_seconds = float("nan")
        self._loaded: torch.nn.Module | None = None

    def __enter__(self) -> PyTorchRunner:
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise NcapError(f"PyTorch {torch.__version__} here sees no CUDA device; run on the CPU or install "
                            "a CUDA build")
        torch.set_num_threads(self.threads)
        self._loaded = self.module.eval().to(self.device, self.dtype)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loaded = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._loaded is None:
            raise RuntimeError("infer() outside the runner's `with` block")
        started = time.perf_counter()
        with torch.inference_mode():
            result = self._loaded(torch.from_numpy(batch).to(self.device, self.dtype)).float().cpu().numpy()
        self.last_inference_seconds = time.perf_counter() - started  # .cpu() waited for the device
        return result

    @property
    def max_batch(self) -> int | None:
        return None  # a module takes any batch

    @property
    def settings(self) -> dict[str, Any]:
        return {"runtime": f"torch {torch.__version__}", "device": str(self.device), "threads": self.threads,
                "dtype": str(self.dtype).removeprefix("torch.")}
