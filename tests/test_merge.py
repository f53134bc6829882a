"""`ncap merge`: shards from many runs become one report and one gate verdict, or a clear refusal."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from crafted import crafted_records, write_shard
from test_plugin import FAST, suite  # noqa: F401  (the pytester fixture running the compliance suite)

from harness.gate.baseline import load_baseline, save_baseline
from harness.gate.compare import Thresholds
from harness.merge import main


def test_two_platform_shards_merge_into_one_checked_report(tmp_path):
    shards = [write_shard(tmp_path / p, crafted_records(platform=p, run_id=p)) for p in ("host", "qcs8255")]
    assert main(["merge", "--out", str(tmp_path / "merged"), *map(str, shards)]) == 0
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert {p["run_id"] for p in summary["provenance"]} == {"host", "qcs8255"}
    assert {r["cell"] for r in summary["matrix"]} >= {"dmsnet-int8-host", "dmsnet-int8-qcs8255"}
    check = subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=tmp_path / "merged", capture_output=True)
    assert check.returncode == 0


def test_identical_duplicates_merge_but_conflicting_ones_are_refused(tmp_path, capsys):
    first = write_shard(tmp_path / "a", crafted_records(run_id="a"))
    same = write_shard(tmp_path / "b", crafted_records(run_id="b"))
    assert main(["merge", "--out", str(tmp_path / "ok"), str(first), str(same)]) == 0
    capsys.readouterr()
    other = write_shard(tmp_path / "c", crafted_records(run_id="c", slower=1.2))
    assert main(["merge", "--out", str(tmp_path / "bad"), str(first), str(other)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert error.startswith("ncap merge: conflicting shards: dmsnet-fp32-host latency is (")
    assert str(first) in error and str(other) in error and "merge each cell from one shard only" in error


def test_merge_gates_the_shards_on_a_baseline(tmp_path, capsys):
    baseline = save_baseline(tmp_path / "baseline.json", crafted_records())
    slower = write_shard(tmp_path / "slow", crafted_records(run_id="slow", slower=1.2))
    assert main(["merge", "--out", str(tmp_path / "gated"), "--baseline", str(baseline), str(slower)]) == 1
    assert "gate: fail (2 cell(s) regressed" in capsys.readouterr().out
    same = write_shard(tmp_path / "same", crafted_records(run_id="same"))
    assert main(["merge", "--out", str(tmp_path / "passed"), "--baseline", str(baseline), str(same)]) == 0


def test_merge_keeps_a_verdict_the_shard_reached_and_gates_only_the_rest(tmp_path, capsys):
    baseline = save_baseline(tmp_path / "baseline.json", crafted_records())
    records = crafted_records(run_id="slow", slower=1.2)
    # the shard timed the baseline's own fp32 artifact beside its own and found them alike: the machine was slower
    in_run = {k: records[0][k] for k in ("run_id", "timestamp", "cell", "model", "precision", "platform", "grade")}
    records.append({**in_run, "metric": "regression", "verdict": "pass", "message": "no regression",
                    "method": "timed in alternation", "baseline_sha256": load_baseline(baseline).sha256})
    shard = write_shard(tmp_path / "slow", records)
    assert main(["merge", "--out", str(tmp_path / "gated"), "--baseline", str(baseline), str(shard)]) == 1
    assert "gate: fail (1 cell(s) regressed: dmsnet-int8-host regression" in capsys.readouterr().out
    merged = [json.loads(line) for line in (tmp_path / "gated" / "results.jsonl").read_text().splitlines()]
    assert {(r["cell"], r["verdict"]) for r in merged if r["metric"] == "regression"} == {
        ("dmsnet-fp32-host", "pass"), ("dmsnet-int8-host", "fail")}
    # the same verdict reached against another baseline proves nothing about this one: the cell is gated again
    other = save_baseline(tmp_path / "other.json", crafted_records(run_id="other", slower=1.2))
    assert main(["merge", "--out", str(tmp_path / "regated"), "--baseline", str(other), str(shard)]) == 0
    capsys.readouterr()
    records[-1]["baseline_sha256"] = load_baseline(other).sha256
    elsewhere = write_shard(tmp_path / "elsewhere", records)
    assert main(["merge", "--out", str(tmp_path / "regated2"), "--baseline", str(baseline), str(elsewhere)]) == 1
    assert "gate: fail (2 cell(s) regressed" in capsys.readouterr().out


def test_a_folder_that_is_no_report_is_refused(tmp_path, capsys):
    assert main(["merge", "--out", str(tmp_path / "out"), str(tmp_path)]) == 2
    assert "is not a dms-ncap report folder" in capsys.readouterr().err


def _measured_shard(runner, card, folder, name: str, limits: str) -> Path:
    """A shard the real plugin writes: the tiny model run through the compliance suite with these limits."""
    requirements = runner.path / f"{name}.yaml"
    requirements.write_text(limits)
    shard = runner.path / name
    runner.runpytest("-m", "ncap", "--model", str(card), "--dataset", str(folder), "--precision", "fp32,int8",
                    *FAST, "--ncap-requirements", str(requirements), "--ncap-report", str(shard))
    return shard


def test_merge_exit_codes_gate_on_requirements_not_only_on_regressions(suite, tiny_card, image_folder,  # noqa: F811
                                                                          capsys):
    passing = _measured_shard(suite, tiny_card, image_folder, "ok", "latency_ms: 50\n")
    assert main(["merge", "--out", str(suite.path / "m-ok"), str(passing)]) == 0
    # power is only an estimate on this machine (a skip): --strict calls that evidence incomplete
    assert main(["merge", "--strict", "--out", str(suite.path / "m-strict"), str(passing)]) == 3
    late = _measured_shard(suite, tiny_card, image_folder, "late", "latency_ms: 0.000001\n")
    assert main(["merge", "--out", str(suite.path / "m-late"), str(late)]) == 1
    assert "compliance: not compliant" in capsys.readouterr().out


def test_a_figure_in_error_makes_the_merge_incomplete(tmp_path, capsys):
    records = crafted_records()
    records[0] |= {"verdict": "error", "message": "the board was lost"}
    assert main(["merge", "--out", str(tmp_path / "out"), str(write_shard(tmp_path / "s", records))]) == 3
    assert "exit 3: incomplete evidence" in capsys.readouterr().out


def test_merge_gates_with_the_thresholds_the_shards_ran_with(tmp_path, capsys):
    baseline = save_baseline(tmp_path / "baseline.json", crafted_records())
    tolerant = Thresholds(latency=0.5)  # the shard's --ncap-gate-latency 0.5: a 1.2x slow-down is accepted
    slower = write_shard(tmp_path / "slow", crafted_records(run_id="slow", slower=1.2), gate=tolerant)
    assert main(["merge", "--out", str(tmp_path / "gated"), "--baseline", str(baseline), str(slower)]) == 0
    assert "gate: pass" in capsys.readouterr().out
    strict = write_shard(tmp_path / "strict", crafted_records(model="other", run_id="strict", slower=1.2))
    assert main(["merge", "--out", str(tmp_path / "mixed"), "--baseline", str(baseline), str(slower),
                 str(strict)]) == 2
    assert "the shards ran with different gate thresholds" in capsys.readouterr().err
