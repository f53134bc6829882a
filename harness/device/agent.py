"""The device-side runner: `python -m harness.device.agent MODEL ...` on the board.

It loads the artifact with the platform's runtime, times batch-1 inferences over the inputs it was sent,
in their order (the harness's own latency loop, with the power meter read on the board), notes the
process's peak memory, then runs the evaluation inputs, and streams everything back as JSON lines the
moment it exists, so a run that dies part-way still hands over what it measured. With `--layer-profile` it then
profiles each layer (ONNX Runtime's per-node profile) for the platform's latency predictor. It needs only numpy
and the runtime on the board: it imports no harness module that would pull in torch, pandas or pydantic.
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import NcapError
from harness.measure.latency import LatencyPlan, time_inferences
from harness.measure.rss import status_bytes
from harness.runtimes.registry import RUNNERS, RunnerSpec, open_runner


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def run(args: argparse.Namespace) -> None:
    baseline = status_bytes("VmRSS")
    meter = None
    if args.power:
        from harness.measure.meters import meter_from_spec  # the meter's own library loads only when asked for

        meter = meter_from_spec(args.power, grade="measured")
    spec = RunnerSpec(args.runtime, args.threads, args.provider, args.input_name, args.output_name,
                      denormals_as_zero=args.denormals_as_zero, delegate=args.delegate, precision=args.precision,
                      soc_model=args.soc_model)
    with open_runner(args.model, spec) as runner:
        loaded = status_bytes("VmRSS")
        emit("loaded", settings=runner.settings)
        plan = LatencyPlan(args.warmup, args.min_runs, args.min_seconds)
        inputs = np.load(args.inputs)
        timed = time_inferences(runner, inputs[np.load(args.timing_order)], plan, meter,
                                lambda ms, row: emit("latency", ms=ms, input=row))
        if timed.power is not None:
            emit("power", **dataclasses.asdict(timed.power))
        # the deployment's peak: batch-1 inference, before the evaluation batches raise it
        emit("memory", peak_mb=status_bytes("VmHWM") / 2**20, loaded_mb=loaded / 2**20, baseline_mb=baseline / 2**20)
        step = min(args.batch, runner.max_batch or args.batch)
        for start in range(0, len(inputs), step):
            scores = runner.infer(inputs[start:start + step])
            emit("scores", shape=list(scores.shape), top1=scores.reshape(len(scores), -1).argmax(axis=1).tolist(),
                 nonfinite=int(np.size(scores) - np.isfinite(scores).sum()))
    if args.layer_profile:  # last: the profiler's own memory stays out of the peak above
        from harness.runtimes.onnxruntime.profile import PROFILE_SESSIONS, PROFILE_WARMUP, layer_profile

        feeds = {args.input_name: inputs[:1]} if args.input_name else inputs[:1]
        events, graph = layer_profile(args.model, feeds, args.threads, args.layer_profile, PROFILE_WARMUP,
                                      sessions=PROFILE_SESSIONS)
        emit("layers", events=events, graph=base64.b64encode(graph).decode(), warmup=PROFILE_WARMUP)
    emit("done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--runtime", choices=list(RUNNERS), default="onnxruntime")
    parser.add_argument("--provider", default="CPUExecutionProvider", help="ONNX Runtime execution provider")
    parser.add_argument("--delegate", type=Path, help="LiteRT delegate library")
    parser.add_argument("--precision", default="fp32", help="TensorRT engine precision")
    parser.add_argument("--soc-model", type=int, help="onnxruntime-qnn: the SoC id the context was compiled for")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--input-name")
    parser.add_argument("--output-name")
    parser.add_argument("--inputs", type=Path, required=True,
                        help="evaluation inputs (.npy), answered with top-1 indices")
    parser.add_argument("--timing-order", type=Path, required=True,
                        help="rows of the inputs timed for latency, in order (.npy of indices)")
    parser.add_argument("--denormals-as-zero", action="store_true", help="ONNX Runtime flushes denormals to zero")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=LatencyPlan.warmup_runs)
    parser.add_argument("--min-runs", type=int, default=LatencyPlan.min_runs)
    parser.add_argument("--min-seconds", type=float, default=LatencyPlan.min_seconds)
    parser.add_argument("--power", metavar="SPEC", help="power meter on the board (harness.measure.meters spec)")
    parser.add_argument("--layer-profile", type=int, default=0, metavar="RUNS",
                        help="ONNX Runtime CPU: afterwards, profile RUNS runs per layer for the platform's predictor")
    args = parser.parse_args()
    try:
        run(args)
    except NcapError as exc:
        emit("error", message=str(exc))
        sys.exit(2)


if __name__ == "__main__":
    main()
