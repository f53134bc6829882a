"""`ncap merge`: shards from many runs become one report and one gate verdict, or a clear refusal."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_plugin import FAST, suite  # noqa: F401  (the pytester fixture running the compliance suite)

from conftest import shard_records
from harness.gate.baseline import load_baseline, save_baseline
from harness.merge import main
from harness.results.record import StoredRecord
from harness.results.store import ResultsStore

SLOWER = 500_000  # extra multiply-adds per inference: several times the tiny model's own work


def rewrite(folder: Path, records: list[dict]) -> Path:
    """The shard's results as given (a shard whose run went otherwise)."""
    (folder / "results.jsonl").unlink()
    store = ResultsStore(folder / "results.jsonl")
    for record in records:
        store.append(StoredRecord.model_validate(record))
    return folder


def test_two_platform_shards_merge_into_one_checked_report(tmp_path, measured_shard):
    shards = [measured_shard("host"), measured_shard("qcs8255", platform="qcs8255")]
    assert main(["merge", "--out", str(tmp_path / "merged"), *map(str, shards)]) == 0
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert len({p["run_id"] for p in summary["provenance"]}) == 2
    assert {r["cell"] for r in summary["matrix"]} >= {"tiny-int8-host", "tiny-int8-qcs8255"}
    check = subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=tmp_path / "merged", capture_output=True)
    assert check.returncode == 0


def test_identical_duplicates_merge_but_conflicting_ones_are_refused(tmp_path, capsys, measured_shard):
    first, same = measured_shard("a"), measured_shard("b")  # two copies of one run's folder
    assert main(["merge", "--out", str(tmp_path / "ok"), str(first), str(same)]) == 0
    capsys.readouterr()
    other = measured_shard("c", slowed=SLOWER)
    assert main(["merge", "--out", str(tmp_path / "bad"), str(first), str(other)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert error.startswith("ncap merge: conflicting shards: tiny-fp32-host latency is (")
    assert str(first) in error and str(other) in error and "merge each cell from one shard only" in error


def test_merge_gates_the_shards_on_a_baseline(tmp_path, capsys, measured_shard):
    baseline = save_baseline(tmp_path / "baseline.json", shard_records(measured_shard("base")))
    slower = measured_shard("slow", slowed=SLOWER)
    assert main(["merge", "--out", str(tmp_path / "gated"), "--baseline", str(baseline), str(slower)]) == 1
    assert "gate: fail (2 cell(s) regressed" in capsys.readouterr().out
    same = measured_shard("same")
    assert main(["merge", "--out", str(tmp_path / "passed"), "--baseline", str(baseline), str(same)]) == 0


def test_merge_keeps_a_verdict_the_shard_reached_and_gates_only_the_rest(tmp_path, capsys, measured_shard):
    baseline = save_baseline(tmp_path / "baseline.json", shard_records(measured_shard("base")))
    slow = measured_shard("slow", slowed=SLOWER)
    records = shard_records(slow)
    # as if the shard had timed the baseline's own fp32 artifact beside its own and found them alike
    latency = next(r for r in records if r["cell"] == "tiny-fp32-host" and r["metric"] == "latency")
    records = [r for r in records if not (r["cell"] == "tiny-fp32-host" and r["metric"] == "regression")]
    records.append({**latency, "metric": "regression", "verdict": "pass", "message": "no regression",
                    "method": "timed in alternation", "baseline_sha256": load_baseline(baseline).sha256})
    shard = rewrite(slow, records)
    assert main(["merge", "--out", str(tmp_path / "gated"), "--baseline", str(baseline), str(shard)]) == 1
    assert "gate: fail (1 cell(s) regressed: tiny-int8-host regression" in capsys.readouterr().out
    merged = shard_records(tmp_path / "gated")
    assert {(r["cell"], r["verdict"]) for r in merged if r["metric"] == "regression"} == {
        ("tiny-fp32-host", "pass"), ("tiny-int8-host", "fail")}
    # the same verdict reached against another baseline proves nothing about this one: the cell is gated again
    other = save_baseline(tmp_path / "other.json", shard_records(measured_shard("slow-again", slowed=SLOWER)))
    assert main(["merge", "--out", str(tmp_path / "regated"), "--baseline", str(other), str(shard)]) == 0
    capsys.readouterr()
    records[-1]["baseline_sha256"] = load_baseline(other).sha256
    elsewhere = rewrite(shard, records)
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


def test_a_figure_in_error_makes_the_merge_incomplete(tmp_path, capsys, measured_shard):
    shard = measured_shard("error")
    records = shard_records(shard)
    records[0] |= {"verdict": "error", "message": "the board was lost"}
    assert main(["merge", "--out", str(tmp_path / "out"), str(rewrite(shard, records))]) == 3
    assert "exit 3: incomplete evidence" in capsys.readouterr().out


def test_merge_gates_with_the_thresholds_the_shards_ran_with(tmp_path, capsys, measured_shard):
    baseline = save_baseline(tmp_path / "baseline.json", shard_records(measured_shard("base")))
    tolerant = ("--ncap-gate-latency", "1000", "--ncap-gate-memory", "1000")  # the shard accepts any slow-down
    slower = measured_shard("slow-tolerant", slowed=SLOWER, options=tolerant)
    assert main(["merge", "--out", str(tmp_path / "gated"), "--baseline", str(baseline), str(slower)]) == 0
    assert "gate: pass" in capsys.readouterr().out
    strict = measured_shard("strict", model="other", slowed=SLOWER)
    assert main(["merge", "--out", str(tmp_path / "mixed"), "--baseline", str(baseline), str(slower),
                 str(strict)]) == 2
    assert "the shards ran with different gate thresholds" in capsys.readouterr().err


@pytest.mark.parametrize("damage", [
    ("summary.json", b"{not json"), ("summary.json", b'{"provenance": 3}'), ("summary.json", bytes(range(256))),
    ("results.jsonl", b'{"cell": "x", "metric": "latency"}\n'), ("results.jsonl", bytes(range(256)) + b"\n"),
])
def test_a_damaged_shard_is_one_line_and_exit_2(tmp_path, capsys, measured_shard, damage):
    shard = measured_shard("damaged")
    name, content = damage
    (shard / name).write_bytes(content)
    assert main(["merge", "--out", str(tmp_path / "out"), str(shard)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ncap merge: ") and "\n" not in error
