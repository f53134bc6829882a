"""Where does quantisation lose accuracy? Each layer of a quantised cell (int8, int4, mixed, qat) against the same
network in FP32, over evaluation images, through Polygraphy (harness/measure/drift.py); prints the layers that drift
most as a Markdown table and, for `mixed`, the layers its search kept in float beside them. A compliance run records
the same comparison (fewer layers) in each integer cell's accuracy record.

    python benchmarks/layer_drift.py [--model resnet18|CARD.yaml] [--recipe int8] [--images 16] [--top 10]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.cell import Cell, RunOptions
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
    cell = Cell(workspace.model_name(args.model), args.recipe, "host")
    drift = workspace.layer_drift(cell, args.images, args.top)
    if "error" in drift:
        raise SystemExit(drift["error"])
    mixed = bool(drift["kept_in_float"])
    print(f"\n{cell.model} {args.recipe} vs fp32 over {drift['images']} evaluation images: {drift['compared']} tensors "
          f"compared, {drift['unmatched']} fused away before quantisation (unmatched), {drift['unranked']} unranked "
          f"(zero in FP32 or not finite), {drift['seconds']:.1f} s\n")
    print("| rank | tensor | written by | mean abs error | p99 abs error | error / mean FP32 magnitude |"
          + (" mixed kept it float |" if mixed else ""))
    print("|---|---|---|---|---|---|" + ("---|" if mixed else ""))
    for rank, layer in enumerate(drift["worst"], 1):
        print(f"| {rank} | {layer['tensor']} | {layer['producer']} | {layer['mean_abs_error']:.4f} "
              f"| {layer['p99_abs_error']:.4f} | {layer['relative_error']:.1%} |"
              + ((" yes |" if layer["kept_float"] else " |") if mixed else ""))
    if mixed:
        print(f"\nmixed kept in float: {', '.join(drift['kept_in_float'])}")


if __name__ == "__main__":
    main()
