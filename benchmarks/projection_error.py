"""How far are the latency projections from the truth, where the truth can be measured (this host)?

For every zoo model x recipe whose artifact is cached (under $NCAP_CACHE, default ~/.cache/dms-ncap), project its
batch-1 latency two ways and measure it:
- the roofline (ONNX Runtime microbenchmarks on synthetic graphs), the fallback where a platform has no predictor;
- the kernel predictor (harness.project.predictor), fitted by `ncap profile` on synthetic blocks, never on these
  networks. At the start of each round a panel of the fit's own blocks is re-timed as the plan timed them, so
  the machine's drift since the fit is measured, by kernel size, and taken out rather than read as the
  predictor's error (harness.project.validate.DriftPanel: one probe block, read between a network's runs, had put
  it 5-16 % off; a slow spell slows small kernels more than large ones).
Each cell is measured in `--rounds` short rounds over all the cells, about a minute apart: a round's time is the
quiet mean of its runs (the fastest fifth, as the fit's blocks are timed: profile.quiet_mean in
harness.runtimes.onnxruntime), and the truth the median of the rounds. A shared machine has slow spells, from a
fraction of a second to minutes, that run some networks up to twice as long and leave others be (MobileNetV3 FP16 in
0.2 s windows: 1.10-2.54 ms, while its FP32 held 0.28-0.30 ms): the quiet mean sees past a spell within a round, and
the median of 9 rounds of 0.3 s outvotes up to 4 rounds a spell fills. How far the median of the odd rounds lies from
the median of the even ones is the truth's own reproducibility, printed beside the errors (a prediction cannot be
shown within +/-10 % of a truth that itself moves by more). It prints each cell's errors, the share of cells within
+/-10 % and +/-25 % for both methods on the same cells, and the worst cells (nn-Meter keeps 99 % of its predictions
within +/-10 % on a mobile CPU). Each network is also profiled, and the predictor's error split in two: the
regressors' (the prediction against the network's own kernels' times, brought to the wall clock as the fit brings the
blocks') and the rest's (that own profile against the truth: the profiler's cost and the call, fitted on blocks); the
two multiply to the whole.

    python benchmarks/projection_error.py [--threads N] [--seconds 0.3] [--rounds 9] [--predictor FILE] [--record]
                                          [--json FILE] [--against EARLIER.json ...]

`--record` writes the held-out error into the predictor file: projections with it then name that error.
`--against` compares the truth with earlier evaluations' (their --json files): the share of cells whose truth
reproduced within +/-10 % between two sessions bounds what a predictor can be shown to reach on this machine (on
the 2-core VM, half an hour to ten hours apart: 60-89 % of 15-18 cells), and the predictor is also scored against
each cell's median truth over all the evaluations of its fit.
Cells whose artifacts are missing are skipped: run `pytest -m ncap` (with the `--recipe`s wanted) first.
"""
from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from onnxruntime.capi.onnxruntime_pybind11_state import Fail

from harness import cache
from harness.errors import NcapError
from harness.measure.latency import LatencyPlan
from harness.optimize.recipe import known_precisions
from harness.project.predictor import load_predictor, predictor_path
from harness.project.validate import (
    DriftPanel,
    EvaluatedCell,
    HostCheck,
    check_on_host,
    load_evaluation,
    pooled_truths,
    share_within,
    truth_moves,
)

WORST = 5


