"""Is INT8 faster than FP32 with LiteRT on this CPU? A trained zoo network converted as `pytest -m ncap --platform
imx8` converts it (FP32; INT8 full-integer, per-channel and per-tensor weights), at the zoo's 64x64 input and at
larger ones (the same trained weights: the networks pool globally), timed batch 1 with XNNPACK (LiteRT's default CPU
kernels) and with LiteRT's built-in kernels alone, at 1 and 2 threads. The configurations take turns, round after
round, so a load that comes and goes on a shared machine touches all of them alike; each figure is the median over
rounds of each round's p50.

    python benchmarks/litert_int8.py [--model mobilenet_v3_small] [--sizes 64 224] [--rounds 5] [--runs 200]
                                     [--calibration-images 200]

Needs the litert-convert extra. The results are in docs/litert.md.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.dataset import Dataset, SyntheticSpec, embedded_dataset
from harness.models import zoo
from harness.models.train import trained_model
from harness.optimize.litert import convert_to_tflite, float_operators
from harness.optimize.passes import PassContext
from harness.optimize.torch_passes import module_io

# the precision steps litert.py converts: fp32, int8 per-channel (the default) and per-tensor
STEPS = {"fp32": {"precision": "fp32"}, "int8": {"precision": "int8", "per_channel": True},
         "int8/per-tensor": {"precision": "int8", "per_channel": False}}


def p50_ms(interpreter, runs: int) -> float:
    feed = interpreter.get_input_details()[0]
    batch = np.zeros(feed["shape"], feed["dtype"])
    for _ in range(20):
        interpreter.set_tensor(feed["index"], batch)
        interpreter.invoke()
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        interpreter.set_tensor(feed["index"], batch)
        interpreter.invoke()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return float(np.median(samples))


def main() -> None:
    from ai_edge_litert import interpreter as litert

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["mobilenet_v3_small"], choices=list(zoo.ZOO))
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--calibration-images", type=int, default=200,
                        help="fewer calibrate faster; the time per inference does not depend on it")
    args = parser.parse_args()
    dataset = embedded_dataset(SyntheticSpec())
    kernels = {"xnnpack": litert.OpResolverType.AUTO,
               "builtin": litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    with tempfile.TemporaryDirectory(prefix="ncap-litert-int8-") as scratch:
        for model in args.model:
            study(model, args, dataset, kernels, Path(scratch))


def study(model: str, args: argparse.Namespace, dataset: Dataset, kernels: dict[str, Any], scratch: Path) -> None:
    """Convert `model` at each size and recipe into `scratch`, time every configuration in turn, print the table."""
    from ai_edge_litert import interpreter as litert

    trained = trained_model(model, dataset)
    files = {}
    for size in args.sizes:
        feeding = trained.card.input.model_copy(update={"size": (size, size)})
        card = trained.card.model_copy(update={"input": feeding})
        context = PassContext(card, dataset.calibration, dataset.fingerprint, dataset, trained)
        for recipe, step in STEPS.items():
            path = files[recipe, size] = scratch / f"{model}-{size}-{recipe.replace('/', '-')}.tflite"
            step = {**step, "calibration_images": args.calibration_images}
            check = convert_to_tflite(module_io.zoo_module(trained), step, context, path)["check"]
            print(f"{model} {size}x{size} {recipe}: {path.stat().st_size} bytes, check "
                  f"{check['max_abs_diff_relative']:.2g}, operators in float {float_operators(path)}", flush=True)
    figures = defaultdict(list)
    for _ in range(args.rounds):
        for (recipe, size), path in files.items():
            for kernel, resolver in kernels.items():
                for threads in (1, 2):
                    interpreter = litert.Interpreter(model_path=str(path), num_threads=threads,
                                                     experimental_op_resolver_type=resolver)
                    interpreter.allocate_tensors()
                    figures[recipe, size, kernel, threads].append(p50_ms(interpreter, args.runs))
    for (recipe, size, kernel, threads), rounds in sorted(figures.items(), key=lambda item: item[0][1:]):
        print(f"{model} {size}x{size} {recipe:16s} {kernel:8s} threads={threads}  p50 {np.median(rounds):.3f} ms "
              f"(rounds {min(rounds):.3f}-{max(rounds):.3f})")


if __name__ == "__main__":
    main()
