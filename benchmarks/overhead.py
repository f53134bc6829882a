"""Does the harness's timing loop distort what it measures?

Compares the harness's latency p50 (runner + `time_inferences`) with a bare `session.run` loop on
an ONNX Runtime session with identical settings, interleaving rounds so machine noise hits both alike.
Budget: the two p50s agree within 2 %.

    python benchmarks/overhead.py [MODEL.onnx] [--rounds 7] [--seconds 1.5]

Without MODEL it uses the embedded dmsnet (trained and cached on first use).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harness.data.dataset import embedded_dataset
from harness.measure.latency import LatencyPlan, time_inferences
from harness.measure.stats import LatencyStats
from harness.models.train import trained_model
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner, session_options


def bare_p50(session: ort.InferenceSession, feed: dict[str, np.ndarray], seconds: float) -> float:
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        session.run(None, feed)
        samples.append(time.perf_counter_ns() - started)
    return float(np.median(samples)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, nargs="?")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = args.model or trained_model("dmsnet", embedded_dataset()).card.onnx
    session = ort.InferenceSession(str(model), session_options(args.threads), providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    sample = np.zeros([d if isinstance(d, int) else 1 for d in model_input.shape], np.float32)
    feed = {model_input.name: sample}
    with OnnxRuntimeRunner(model, threads=args.threads) as runner:
        plan = LatencyPlan(warmup_runs=50, min_runs=300, min_seconds=args.seconds)
        harness, bare = [], []
        for _ in range(args.rounds):
            harness.append(LatencyStats.from_samples(time_inferences(runner, sample, plan).samples_ms).p50_ms)
            bare.append(bare_p50(session, feed, args.seconds))
    harness_p50, bare_p50_ms = float(np.median(harness)), float(np.median(bare))
    print(json.dumps({"model": str(model), "threads": args.threads, "rounds": args.rounds,
                      "harness_p50_ms": harness_p50, "bare_p50_ms": bare_p50_ms,
                      "difference": harness_p50 / bare_p50_ms - 1, "budget": 0.02}, indent=2))


if __name__ == "__main__":
    main()
