"""Where does quantisation lose accuracy? Each layer of a quantised cell (int8, int4, mixed, qat) against the same
network in FP32, over evaluation images, through Polygraphy (harness/measure/drift.py); prints the layers that drift
most as a Markdown table and, for `mixed`, the layers its search kept in float beside them. Needs `.[qnn]`
(Polygraphy).

    python benchmarks/layer_drift.py [--model resnet18|CARD.yaml] [--recipe int8] [--images 16] [--top 10]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.cell import Cell, RunOptions
from harness.measure.drift import layer_drift
from harness.models import preprocess
from harness.platform import load_platform
from harness.requirements import Requirements
from harness.session import ComplianceRun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18", help="a zoo name or a model card")
    parser.add_argument("--recipe", default="int8")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    options = RunOptions(platform=load_platform("host"), models=(args.model,), recipes=("fp32", args.recipe),
                         requirements=Requirements(), report_dir=Path("/tmp/ncap-layer-drift"))
    workspace = ComplianceRun(options, progress=print).workspace
    model = workspace.model_name(args.model)
    fp32, quantised = (workspace.artifact(Cell(model, recipe, "host")) for recipe in ("fp32", args.recipe))
    images = workspace.split_for(fp32.card, "evaluation").images[:args.images]
    name = fp32.card.input.name or "input"
    feeds = [{name: preprocess.to_tensor(images[i:i + 1], fp32.card.input)} for i in range(len(images))]
    started = time.perf_counter()
    report = layer_drift(fp32.card.onnx, quantised.card.onnx, feeds)
    seconds = time.perf_counter() - started
    kept_float = {layer for step in quantised.manifest["steps"]
                  for layer, precision in step["did"].get("assignment", {}).items() if precision != "int8"}
    print(f"\n{model} {args.recipe} vs fp32 over {len(feeds)} evaluation images: {len(report.layers)} tensors "
          f"compared, {len(report.unmatched)} fused away before quantisation (unmatched), {len(report.before_relu)} "
          f"pre-activations compared at their ReLU, {seconds:.1f} s\n")
    print("| rank | tensor | written by | mean abs error | p99 abs error | error / mean FP32 magnitude |"
          + (" mixed kept it float |" if kept_float else ""))
    print("|---|---|---|---|---|---|" + ("---|" if kept_float else ""))
    for rank, layer in enumerate(report.worst(args.top), 1):
        kept = layer.producer.split(" (")[0] in kept_float
        print(f"| {rank} | {layer.tensor} | {layer.producer} | {layer.mean_abs_error:.4f} | {layer.p99_abs_error:.4f} "
              f"| {layer.relative_error:.1%} |" + ((" yes |" if kept else " |") if kept_float else ""))
    if kept_float:
        print(f"\nmixed kept in float: {', '.join(sorted(kept_float))}")


if __name__ == "__main__":
    main()