def cached_cells(root: Path) -> list[tuple[str, str, str, Path]]:
    """(model, recipe, precision, artifact) for each cached artifact ending in a precision step whose chain of
    steps starts at a cached trained model; the recipe is the chain's pass names."""
    models = {cache.file_sha256(onnx): onnx.parent.name.rsplit("-", 1)[0]
              for onnx in sorted((root / "models").glob("*/model.onnx"))}
    steps = [(json.loads(step.read_text()), step.parent / "model.onnx")
             for step in sorted((root / "artifacts").glob("*/step.json"))]
    # which step made each model; a step that changed nothing (fp32 copies its input) made nothing new
    producers = {record["sha256"]: record for record, _ in steps if record["input_sha256"] != record["sha256"]}
    cells = []
    for record, onnx in steps:
        if record["pass"] not in known_precisions():
            continue
        chain, source = [record["pass"]], record["input_sha256"]
        while source in producers and source not in models:
            chain.insert(0, producers[source]["pass"])
            source = producers[source]["input_sha256"]
        if source in models:
            cells.append((models[source], ",".join(chain), record["pass"], onnx))
    return sorted(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.3, help="measurement time per cell and round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of measurement over all the cells (2 or more)")
    parser.add_argument("--predictor", type=Path, default=predictor_path("host"),
                        help="the host's predictor file (default: the cache's predictors/host.json)")
    parser.add_argument("--record", action="store_true", help="write the held-out error into the predictor file")
    parser.add_argument("--json", type=Path, help="write every cell's figures here")
    parser.add_argument("--against", type=Path, nargs="+", default=[],
                        help="earlier evaluations' --json files: how far the truth moved")
    args = parser.parse_args()
    if args.rounds < 2:
        raise SystemExit(f"--rounds {args.rounds}: the truth's reproducibility needs 2 rounds or more; use --rounds 9")
    try:  # before the measurement: a bad file fails at once, not after it
        earlier = {path: load_evaluation(path) for path in args.against}
    except NcapError as exc:
        raise SystemExit(str(exc)) from None
    cells = cached_cells(cache.cache_root())
    if not cells:
        raise SystemExit(f"no cached zoo artifacts under {cache.cache_root()}; run `pytest -m ncap` first")
    predictor = load_predictor(args.predictor) if args.predictor.is_file() else None
    if predictor is None:
        print(f"no predictor at {args.predictor} (fit one with `ncap profile`): the roofline alone")
    elif predictor.record.threads != args.threads:
        raise SystemExit(f"the predictor was fitted at {predictor.record.threads} thread(s), not {args.threads}")
    else:
        print(predictor.describe())
    try:
        panel = DriftPanel(predictor, args.threads) if predictor else None
    except NcapError as exc:
        raise SystemExit(str(exc)) from None
    checks: dict[tuple[str, str], list[HostCheck]] = {}
    for round_number in range(1, args.rounds + 1):
        drift = panel.drift() if panel else None
        print(f"round {round_number} of {args.rounds}" + ("" if drift is None else
              f": the fit's kernels now take {drift.at([2.0]):.3f}x at 2 us, {drift.at([1e3]):.3f}x at 1 ms"))
        for model, recipe, precision, onnx in cells:
            if round_number > 1 and (model, recipe) not in checks:
                continue  # it could not be measured in the first round
            try:
                check = check_on_host(onnx, precision, args.threads, LatencyPlan(10, 10, args.seconds), predictor,
                                      drift)
            except (NcapError, Fail) as exc:  # ONNX Runtime cannot load the artifact: no truth to compare
                print(f"{model:19} {recipe:16} not measured: {str(exc).splitlines()[0][:150]}")
                continue
            checks.setdefault((model, recipe), []).append(check)
    fit = predictor.record.fitted if predictor else None
    rows = [_row(model, recipe, cell_checks, fit) for (model, recipe), cell_checks in checks.items()]
    print(f"{'model':19} {'recipe':16} {'roofline ms':>11} {'predicted ms':>12} {'measured ms':>11} "
          f"{'drift':>6} {'spread':>7} {'roofline':>8} {'predictor':>9} {'regressors':>10} {'rest':>7}")
    for row in rows:
        print(f"{row.model:19} {row.recipe:16} {row.roofline_ms:11.3f} {row.predicted_ms:12.3f} "
              f"{row.measured_ms:11.3f} {row.drift:6.3f} {row.truth_spread:7.1%} {row.roofline_error:+8.1%} "
              f"{row.predictor_error:+9.1%} {row.regressor_error:+10.1%} {row.overhead_error:+7.1%}")
    spreads = [row.truth_spread for row in rows]
    print(f"the truth itself: on {share_within(spreads, 0.10):.0%} of {len(rows)} cells the median of the odd rounds "
          f"lies within +/-10 % of the even ones', on {share_within(spreads, 0.25):.0%} within +/-25 %")
    # "undrifted": the predictor against the measurement as taken, without the drift panel's correction;
    # "regressor" and "overhead": its error split (the regressors' on the network's own kernels, the rest's)
    for method in ("roofline", "predictor", "undrifted", "regressor", "overhead") if predictor else ("roofline",):
        errors = [getattr(row, f"{method}_error") for row in rows]
        worst = sorted(rows, key=lambda row: -abs(getattr(row, f"{method}_error")))[:WORST]
        print(f"{method}: {len(errors)} cells, {args.threads} thread(s): within +/-10 %: "
              f"{share_within(errors, 0.10):.0%}, within +/-25 %: {share_within(errors, 0.25):.0%}; worst: "
              + ", ".join(f"{r.model} {r.recipe} {getattr(r, f'{method}_error'):+.1%}" for r in worst))
    if args.json:
        args.json.write_text(json.dumps([row.model_dump() for row in rows], indent=2))
    if earlier:
        _compare(rows, earlier)
    if predictor and args.record:
        errors = [row.predictor_error for row in rows]
        predictor.record.held_out = {"cells": len(rows), "within_10": share_within(errors, 0.10),
                                     "within_25": share_within(errors, 0.25),
                                     "worst": max(errors, key=abs), "source": "benchmarks/projection_error.py",
                                     "truth_within_10": share_within(spreads, 0.10), "rounds": args.rounds,
                                     "date": datetime.now(UTC).isoformat(timespec="seconds")}
        predictor.save(args.predictor)
        print(f"held-out error recorded in {args.predictor}")


