"""The plugin end to end through pytester: options, verdicts that can fail, errors that stay local."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SUITE, tiny_classifier, write_card
from harness.errors import NcapError
from harness.merge import main as merge_main
from harness.runtimes.qnn.runner import qnn_version

FAST = ["-rs", "--ncap-min-runs", "300", "--ncap-min-seconds", "0.05", "--ncap-warmup", "2", "-p", "no:cacheprovider"]


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_ncap=SUITE.read_text())
    return pytester


def run_suite(suite: pytest.Pytester, card: Path, folder: Path, *extra: str) -> pytest.RunResult:
    return suite.runpytest("-m", "ncap", "--model", str(card), "--dataset", str(folder),
                           "--precision", "fp32,int8", *FAST, *extra)


def records(suite: pytest.Pytester) -> list[dict]:
    lines = (suite.path / "reports" / "out" / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_default_limits_pass_and_report_is_written(suite, tiny_card, image_folder):
    result = run_suite(suite, tiny_card, image_folder)
    # latency, memory and accuracy (int8) pass; power is an estimate (skipped), fp32 accuracy is the reference,
    # with no baseline the regression gate skips, and the host has no NPU placement to check
    result.assert_outcomes(passed=7, skipped=7)
    written = {r["metric"]: r for r in records(suite) if r["cell"] == "tiny-int8-host"}
    assert written["latency"]["grade"] == "host-measured" and written["latency"]["n"] >= 300
    assert written["latency"]["p99_ucb_ms"] >= written["latency"]["p99_ms"]
    assert written["memory"]["peak_mb"] > 10
    assert written["power"]["grade"] in ("estimated", "host-measured")
    assert set(written["accuracy"]) >= {"accuracy", "reference_accuracy", "drop_pt", "limit", "verdict", "method"}
    drift = written["accuracy"]["layer_drift"]  # where INT8 loses accuracy: the tiny net's Conv output and logits
    assert {layer["tensor"] for layer in drift["worst"]} <= {"scores", "logits"} and drift["worst"]
    assert all(0 < layer["relative_error"] < 0.5 for layer in drift["worst"]), drift
    html = (suite.path / "reports" / "out" / "report.html").read_text()
    assert "tiny" in html and "host-measured" in html and 'id="layer-drift"' in html
    assert "Where quantisation loses accuracy" in (suite.path / "reports" / "out" / "report.md").read_text()


def test_test_ids_name_model_precision_platform(suite, tiny_card, image_folder):
    result = suite.runpytest("-m", "ncap", "--model", str(tiny_card), "--dataset", str(image_folder),
                             "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_latency[[]tiny-fp32-host[]]", "*test_accuracy_drop[[]tiny-int8-host[]]"])


@pytest.mark.parametrize("limits, failing", [
    ("latency_ms: 0.000001", "test_latency"),
    ("memory_mb: 1", "test_memory"),
])
def test_an_impossible_limit_fails_its_test(suite, tiny_card, image_folder, limits, failing):
    requirements = suite.path / "limits.yaml"
    requirements.write_text(limits + "\n")
    result = run_suite(suite, tiny_card, image_folder, "--ncap-requirements", str(requirements))
    failed = [r.nodeid for r in result.reprec.getreports("pytest_runtest_logreport") if r.failed]
    assert failed and all(failing in nodeid for nodeid in failed)
    result.stdout.fnmatch_lines(["*breaks the limit*requirements file*"])


def test_estimated_power_is_skipped_unless_asked_then_it_can_fail(suite, tiny_card, image_folder):
    requirements = suite.path / "limits.yaml"
    requirements.write_text("power_w: 0.000001\n")
    skipped = run_suite(suite, tiny_card, image_folder, "-k", "test_power", "--ncap-requirements", str(requirements))
    skipped.assert_outcomes(skipped=2)
    skipped.stdout.fnmatch_lines(["*only an estimate*--ncap-assert-estimates*"])
    asserted = run_suite(suite, tiny_card, image_folder, "-k", "test_power", "--ncap-requirements", str(requirements),
                         "--ncap-assert-estimates")
    asserted.assert_outcomes(failed=2)


def test_unknown_platform_is_a_usage_error_listing_known_ones(suite):
    result = suite.runpytest("-m", "ncap", "--platform", "snapdragon9000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown platform 'snapdragon9000'; known platforms: *host*qcs8255*"])


@pytest.mark.parametrize("option, value, message", [
    ("--precision", "int3", "*unknown precision int3; known: fp32, fp16, int8*"),
    ("--model", "no-such-net", "*neither a zoo model*"),
    ("--recipe", "fp16,,int8", "*recipe 'fp16,,int8' has an empty step*"),
    ("--recipe", "sharpen,int8", "*recipe step 'sharpen' names no known pass; known: *"),
    ("--ncap-power-meter", "nvml:first", "*--ncap-power-meter 'nvml:first' is not a meter spec; use rapl, nvml*"),
    ("--ncap-power-meter", "bogus", "*--ncap-power-meter 'bogus' is not a meter spec*"),
    ("--ncap-min-runs", "100", "*--ncap-min-runs 100 is too few for a 95 % upper bound on p99; give at least 299*"),
    ("--ncap-min-seconds", "nan", "*--ncap-min-seconds nan is not a finite, non-negative duration*"),
    ("--ncap-warmup", "-1", "*--ncap-warmup -1 is negative*"),
    ("--ncap-gate-alpha", "nan", "*--ncap-gate-alpha nan is not a significance level*"),
    ("--ncap-gate-alpha", "-1", "*--ncap-gate-alpha -1.0 is not a significance level*"),
    ("--ncap-gate-latency", "inf", "*--ncap-gate-latency inf is not a finite, non-negative threshold*"),
    ("--ncap-threads", "-1", "*--ncap-threads -1 is not a thread count*"),
    ("--precision", "", "*--precision '' names no precision*"),
    ("--device", "", "*--device is empty*"),
    ("--ncap-scenario-runs", "0", "*--ncap-scenario-runs 0 is not a number of sequences*"),
    ("--ncap-fps", "nan", "*--ncap-fps nan is not a camera rate*"),
    ("--ncap-scenario-recording", "no-such-recording", "*--ncap-scenario-recording no-such-recording is not a folder*"),
    ("--ncap-scenario-protocol", "no-such.yaml", "*cannot read scenario protocol no-such.yaml*"),
])
def test_bad_selection_is_a_usage_error(suite, option, value, message):
    result = suite.runpytest("-m", "ncap", option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.parametrize("limits, field", [("latency_ms: fast", "latency_ms"), ("latency_ms: .inf", "latency_ms"),
                                           ("memory_mb: .nan", "memory_mb"), ("latency_ms: true", "latency_ms"),
                                           ("accuracy_drop_pt: {int8: -1}", "accuracy_drop_pt.int8")])
def test_malformed_requirements_file_is_a_usage_error_naming_the_field(suite, limits, field):
    bad = suite.path / "limits.yaml"
    bad.write_text(limits + "\n")
    result = suite.runpytest("-m", "ncap", "--ncap-requirements", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*limits.yaml: field {field}: *"])


def test_corrupt_onnx_errors_clearly_and_other_cells_still_run(suite, tiny_card, image_folder, tmp_path):
    corrupt = tmp_path / "broken.onnx"
    corrupt.write_bytes(tiny_card.with_suffix(".onnx").read_bytes()[:200])  # a truncated download
    broken_card = write_card(tmp_path, "broken.onnx", name="broken")
    result = run_suite(suite, f"{tiny_card},{broken_card}", image_folder)
    outcomes = result.parseoutcomes()
    assert outcomes["errors"] == 10  # every broken cell is an error, none passes or is skipped
    # the good model's cells all ran to a verdict (whether its latency met 50 ms on a shared VM is not the point)
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 7
    result.stdout.fnmatch_lines(["*broken.onnx is not a valid ONNX model*re-export or replace the file*"])
    errors = [r for r in records(suite) if r["verdict"] == "error"]
    assert {r["cell"] for r in errors} == {"broken-fp32-host", "broken-int8-host"}


def test_a_model_with_two_unnamed_outputs_is_an_error_naming_them(suite, image_folder, tmp_path):
    tiny_classifier(tmp_path / "two.onnx", outputs=2)
    card = write_card(tmp_path, "two.onnx", name="two")
    result = run_suite(suite, card, image_folder, "-k", "test_latency and fp32")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*has 2 outputs (logits, extra); name the one to use as output.name*"])


def test_other_platforms_skip_unsupported_precisions_and_project_the_rest(suite, tiny_card, image_folder):
    result = run_suite(suite, tiny_card, image_folder, "--platform", "qcs8255")
    # int8 latency projected (see test_projected_run); with .[qnn], int8 placement and emulated accuracy (test_qnn)
    compiled = 2 if qnn_version() else 0
    result.assert_outcomes(passed=1 + compiled, skipped=13 - compiled)
    result.stdout.fnmatch_lines(["*does not support fp32*", "*no power envelope*"])
    result.stdout.fnmatch_lines(["*projected memory * MB is a lower bound: within <= 1024 MB it shows nothing*"])
    latency = next(r for r in records(suite) if r["metric"] == "latency" and r["precision"] == "int8")
    assert latency["grade"] == "projected" and "projected_ms" in latency and "p99_ucb_ms" not in latency
    assert "calibrated on MobileNetV3 at 224x224 int8, 12 ms" in latency["method"]


def test_xdist_workers_share_one_run_and_one_report(suite, tiny_card, image_folder):
    result = run_suite(suite, tiny_card, image_folder, "-n", "2")
    result.assert_outcomes(passed=7, skipped=7)
    written = records(suite)
    assert len(written) == 14 and len({r["run_id"] for r in written}) == 1
    report = (suite.path / "reports" / "out" / "report.md").read_text()
    assert "tiny | fp32" in report and "tiny | int8" in report


def test_recipes_become_cells_with_their_own_ids(suite, tiny_card, image_folder):
    result = suite.runpytest("-m", "ncap", "--model", str(tiny_card), "--dataset", str(image_folder),
                             "--recipe", "int8:Entropy", "--recipe", "fp32", *FAST, "-k", "test_accuracy_drop", "-v")
    result.stdout.fnmatch_lines(["*test_accuracy_drop[[]tiny-int8:Entropy-host[]] PASSED*"])
    entropy = [r for r in records(suite) if r["cell"] == "tiny-int8:Entropy-host"]
    assert entropy[0]["recipe"] == "int8:Entropy" and entropy[0]["precision"] == "int8"


def test_a_detector_is_timed_but_its_accuracy_is_skipped_with_the_reason(suite, image_folder, tmp_path):
    tiny_classifier(tmp_path / "det.onnx")
    card = write_card(tmp_path, "det.onnx", name="det").read_text().replace("kind: logits", "kind: detections")
    (tmp_path / "det.yaml").write_text(card)
    result = run_suite(suite, tmp_path / "det.yaml", image_folder)
    result.stdout.fnmatch_lines(["*det is a detector: its accuracy is mAP on labelled boxes*"])
    latency = [r for r in records(suite) if r["metric"] == "latency"]
    assert latency and all(r["verdict"] == "pass" for r in latency)


def test_latency_cells_reach_pytest_benchmark_json_with_the_judged_samples(suite, tiny_card, image_folder):
    result = run_suite(suite, tiny_card, image_folder, "--benchmark-json", "bench.json")
    result.assert_outcomes(passed=7, skipped=7)
    benchmarks = {b["extra_info"]["cell"]: b for b in json.loads((suite.path / "bench.json").read_text())["benchmarks"]}
    assert set(benchmarks) == {"tiny-fp32-host", "tiny-int8-host"}
    for record in (r for r in records(suite) if r["metric"] == "latency"):
        stats = benchmarks[record["cell"]]["stats"]
        assert stats["rounds"] == record["n"]  # every judged sample, one inference each
        assert stats["median"] * 1e3 == pytest.approx(record["p50_ms"], rel=1e-9)
        assert stats["max"] * 1e3 == pytest.approx(record["max_ms"], rel=1e-9)
        assert benchmarks[record["cell"]]["group"] == "ncap latency"


def test_an_unexpected_exception_is_recorded_as_an_error_and_the_run_goes_on(tiny_card, image_folder, tmp_path,
                                                                            monkeypatch):
    from harness import metrics
    from harness.cell import RunOptions
    from harness.platform import load_platform
    from harness.requirements import Requirements
    from harness.session import ComplianceRun

    options = RunOptions(platform=load_platform("host"), models=(str(tiny_card),), recipes=("fp32",),
                         requirements=Requirements(), report_dir=tmp_path / "out", dataset_dir=image_folder)
    run = ComplianceRun(options, progress=lambda message: None)
    (cell,) = run.cells()
    monkeypatch.setattr(metrics, "accuracy", lambda *args: int("not a number"))
    with pytest.raises(NcapError, match="unexpected ValueError: invalid literal"):
        run.measure("accuracy", cell)
    (record,) = run.store.records()
    assert record["verdict"] == "error" and "unexpected ValueError" in record["message"]


@pytest.mark.parametrize("case, message", [
    ("binary card", "*model card * is not a text file (byte 128 is not UTF-8); check --model*"),
    ("binary requirements", "*requirements file * is not a text file*; check --ncap-requirements*"),
    ("same name twice", "*model name tiny is given twice (--model)*"),
    ("report is a file", "*--ncap-report * cannot hold the report*"),
])
def test_bad_files_are_usage_errors_before_anything_is_measured(suite, tiny_card, case, message):
    binary = suite.path / "binary.yaml"
    binary.write_bytes(bytes(range(256)))
    report = suite.path / "report.txt"
    report.write_text("not a folder")
    options = {"binary card": ["--model", str(binary)],
               "binary requirements": ["--model", str(tiny_card), "--ncap-requirements", str(binary)],
               "same name twice": ["--model", f"{tiny_card},{tiny_card}"],
               "report is a file": ["--model", str(tiny_card), "--ncap-report", str(report)]}[case]
    result = suite.runpytest("-m", "ncap", *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


CACHING_RUNTIME = '''
import harness.runtimes.registry as registry

open_onnxruntime = registry.RUNNERS["onnxruntime"]


class Caching:
    """An ONNX Runtime session that hands back the stored output of any input it has seen."""

    def __init__(self, runner):
        self.runner, self.seen = runner, {}

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def __enter__(self):
        self.runner.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.runner.__exit__(*exc_info)

    def infer(self, batch):
        key = batch.tobytes()
        if key not in self.seen:
            self.seen[key] = self.runner.infer(batch)
        return self.seen[key]


registry.RUNNERS["onnxruntime"] = lambda model, spec: Caching(open_onnxruntime(model, spec))
'''


def test_a_runtime_that_caches_results_makes_the_run_invalid(suite, tiny_card, image_folder):
    """A result cache passes every requirement with flattering figures; the self-audit catches it, the report
    calls the run invalid and the merge exits 3."""
    suite.makeconftest(CACHING_RUNTIME)
    result = suite.runpytest_subprocess("-m", "ncap", "--model", str(tiny_card), "--dataset", str(image_folder),
                                        "--precision", "fp32", *FAST, "-k", "latency or audit")
    result.assert_outcomes(passed=1, failed=1)
    audit = next(r for r in records(suite) if r["metric"] == "audit")
    assert audit["verdict"] == "fail" and "the runtime may be reusing results" in audit["message"]
    report = (suite.path / "reports" / "out" / "report.md").read_text()
    assert "Verdict: INVALID" in report
    assert merge_main(["merge", str(suite.path / "reports" / "out"), "--out", str(suite.path / "merged")]) == 3
