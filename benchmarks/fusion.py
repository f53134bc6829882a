"""Where does Conv+BN fusion pay off? The `fuse` pass against the unfused graph, with ONNX Runtime's
graph optimisations off (ORT_DISABLE_ALL) and on (ORT_ENABLE_ALL, its default).

Two facts frame the answer: torch.onnx's own optimiser already folds BatchNorm into Conv when it
exports (so the unfused graph here is exported with optimize=False), and ONNX Runtime folds it too at
its default level. The article's "10-20 % from fusion" can only appear in the ORT_DISABLE_ALL column.
Weights do not change latency, so the networks are freshly initialised (no training needed).

    python benchmarks/fusion.py [--models dmsnet resnet18] [--rounds 5] [--seconds 1.0] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from overhead import bare_p50
from torch.fx.experimental.optimization import fuse

from harness.models import zoo
from harness.models.export import INPUT_NAME, export_onnx
from harness.models.train import ZOO_INPUT
from harness.runtimes.onnxruntime.runner import session_options

LEVELS = {"ort-off": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "ort-on": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def variants(name: str, folder: Path) -> dict[str, Path]:
    """The network exported as traced (BatchNorm kept) and after the `fuse` pass's fusion."""
    torch.manual_seed(0)
    module = zoo.ZOO[name].build(5).eval()
    example = np.random.default_rng(0).standard_normal((2, ZOO_INPUT.channels, *ZOO_INPUT.size)).astype(np.float32)
    paths = {"unfused": folder / f"{name}-unfused.onnx", "fused": folder / f"{name}-fused.onnx"}
    export_onnx(module, example, paths["unfused"], optimize=False)
    export_onnx(fuse(module), example, paths["fused"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dmsnet", "resnet18"], choices=list(zoo.ZOO))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    feed = {INPUT_NAME: np.zeros((1, ZOO_INPUT.channels, *ZOO_INPUT.size), np.float32)}
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            sessions = {}
            for variant, path in variants(name, Path(scratch)).items():
                batch_norms = sum(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)
                for level, value in LEVELS.items():
                    options = session_options(args.threads)
                    options.graph_optimization_level = value
                    sessions[(variant, level)] = (ort.InferenceSession(
                        str(path), options, providers=["CPUExecutionProvider"]), batch_norms)
            p50s: dict[tuple[str, str], list[float]] = {key: [] for key in sessions}
            for _ in range(args.rounds):  # interleaved, so machine noise hits every variant alike
                for key, (session, _) in sessions.items():
                    p50s[key].append(bare_p50(session, feed, args.seconds))
            for (variant, level), samples in p50s.items():
                results.append({"model": name, "graph": variant, "runtime": level,
                                "batch_norm_nodes": sessions[(variant, level)][1],
                                "p50_ms": round(float(np.median(samples)), 4)})
    for row in results:
        base = next(r["p50_ms"] for r in results if (r["model"], r["graph"], r["runtime"]) ==
                    (row["model"], "unfused", row["runtime"]))
        row["vs_unfused_pct"] = round((row["p50_ms"] / base - 1) * 100, 1)
    print(json.dumps({"threads": args.threads, "rounds": args.rounds, "results": results}, indent=2))


if __name__ == "__main__":
    main()