def _compare(rows: list[EvaluatedCell], earlier: dict[Path, list[EvaluatedCell]]) -> None:
    """How far the truth moved since each earlier evaluation, and the predictor against each cell's median truth
    over this and the earlier evaluations of the same fit."""
    for path, cells in earlier.items():
        moves, same_fit = truth_moves(rows, cells)
        if not moves:
            print(f"against {path}: no cell in common, timed alike")
            continue
        compared = "truths at the fit's speed" if same_fit else "times as measured (another fit, or none)"
        print(f"against {path}, {len(moves)} cells in common, {compared}: the truth moved within +/-10 % on "
              f"{share_within(list(moves.values()), 0.10):.0%} of them, within +/-25 % on "
              f"{share_within(list(moves.values()), 0.25):.0%}; most: "
              + ", ".join(f"{model} {recipe} {move:+.1%}" for (model, recipe), move
                          in sorted(moves.items(), key=lambda item: -abs(item[1]))[:WORST]))
    truths = pooled_truths(rows, list(earlier.values()))
    most = max((len(cell_truths) for cell_truths in truths.values()), default=1)
    if most > 1:
        errors = [row.predicted_ms / float(np.median(truths[row.model, row.recipe])) - 1 for row in rows]
        print(f"predictor against each cell's median truth over up to {most} evaluations of its fit: within +/-10 %: "
              f"{share_within(errors, 0.10):.0%}, within +/-25 %: {share_within(errors, 0.25):.0%}")


def _row(model: str, recipe: str, checks: list[HostCheck], fit: str | None) -> EvaluatedCell:
    """One cell's figures over its rounds: the truth is the median of the rounds (each brought back to the fit's
    speed by its round's drift), and its spread how far the median of the odd rounds lies from the even ones'."""
    first = checks[0]
    predicted = first.prediction.ms if first.prediction else float("nan")
    measured = float(np.median([c.measured_ms for c in checks]))
    rounds = np.array([c.measured_ms / c.drift for c in checks])
    truth = float(np.median(rounds))
    own_profile = float(np.median([c.own_profile_ms for c in checks]))
    return EvaluatedCell(
        model=model, recipe=recipe, fit=fit, roofline_ms=first.projected_ms, predicted_ms=predicted,
        measured_ms=measured, drift=float(np.median([c.drift for c in checks])), truth_ms=truth, timed="quiet",
        rounds_ms=rounds.tolist(), truth_spread=_split_half(rounds), roofline_error=first.projected_ms / measured - 1,
        predictor_error=predicted / truth - 1, undrifted_error=predicted / measured - 1, own_profile_ms=own_profile,
        regressor_error=predicted / own_profile - 1, overhead_error=own_profile / truth - 1,
        unknown_kernel_types=first.prediction.unknown_kinds if first.prediction else [])


def _split_half(rounds: np.ndarray) -> float:
    """The median of the odd rounds over the even ones' less 1: the truth's reproducibility at half the rounds."""
    return float(np.median(rounds[0::2]) / np.median(rounds[1::2]) - 1) if len(rounds) >= 2 else float("nan")


if __name__ == "__main__":
    main()
