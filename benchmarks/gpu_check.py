"""The CUDA-capable paths on an NVIDIA GPU, once: NVML power over a PyTorch CUDA latency window, and
TensorRT (FP32/FP16) on a small ONNX classifier where TensorRT is installed.

    python benchmarks/gpu_check.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from harness.errors import NcapError
from harness.measure.latency import LatencyPlan, time_inferences
from harness.measure.meters import nvml_meter
from harness.measure.stats import LatencyStats
from harness.runtimes.pytorch.runner import PyTorchRunner
from harness.runtimes.tensorrt.runner import TensorRTRunner

PLAN = LatencyPlan(warmup_runs=20, min_runs=300, min_seconds=2.0)


def report(label: str, runner, batch: np.ndarray, meter=None) -> None:
    run = time_inferences(runner, batch, PLAN, meter)
    stats = LatencyStats.from_samples(run.samples_ms)
    power = (f"; {run.power.watts:.1f} W ({run.power.method}; rate {run.power.sample_rate_hz})" if run.power else "")
    print(f"{label}: p50 {stats.p50_ms:.3f} ms, p99 {stats.p99_ms:.3f} ms over {stats.n} runs{power}", flush=True)


def main() -> None:
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}", flush=True)
    if not torch.cuda.is_available():
        sys.exit("no CUDA device")
    print(f"GPU: {torch.cuda.get_device_name()}", flush=True)
    from torchvision.models import resnet18

    batch = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    for dtype in (torch.float32, torch.float16):
        with PyTorchRunner(resnet18(), device="cuda", dtype=dtype) as runner:
            report(f"PyTorch CUDA resnet18 {dtype}", runner, batch, nvml_meter(0))
    with tempfile.TemporaryDirectory() as folder:
        onnx = Path(folder) / "resnet18.onnx"
        torch.onnx.export(resnet18().eval(), torch.from_numpy(batch), str(onnx), dynamo=False,
                          input_names=["input"], output_names=["logits"])
        for precision in ("fp32", "fp16"):
            try:
                with TensorRTRunner(onnx, precision=precision) as runner:
                    report(f"TensorRT resnet18 {precision}", runner, batch, nvml_meter(0))
            except NcapError as exc:
                print(f"TensorRT {precision}: {exc}", flush=True)


if __name__ == "__main__":
    main()
