"""Peak memory: the high-water RSS of a fresh process that loads the model and runs it.

A fresh process keeps the figure free of what the harness itself holds (PyTorch, datasets).
Run as `python -m harness.measure.memory MODEL SAMPLE.npy` it is that process. The figure is not
the same in every process: ResNet18 FP16 peaks at 190 or 201 MB here, seemingly at random, from
the allocator and page layout. So several processes are probed and the highest figure is the
peak, the worst case a budget is about.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from harness.errors import NcapError
from harness.measure.rss import status_bytes
from harness.runtimes.registry import RunnerSpec, open_runner

PROBE_RUNS = 50
PROBES = 3  # fresh processes per reading: a peak seen in 2 of 3 processes escapes all 3 in 1 reading of 27


@dataclass(frozen=True)
class MemoryReading:
    peak_mb: float  # high-water RSS (VmHWM) of the probe process
    loaded_mb: float  # RSS after the model is loaded, before the first inference
    baseline_mb: float  # RSS of the probe before it loads the model (interpreter + runtime library)
    method: str
    probes_mb: tuple[float, ...] = ()  # every probe's peak, when several processes were probed


def measure_peak_memory(model: Path, sample: np.ndarray, spec: RunnerSpec, probes: int = PROBES) -> MemoryReading:
    """The highest of `probes` fresh processes' peaks, with every probe's figure; each opens the model as `spec`
    says (harness.runtimes.registry)."""
    with tempfile.TemporaryDirectory(prefix="ncap-memory-") as scratch:
        sample_path = Path(scratch) / "sample.npy"
        np.save(sample_path, sample)
        command = [sys.executable, "-m", __name__, str(model), str(sample_path),
                   json.dumps(dataclasses.asdict(spec), default=str)]
        readings = [_probe(command, model) for _ in range(probes)]
    highest = max(readings, key=lambda reading: reading["peak_mb"])
    return MemoryReading(**highest, probes_mb=tuple(reading["peak_mb"] for reading in readings), method=(
        f"peak RSS (VmHWM, the kernel's high-water mark), the highest of {probes} fresh Python processes that each "
        f"load the model with {spec.runtime} ({spec.provider}, {spec.threads} threads) and run {PROBE_RUNS} batch-1 "
        "inferences; includes the interpreter and runtime library"))


def _probe(command: list[str], model: Path) -> dict[str, float]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise NcapError(f"memory probe for {model.name} failed (exit {done.returncode}): {last[:300]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("sample", type=Path)
    parser.add_argument("spec", type=json.loads, help="the RunnerSpec as JSON")
    args = parser.parse_args()
    process = psutil.Process()
    sample = np.load(args.sample)
    baseline = process.memory_info().rss
    try:
        with open_runner(args.model, RunnerSpec(**args.spec)) as runner:
            loaded = process.memory_info().rss
            for _ in range(PROBE_RUNS):
                runner.infer(sample)
            peak = status_bytes("VmHWM")
    except NcapError as exc:
        sys.exit(str(exc))
    print(json.dumps({"peak_mb": peak / 2**20, "loaded_mb": loaded / 2**20, "baseline_mb": baseline / 2**20}))


if __name__ == "__main__":
    main()
