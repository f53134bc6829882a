"""LiteRT artifacts (optimize/litert.py): a tiny zoo network converted to .tflite, checked against PyTorch, cached
and verified like the ONNX artifacts, run through the LiteRT runner, and measured for a LiteRT platform (imx8)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from test_torch_passes import dataset, tiny  # noqa: F401  (fixtures: a tiny zoo entry trained on coloured noise)

from harness.cell import Cell, RunOptions
from harness.errors import NcapError
from harness.measure import accuracy
from harness.measure.latency import LatencyPlan
from harness.optimize import litert
from harness.optimize.litert import TOLERANCE, build_litert_artifact, check_against_torch
from harness.optimize.passes import PassContext
from harness.optimize.recipe import build_artifact, parse_recipe
from harness.optimize.torch_passes import module_io
from harness.platform import load_platform
from harness.requirements import Requirements
from harness.runtimes.litert.runner import LiteRTRunner
from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner
from harness.session import ComplianceRun

needs_converter = pytest.mark.skipif(
    importlib.util.find_spec("litert_torch") is None or importlib.util.find_spec("ai_edge_litert") is None,
    reason="the LiteRT converter is an extra: pip install -e '.[litert-convert]' (litert-torch, ai-edge-litert)")


def _litert(context: PassContext, recipe: str) -> litert.LiteRTArtifact:
    steps = parse_recipe(recipe)
    return build_litert_artifact(build_artifact(context.card, steps, context), steps, context)


def _checked_inputs(context: PassContext) -> np.ndarray:
    return module_io.preprocess.to_tensor(context.dataset.evaluation.images[:litert.CHECK_IMAGES], context.card.input)


@needs_converter
def test_fp32_and_int8_tflite_match_pytorch_and_onnx_runtime(tiny):  # noqa: F811
    fp32, int8 = _litert(tiny, "fp32"), _litert(tiny, "int8")
    for artifact in (fp32, int8):
        check = artifact.manifest["did"]["check"]
        assert check["max_abs_diff_relative"] <= TOLERANCE[artifact.precision] == check["tolerance_relative"]
        assert artifact.manifest["size_bytes"] == artifact.path.stat().st_size > 0
    assert int8.manifest["did"]["io"] == "int8 in, int8 out" and int8.manifest["did"]["float_operators"] == {}
    assert litert.io_types(fp32.path) == "float32 in, float32 out"
    assert litert.float_operators(fp32.path)["CONV_2D"] == 2  # the FP32 file: every operator computes in float
    assert int8.manifest["size_bytes"] < fp32.manifest["size_bytes"]
    split = tiny.dataset.evaluation
    with LiteRTRunner(int8.path) as runner:
        assert runner._input["dtype"] == np.int8  # full-integer: the runner quantises the float input itself
        int8_top1 = accuracy.top1(runner, tiny.card, split)
    with LiteRTRunner(fp32.path) as runner, OnnxRuntimeRunner(tiny.card.onnx) as reference:
        fp32_top1, onnx_top1 = accuracy.top1(runner, tiny.card, split), accuracy.top1(reference, tiny.card, split)
    assert fp32_top1 == onnx_top1 > 0.5  # the same network on two runtimes; it learnt the colours
    assert int8_top1 >= fp32_top1 - 0.05


@needs_converter
def test_fp16_stores_float16_weights_within_its_tolerance(tiny):  # noqa: F811
    fp16 = _litert(tiny, "fp16")
    assert fp16.manifest["did"]["weights"]["operators"] == list(litert.FP16_OPERATORS)
    assert fp16.manifest["did"]["check"]["max_abs_diff_relative"] <= TOLERANCE["fp16"]
    assert fp16.manifest["size_bytes"] < 0.7 * _litert(tiny, "fp32").manifest["size_bytes"]


@needs_converter
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_check_fails_a_tflite_that_does_not_match_its_network(tiny, precision):  # noqa: F811
    """The tolerance catches a real difference: the network with its last layer 25 % larger is not the .tflite."""
    artifact = _litert(tiny, precision)
    perturbed = module_io.zoo_module(tiny.trained)
    with torch.no_grad():
        perturbed[-1].weight.mul_(1.25)
        perturbed[-1].bias.mul_(1.25)
    with pytest.raises(NcapError, match="differs from PyTorch by .* of the largest output"):
        check_against_torch(artifact.path, perturbed, _checked_inputs(tiny), TOLERANCE[precision])


@needs_converter
def test_a_cached_tflite_is_reused_and_a_damaged_one_rebuilt(tiny, monkeypatch):  # noqa: F811
    first = _litert(tiny, "fp32")
    calls = []
    real = litert.convert_to_tflite
    monkeypatch.setattr(litert, "convert_to_tflite", lambda *args: calls.append(1) or real(*args))
    assert _litert(tiny, "fp32").path == first.path and not calls  # the cache, verified by its sha256
    first.path.write_bytes(first.path.read_bytes()[:-8])  # truncated on disk
    rebuilt = _litert(tiny, "fp32")
    assert calls == [1] and rebuilt.sha256 == first.sha256
    assert rebuilt.path.stat().st_size == first.manifest["size_bytes"]


@needs_converter
@pytest.mark.parametrize("recipe, message", [
    ("int8:Entropy", "histogram observer, not Entropy"),
    ("int4", "has no LiteRT conversion here"),
])
def test_a_recipe_litert_has_no_form_for_is_one_clear_line(tiny, recipe, message):  # noqa: F811
    with pytest.raises(NcapError, match=message):
        _litert(tiny, recipe)


def test_a_bring_your_own_onnx_model_is_told_what_to_do(tiny):  # noqa: F811
    onnx_only = PassContext(tiny.card, tiny.calibration, tiny.data_fingerprint, tiny.dataset, trained=None)
    artifact = build_artifact(tiny.card, parse_recipe("fp32"), onnx_only)
    with pytest.raises(NcapError, match=r"ONNX model card .* convert the ONNX file to .tflite yourself \(e.g. onnx2tf"):
        build_litert_artifact(artifact, parse_recipe("fp32"), onnx_only)


def _imx8_run(tmp_path, dataset) -> ComplianceRun:  # noqa: F811
    options = RunOptions(platform=load_platform("imx8"), models=("tiny",), recipes=("int8",),
                         requirements=Requirements(), report_dir=tmp_path / "out", threads=1,
                         latency_plan=LatencyPlan(warmup_runs=2, min_runs=300, min_seconds=0.05))
    run = ComplianceRun(options, progress=lambda message: None)
    run.workspace.__dict__["dataset"] = dataset  # the coloured-noise set the tiny entry was trained on
    return run


@needs_converter
def test_imx8_accuracy_is_litert_int8_beside_onnx_runtime_and_latency_stays_projected(tiny, dataset, tmp_path):  # noqa: F811
    run = _imx8_run(tmp_path, dataset)
    cell = Cell("tiny", "int8", "imx8")
    record = run.measure("accuracy", cell)
    assert record.grade == "host-measured" and "LiteRT's own kernels" in record.method
    figures = record.figures
    assert figures["drop_pt"] == pytest.approx((figures["reference_accuracy"] - figures["accuracy"]) * 100)
    assert 0 <= figures["onnxruntime_accuracy"] <= 1 and "onnxruntime_drop_pt" in figures
    assert figures["litert_artifact"]["pass"] == "litert:int8" and figures["litert_artifact"]["float_operators"] == {}
    assert run.workspace.deployed_model(cell).suffix == ".tflite"  # what a --device run ships
    latency = run.measure("latency", cell)
    assert latency.grade == "projected" and latency.figures["projected_ms"] > 0
    on_host = latency.figures["host_litert"]
    assert on_host["grade"] == "host-measured" and on_host["p50_ms"] > 0 and "never judged" in on_host["note"]
    assert on_host["artifact"]["size_bytes"] == run.workspace.litert_artifact(cell).path.stat().st_size
    assert "p99_ucb_ms" not in latency.figures  # the report reads that key as the asserted figure: never the host's


def test_imx8_accuracy_without_the_converter_is_a_skip_naming_the_extra(tiny, dataset, tmp_path,  # noqa: F811
                                                                         monkeypatch):
    from harness.sources import litert as litert_source

    monkeypatch.setattr(litert_source, "converter_installed", lambda: "litert_torch not installed: pip install x")
    record = _imx8_run(tmp_path, dataset).measure("accuracy", Cell("tiny", "int8", "imx8"))
    assert record.verdict.status == "skip"
    assert "LiteRT artifact, and litert_torch not installed" in record.verdict.message


def test_the_report_lists_the_targets_artifact_on_the_host_only_where_it_was_measured():
    from harness.report.render import _target_on_host

    on_host = {"p50_ms": 0.33, "artifact": {"size_bytes": 1888208}, "grade": "host-measured"}
    imx8 = {"cell": "m-int8-imx8", "latency": {"projected_ms": 0.005, "host_litert": on_host},
            "memory": {"peak_mb": 1.8, "host_litert": {"peak_mb": 46.3}},
            "accuracy": {"accuracy": 0.958, "drop_pt": -0.1, "onnxruntime_accuracy": 0.957, "onnxruntime_drop_pt": 0.0}}
    host = {"cell": "m-int8-host", "latency": {"p50_ms": 0.5, "p99_ucb_ms": 0.9}, "accuracy": {"accuracy": 0.95}}
    (row,) = _target_on_host([imx8, host])
    assert row == {"cell": "m-int8-imx8", "size_bytes": 1888208, "p50_ms": 0.33, "peak_mb": 46.3, "top1": 0.958,
                   "drop_pt": -0.1, "onnxruntime_top1": 0.957, "onnxruntime_drop_pt": 0.0}
