"""Under pytest -n N no cell is timed while another worker computes, and a cell's tests stay on one worker."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time

from test_plugin import FAST, suite  # noqa: F401  (the pytester fixture)

from harness.measure import quiet

HOLD_S = 1.0


def _hold_in_another_process(lock: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from harness.measure import quiet
with quiet.{lock}():
    print("held", flush=True)
    time.sleep({HOLD_S})
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_timing_waits_for_another_workers_heavy_work_and_heavy_work_does_not_wait_for_itself():
    holder = _hold_in_another_process("computing")
    started = time.monotonic()
    with quiet.computing():
        shared_wait = time.monotonic() - started
    with quiet.timing():
        exclusive_wait = time.monotonic() - started
    holder.wait()
    assert shared_wait < 0.5 * HOLD_S <= exclusive_wait


def test_heavy_work_waits_while_another_worker_times():
    holder = _hold_in_another_process("timing")
    started = time.monotonic()
    with quiet.computing():
        waited = time.monotonic() - started
    holder.wait()
    assert waited >= 0.5 * HOLD_S


def test_under_xdist_a_cells_tests_run_in_the_worker_that_measured_it(suite, tiny_card, image_folder,  # noqa: F811
                                                                     tmp_path):
    baseline = tmp_path / "baseline.json"
    common = ["-m", "ncap", "--model", str(tiny_card), "--dataset", str(image_folder), "--precision", "fp32,fp16,int8",
              *FAST]  # three cells over two workers: a scheduler that spreads tests splits some cell's tests
    suite.runpytest(*common, "--ncap-save-baseline", str(baseline)).assert_outcomes(passed=11, skipped=10)
    (suite.path / "reports" / "out" / "results.jsonl").unlink()
    # thresholds no timing noise reaches: this test is about where the gate runs, not what it finds
    result = suite.runpytest(*common, "--ncap-baseline", str(baseline), "--ncap-gate-latency", "10",
                             "--ncap-gate-memory", "10", "-n", "2", "-v")
    result.assert_outcomes(passed=14, skipped=7)
    workers: dict[str, set[str]] = {}
    for worker, cell in re.findall(r"\[(gw\d+)\].*? (?:PASSED|SKIPPED|FAILED|ERROR) \S+::test_\w+\[([^\]]+)\]",
                                   result.stdout.str()):
        workers.setdefault(cell, set()).add(worker)
    # the gate of a cell run by another worker would measure its figures again instead of judging the recorded ones
    assert len(workers) == 3 and all(len(used) == 1 for used in workers.values()), workers
    records = [json.loads(line) for line in (suite.path / "reports" / "out" / "results.jsonl").read_text().splitlines()]
    keys = [(r["cell"], r["metric"]) for r in records]
    assert len(keys) == len(set(keys)) == 21
