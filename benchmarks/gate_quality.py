"""How good is the regression gate? False alarms on reruns of the same artifact, detections of a slower one.

Alternates 20 reruns of MODEL with 20 runs of a copy made really slower (harness.gate.slowdown, sized by
measurement to --slowdown or up to half as much again) and judges each as the harness's gate does: MODEL
(the baseline's artifact) and the rerun timed in alternation in fresh ONNX Runtime sessions, the latency
test, and a second such timing, its samples joining the first's, to confirm a regression. For contrast it
also judges each against samples of MODEL stored once at the start, with no second look. Goals: false
alarms <= 1/20, detections >= 19/20.

    python benchmarks/gate_quality.py [MODEL.onnx] [--runs 20] [--slowdown 0.10] [--seconds 0.5] [--threads 1]
                                      [--memory]

Without MODEL it uses the tests' tiny classifier (a 112x112 full-image convolution).

With --memory it measures the peak-memory check instead: 20 reruns of the same artifact's memory probe
(the highest of 3 fresh processes) against its baseline reading, and 20 of a copy carrying extra weights
sized to about --slowdown more peak memory; a growth is confirmed by probing both again, as the harness does.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.gate.baseline import sample_summary
from harness.gate.compare import Thresholds, latency_check, memory_check
from harness.gate.paired import time_beside_baseline
from harness.gate.slowdown import slowed_copy
from harness.measure.latency import LatencyPlan, time_inferences
from harness.measure.memory import measure_peak_memory
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner
from harness.runtimes.registry import RunnerSpec

PROBE_WORK = 20_000  # extra multiply-adds of the first copy tried for the slow-down


def measure(model: Path, sample: np.ndarray, plan: LatencyPlan, threads: int) -> list[float]:
    """One run as a CI job makes it: a fresh session, warm-up, then the timed runs, stored as the harness does."""
    with OnnxRuntimeRunner(model, threads=threads) as runner:
        return sample_summary(time_inferences(runner, sample, plan).samples_ms)


def alternating(baseline: Path, current: Path, sample: np.ndarray, plan: LatencyPlan,
                threads: int) -> tuple[list[float], list[float]]:
    """The gate's paired timing, through the gate's own function."""
    def open_runner(model: Path, spinning: bool) -> OnnxRuntimeRunner:
        return OnnxRuntimeRunner(model, threads=threads, spinning=spinning)
    return time_beside_baseline(open_runner, baseline, current, sample, plan)


def sized_copy(model: Path, folder: Path, target: float, ratio_of: Callable[[Path], float], work: int,
               tries: int = 6) -> tuple[Path, float]:
    """A copy at least 1 + target times slower (or bigger), at most 1 + 1.5 target, with the ratio measured on
    it. Neither time nor peak memory grows linearly with the extra work (thread-pool cut-offs, the arena's
    chunks: a linear guess once made a 1.1x target 1.9x), so the work is corrected on measurement, each step
    halfway (in log scale) to the linear correction. The window starts at the target, not below it: stopping
    at the first noisy reading near the target picks copies whose reading was lucky (one read 1.088x and then
    measured 1.029x against its baseline)."""
    for _ in range(tries):
        copy = slowed_copy(model, folder / f"copy-{work}.onnx", work)
        ratio = ratio_of(copy)
        if target <= ratio - 1 <= 1.5 * target:
            break
        work = max(1, round(work * np.sqrt(1.25 * target / max(ratio - 1, 1e-3))))
    return copy, ratio


def peak_mb(model: Path, sample: np.ndarray, threads: int) -> float:
    return measure_peak_memory(model, sample, RunnerSpec(threads=threads)).peak_mb


def memory_quality(model: Path, folder: Path, sample: np.ndarray, runs: int, growth: float, threads: int) -> int:
    """False alarms and detections of the peak-memory check, on a copy carrying extra weights. Each run takes a
    fresh baseline reading too: a baseline that happened to land on a low peak is what raises false alarms."""
    gate, first = Thresholds(), peak_mb(model, sample, threads)
    bigger, _ = sized_copy(model, folder, growth, lambda copy: float(np.median(
        [peak_mb(copy, sample, threads) for _ in range(3)])) / first, round(growth * first * 2**20 / 8))
    counts = {"alarms": 0, "detections": 0, "alarms at first look": 0, "detections at first look": 0}
    ratios: dict[str, list[float]] = {"same": [], "bigger": []}
    for run in range(runs):
        baseline = peak_mb(model, sample, threads)
        for kind, artifact in (("same", model), ("bigger", bigger)):
            after = peak_mb(artifact, sample, threads)
            check = memory_check(baseline, after, gate, lambda path=artifact: (
                peak_mb(model, sample, threads), peak_mb(path, sample, threads)))
            ratios[kind].append(check.ratio)
            found = "alarms" if kind == "same" else "detections"
            counts[found] += check.regressed
            counts[f"{found} at first look"] += check.ratio > 1 + gate.memory
        print(f"run {run + 1:2d}: baseline {baseline:.1f} MB, same {ratios['same'][-1]:.3f}x, "
              f"bigger {ratios['bigger'][-1]:.3f}x", flush=True)
    print(f"\nmodel: {model}; gate: {gate.describe()}")
    print(f"bigger artifact: measured median ratio {np.median(ratios['bigger']):.3f}x; same artifact ratios "
          f"{min(ratios['same']):.3f}-{max(ratios['same']):.3f}x")
    print(f"without the second look: false alarms {counts['alarms at first look']}/{runs}, detections "
          f"{counts['detections at first look']}/{runs}")
    print(f"false alarms: {counts['alarms']}/{runs} (goal <= 1)   detections: {counts['detections']}/{runs} "
          f"(goal >= {runs - 1})")
    return 0 if counts["alarms"] <= 1 and counts["detections"] >= runs - 1 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--slowdown", type=float, default=0.10)
    parser.add_argument("--seconds", type=float, default=0.5, help="timed seconds per run (at least 300 runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory", action="store_true", help="measure the peak-memory check instead of latency")
    args = parser.parse_args()
    plan, gate = LatencyPlan(20, 300, args.seconds), Thresholds()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        model = args.model or _tiny_model(folder)
        from onnxruntime import InferenceSession

        shape = [d if isinstance(d, int) else 1 for d in InferenceSession(str(model)).get_inputs()[0].shape]
        sample = np.random.default_rng(0).random(shape, dtype=np.float32)
        if args.memory:
            return memory_quality(model, folder, sample, args.runs, args.slowdown, args.threads)
        def slow_down(copy: Path) -> float:  # the median of three alternating timings: one is too noisy
            pairs = [alternating(model, copy, sample, plan, args.threads) for _ in range(3)]
            return float(np.median([np.median(after) / np.median(before) for before, after in pairs]))
        slowed, sized_ratio = sized_copy(model, folder, args.slowdown, slow_down, PROBE_WORK)
        baseline = measure(model, sample, plan, args.threads)
        counts = {"alarms": 0, "detections": 0, "stored alarms": 0, "stored detections": 0}
        ratios: dict[str, list[float]] = {"same": [], "slower": []}
        for run in range(args.runs):  # alternate, so drift of a shared machine hits both alike
            for kind, artifact in (("same", model), ("slower", slowed)):
                # as the harness does: the baseline's artifact and this one timed in alternation, a regression
                # confirmed by a second such timing whose samples join the first's
                def paired(path: Path = artifact) -> tuple[list[float], list[float]]:
                    return alternating(model, path, sample, plan, args.threads)
                check = latency_check(*paired(), gate, paired)
                # for contrast: the baseline's samples stored at the start, no second look
                stored = latency_check(baseline, measure(artifact, sample, plan, args.threads), gate)
                ratios[kind].append(check.ratio)
                found = "alarms" if kind == "same" else "detections"
                counts[found] += check.regressed
                counts[f"stored {found}"] += stored.regressed
            print(f"run {run + 1:2d}: same {ratios['same'][-1]:.3f}x, slower {ratios['slower'][-1]:.3f}x", flush=True)
    print(f"\nmodel: {args.model or 'tiny classifier (112x112)'}, baseline median {np.median(baseline):.4g} ms, "
          f"{args.threads} thread(s), {args.seconds:g} s per run; gate: {gate.describe()}")
    print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[1]:.2f} over the last 5 minutes "
          "(other processes' load makes reruns slower at random: the gate needs a dedicated runner)")
    print(f"slowed artifact: sized to {sized_ratio:.3f}x, measured median ratio {np.median(ratios['slower']):.3f}x")
    print(f"against samples stored once at the start, no second look: false alarms {counts['stored alarms']}/"
          f"{args.runs}, detections {counts['stored detections']}/{args.runs}")
    print(f"false alarms: {counts['alarms']}/{args.runs} (goal <= 1)   detections: {counts['detections']}/{args.runs} "
          f"(goal >= {args.runs - 1})")
    return 0 if counts["alarms"] <= 1 and counts["detections"] >= args.runs - 1 else 1


def _tiny_model(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import tiny_classifier

    return tiny_classifier(folder / "tiny.onnx", size=112)


if __name__ == "__main__":
    sys.exit(main())
