"""Latency over the input distribution beside the old figure, timed on one repeated image.

For each cell, rounds alternate between the old plan (the first evaluation image, repeated) and the harness's
plan (every evaluation image in a seeded order), so drift of the machine falls on both alike; the medians of
the rounds' p50 and p99 are printed with the per-input spread of the last distribution round.

    python benchmarks/input_distribution.py [--model NAME_OR_CARD ...] [--dataset DIR] [--rounds 3]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.cell import RunOptions
from harness.measure.latency import LatencyPlan, time_inferences
from harness.measure.stats import InputSpread, LatencyStats
from harness.models import preprocess
from harness.platform import load_platform
from harness.requirements import Requirements
from harness.session import ComplianceRun
from harness.sources.host import HostSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--precision", default="fp32,fp16,int8")
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    models = tuple(args.model or ("dmsnet", "mobilenet_v3_small", "resnet18"))
    options = RunOptions(platform=load_platform("host"), models=models,
                         recipes=tuple(args.precision.split(",")), requirements=Requirements(),
                         report_dir=Path("/tmp/ncap-input-distribution"), dataset_dir=args.dataset,
                         threads=args.threads)
    run = ComplianceRun(options, progress=lambda message: None)
    plan = LatencyPlan()
    print("| cell | one image p50 / p99 (ms) | distribution p50 / p99 (ms) | inputs "
          "| fastest / slowest decile p50 (ms) |")
    print("|---|---|---|---|---|")
    for cell in run.cells():
        card = run.workspace.artifact(cell).card
        first_image = preprocess.to_tensor(run.workspace.dataset.evaluation.images[:1], card.input)
        inputs = run.workspace.timing_inputs(card)
        one, spread_of = [], []
        with HostSource(run.workspace).runner(card) as runner:
            for _ in range(args.rounds):
                one.append(LatencyStats.from_samples(time_inferences(runner, first_image, plan).samples_ms))
                timed = time_inferences(runner, inputs, plan)
                spread_of.append((LatencyStats.from_samples(timed.samples_ms),
                                  InputSpread.from_samples(timed.samples_ms, timed.input_index)))
        spread, timed = spread_of[-1][1], [stats for stats, _ in spread_of]
        print(f"| {cell.id} | {_median(one, 'p50_ms'):.3f} / {_median(one, 'p99_ms'):.3f} | "
              f"{_median(timed, 'p50_ms'):.3f} / {_median(timed, 'p99_ms'):.3f} | {spread.inputs} | "
              f"{spread.fastest_decile_p50_ms:.3f} / {spread.slowest_decile_p50_ms:.3f} |", flush=True)


def _median(stats: list[LatencyStats], field: str) -> float:
    return float(np.median([getattr(s, field) for s in stats]))


if __name__ == "__main__":
    main()
