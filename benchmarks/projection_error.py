"""How far is the roofline projection from the truth, where the truth can be measured (this host)?

For every zoo model and precision whose artifact is cached (under $NCAP_CACHE, default
~/.cache/dms-ncap), project its batch-1 latency from the host roofline (ONNX Runtime
microbenchmarks on synthetic graphs, never on these models: no cell is a calibration point)
and measure it, then print each cell's error and the share of cells within +/-10 % and +/-25 %
(nn-Meter keeps 99 % of its predictions within +/-10 % on a mobile CPU).

    python benchmarks/projection_error.py [--threads N] [--seconds 1.0]

Cells whose artifacts are missing are skipped: run `pytest -m ncap` once to build them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import cache
from harness.measure.latency import LatencyPlan
from harness.project.validate import check_on_host, share_within

PRECISIONS = ("fp32", "fp16", "int8")


def cached_cells(root: Path) -> list[tuple[str, str, Path]]:
    """(model, precision, artifact) for each cached precision step whose input is a cached trained model."""
    models = {cache.file_sha256(onnx): onnx.parent.name.rsplit("-", 1)[0]
              for onnx in sorted((root / "models").glob("*/model.onnx"))}
    cells = []
    for step in sorted((root / "artifacts").glob("*/step.json")):
        record = json.loads(step.read_text())
        if record["pass"] in PRECISIONS and record["input_sha256"] in models:
            cells.append((models[record["input_sha256"]], record["pass"], step.parent / "model.onnx"))
    return sorted(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0, help="measurement time per cell")
    args = parser.parse_args()
    cells = cached_cells(cache.cache_root())
    if not cells:
        raise SystemExit(f"no cached zoo artifacts under {cache.cache_root()}; run `pytest -m ncap` first")
    errors = []
    print(f"{'model':24} {'precision':9} {'projected ms':>12} {'measured ms':>12} {'error':>8}")
    for model, precision, onnx in cells:
        check = check_on_host(onnx, precision, args.threads, LatencyPlan(20, 300, args.seconds))
        errors.append(check.error)
        print(f"{model:24} {precision:9} {check.projected_ms:12.3f} {check.measured_ms:12.3f} {check.error:+8.1%}")
    print(f"{len(errors)} cells, {args.threads} thread(s): within +/-10 %: {share_within(errors, 0.10):.0%}, "
          f"within +/-25 %: {share_within(errors, 0.25):.0%}")


if __name__ == "__main__":
    main()
