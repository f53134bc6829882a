"""How good is the regression gate? False alarms on reruns of the same artifact, detections of a slower one.

Measures a baseline of MODEL once, then alternates 20 reruns of the same artifact with 20 runs of a
copy made really slower (harness.gate.slowdown, sized by measurement to about --slowdown), each a fresh
ONNX Runtime session timed as the harness times it, and judges every run against the baseline with the
gate's own latency test. Goals: false alarms <= 1/20, detections >= 19/20.

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
from pathlib import Path

import numpy as np

from harness.gate.baseline import sample_summary
from harness.gate.compare import Thresholds, interleaved, latency_check, memory_check
from harness.gate.slowdown import slowed_copy
from harness.measure.latency import LatencyPlan, time_inferences
from harness.measure.memory import measure_peak_memory
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner

PROBE_WORK = 20_000  # extra multiply-adds of the probe that sizes the slow-down


def measure(model: Path, sample: np.ndarray, plan: LatencyPlan, threads: int) -> list[float]:
    """One run as a CI job makes it: a fresh session, warm-up, then the timed runs, stored as the harness does."""
    with OnnxRuntimeRunner(model, threads=threads) as runner:
        return sample_summary(time_inferences(runner, sample, plan).samples_ms)


def sized_slowdown(model: Path, folder: Path, target: float, sample: np.ndarray, plan: LatencyPlan,
                   threads: int) -> tuple[Path, float]:
    """A slowed copy sized to 1 + target: the extra time grows linearly with the work, so one probe sizes it;
    the returned ratio is measured on the copy made. Each ratio is the median of three original/copy/original
    triplets: one triplet caught in a busy moment once sized the copy 8x slower instead of 1.1x."""
    def ratio(work: int) -> tuple[Path, float]:
        slowed = slowed_copy(model, folder / f"slow-{work}.onnx", work)
        triplets = []
        for _ in range(3):
            medians = [np.median(measure(path, sample, plan, threads)) for path in (model, slowed, model)]
            triplets.append(medians[1] / np.mean([medians[0], medians[2]]))
        return slowed, float(np.median(triplets))
    _, probe = ratio(PROBE_WORK)
    return ratio(max(1, round(PROBE_WORK * target / max(probe - 1, 1e-3))))


def peak_mb(model: Path, sample: np.ndarray, threads: int) -> float:
    return measure_peak_memory(model, sample, input_name=None, output_name=None, provider="CPUExecutionProvider",
                               threads=threads).peak_mb


def sized_bigger(model: Path, folder: Path, baseline_mb: float, growth: float, sample: np.ndarray,
                 threads: int, tries: int = 5) -> Path:
    """A copy whose peak is about 1 + growth times the baseline's. ONNX Runtime's arena grows in chunks, not
    byte by byte (a first guess of 8 bytes per element of work gave +5 % for a 10 % target, its linear
    correction +70 %, and one copy read +3 % or +19 % from run to run), so the work is corrected a few times
    on the median of three readings."""
    work = round(growth * baseline_mb * 2**20 / 8)
    for attempt in range(tries):
        bigger = slowed_copy(model, folder / f"bigger-{attempt}.onnx", work)
        ratio = float(np.median([peak_mb(bigger, sample, threads) for _ in range(3)])) / baseline_mb
        if abs(ratio - 1 - growth) <= growth / 4:
            break
        work = round(work * (1 + growth / max(ratio - 1, 0.01)) / 2)  # halfway to the linear correction
    return bigger


def memory_quality(model: Path, folder: Path, sample: np.ndarray, runs: int, growth: float, threads: int) -> int:
    """False alarms and detections of the peak-memory check, on a copy carrying extra weights. Each run takes a
    fresh baseline reading too: a baseline that happened to land on a low peak is what raises false alarms."""
    gate = Thresholds()
    bigger = sized_bigger(model, folder, peak_mb(model, sample, threads), growth, sample, threads)
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
        slowed, sized_ratio = sized_slowdown(model, folder, args.slowdown, sample, plan, args.threads)
        baseline = measure(model, sample, plan, args.threads)
        alarms, detections, ratios = 0, 0, {"same": [], "slower": []}
        threads = args.threads
        for run in range(args.runs):  # alternate, so drift of a shared machine hits both alike
            for kind, artifact in (("same", model), ("slower", slowed)):
                # a regression is confirmed by timing the baseline's artifact beside this one, as the harness does
                check = latency_check(baseline, measure(artifact, sample, plan, args.threads), gate,
                                      lambda path=artifact: interleaved(lambda: measure(model, sample, plan, threads),
                                                                        lambda: measure(path, sample, plan, threads)))
                ratios[kind].append(check.ratio)
                alarms += kind == "same" and check.regressed
                detections += kind == "slower" and check.regressed
            print(f"run {run + 1:2d}: same {ratios['same'][-1]:.3f}x, slower {ratios['slower'][-1]:.3f}x", flush=True)
    print(f"\nmodel: {args.model or 'tiny classifier (112x112)'}, baseline median {np.median(baseline):.4g} ms, "
          f"{args.threads} thread(s), {args.seconds:g} s per run; gate: {gate.describe()}")
    print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[1]:.2f} over the last 5 minutes "
          "(other processes' load makes reruns slower at random: the gate needs a dedicated runner)")
    print(f"slowed artifact: sized to {sized_ratio:.3f}x, measured median ratio {np.median(ratios['slower']):.3f}x")
    print(f"false alarms: {alarms}/{args.runs} (goal <= 1)   detections: {detections}/{args.runs} (goal >= "
          f"{args.runs - 1})")
    return 0 if alarms <= 1 and detections >= args.runs - 1 else 1


def _tiny_model(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import tiny_classifier

    return tiny_classifier(folder / "tiny.onnx", size=112)


if __name__ == "__main__":
    sys.exit(main())
