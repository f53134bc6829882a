"""Qualcomm's compiler and HTP emulator on the host (the `.[qnn]` extra), run for real on tiny QDQ models built here:
node placement, a fallback named, the SoC check, a context binary that reloads, and the compliance suite on qcs8255.
Where the extra is not installed, the QNN tests skip with the reason and the suite's skips say how to get it."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from sshd import SSHD, local_sshd

from conftest import FAST, SUITE, tiny_classifier, write_card
from harness import cache
from harness.errors import NcapError
from harness.measure.drift import DriftReport, LayerDrift, counterpart, drift_figures, kept_in_float, layer_drift
from harness.platform import load_platform
from harness.report import outcome
from harness.requirements import load_requirements
from harness.runtimes.qnn.context import check_soc, compiled_context
from harness.runtimes.qnn.runner import QnnRunner, qnn_session, qnn_version

SOC = load_platform("qcs8255").soc_model
needs_qnn = pytest.mark.skipif(qnn_version() is None, reason=(
    "onnxruntime-qnn is not installed: pip install -e '.[qnn]' runs these tests"))


class _Random(CalibrationDataReader):
    def __init__(self, name: str, shape: list[int], count: int = 8) -> None:
        rng = np.random.default_rng(0)
        self._feeds = iter([{name: rng.random(shape, dtype=np.float32)} for _ in range(count)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantised(source: Path, target: Path, shape: list[int]) -> Path:
    quantize_static(str(source), str(target), _Random("input", shape), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8)
    return target


def with_determinant(path: Path) -> Path:
    """Mul (the NPU takes it) -> Det (QNN has no Det): one node must fall back to the CPU."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "two"], ["doubled"], name="double"),
         helper.make_node("Det", ["doubled"], ["logits"], name="determinant")], "det",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])],
        [helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def compile_here(model: Path):
    return compiled_context(model, cache.file_sha256(model), SOC)


@needs_qnn
def test_a_quantised_classifier_compiles_onto_the_npu_with_only_its_io_conversions_on_the_cpu(tmp_path):
    model = quantised(tiny_classifier(tmp_path / "tiny.onnx"), tmp_path / "tiny-int8.onnx", [1, 3, 16, 16])
    placement = compile_here(model).placement
    assert placement.fallback == ()
    assert any("(Conv)" in node for node in placement.npu)
    assert sorted(node.split(" ")[1] for node in placement.io_conversions) == ["(DequantizeLinear)", "(QuantizeLinear)"]


@needs_qnn
def test_an_op_the_npu_lacks_is_a_named_fallback(tmp_path):
    model = quantised(with_determinant(tmp_path / "det.onnx"), tmp_path / "det-int8.onnx", [1, 4, 4])
    placement = compile_here(model).placement
    assert placement.fallback == ("determinant (Det)",)
    assert any("(Mul)" in node for node in placement.npu)


@needs_qnn
def test_the_context_is_checked_for_the_soc_and_an_unknown_id_is_an_error(tmp_path):
    model = quantised(tiny_classifier(tmp_path / "tiny.onnx"), tmp_path / "tiny-int8.onnx", [1, 3, 16, 16])
    context = compile_here(model)
    binary = context.binary
    check_soc(binary, SOC)  # compiled for SA8255, HTP v73
    assert context.manifest["soc"]["value"] == 52
    with pytest.raises(NcapError, match="compiled for SA8255 .HTP v73., not SM8550 .HTP v73."):
        check_soc(binary, SOC.model_copy(update={"soc_type": "SM8550"}))
    for wrong, compiled_for in ((7, "UNKNOWN_SDM .HTP v68."), (43, "SM8550 .HTP v73.")):  # QNN only warns
        with pytest.raises(NcapError, match=f"compiled for {compiled_for}, not SA8255 .HTP v73. as soc_model {wrong}"):
            compiled_context(model, cache.file_sha256(model), SOC.model_copy(update={"value": wrong}))
    with pytest.raises(NcapError, match="QNN compiled no context binary of tiny-int8.onnx for soc_model 9999"):
        compiled_context(model, cache.file_sha256(model), SOC.model_copy(update={"value": 9999}))


@needs_qnn
def test_the_context_binary_reloads_and_answers_as_when_compiled(tmp_path):
    model = quantised(tiny_classifier(tmp_path / "tiny.onnx"), tmp_path / "tiny-int8.onnx", [1, 3, 16, 16])
    context = compile_here(model)
    batch = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    with QnnRunner(context.onnx, SOC.value) as runner:
        from_context = runner.infer(batch)
    (compiled,) = qnn_session(model, SOC.value).run(["logits"], {"input": batch})
    np.testing.assert_array_equal(from_context, compiled)
    reloaded = qnn_session(context.onnx, SOC.value)
    assert [node.op_type for node in onnx.load(str(context.onnx)).graph.node].count("EPContext") == 1
    assert reloaded.get_outputs()[0].name == "logits"
    with pytest.raises(NcapError, match="has no output named 'scores' .it has logits.; fix output.name"):
        QnnRunner(context.onnx, SOC.value, "scores").__enter__()  # never quietly the first output


@needs_qnn
def test_a_damaged_cached_context_is_compiled_again(tmp_path):
    model = quantised(tiny_classifier(tmp_path / "tiny.onnx"), tmp_path / "tiny-int8.onnx", [1, 3, 16, 16])
    context = compile_here(model)
    binary = context.binary
    damaged = binary.read_bytes()[:-1] + b"x"
    binary.write_bytes(damaged)
    again = compile_here(model)
    rebuilt = again.binary
    # QNN's output differs from one compile to the next (the sha256 of each is recorded, not predicted)
    assert rebuilt.read_bytes() != damaged and cache.file_sha256(rebuilt) == again.manifest["files"][rebuilt.name]
    check_soc(rebuilt, SOC)


@pytest.mark.skipif(SOC is None, reason=(
    "the qcs8255 profile found names no soc_model: harness.platforms resolves to another checkout's platforms/"))
def test_the_suite_on_qcs8255_gives_placement_and_emulated_accuracy_or_says_how(pytester, tiny_card, image_folder):
    pytester.makepyfile(test_ncap=SUITE.read_text())
    pytester.runpytest("-m", "ncap", "--model", str(tiny_card), "--dataset", str(image_folder),
                       "--platform", "qcs8255", "--precision", "int8", *FAST)
    lines = (pytester.path / "reports" / "out" / "results.jsonl").read_text().splitlines()
    written = {record["metric"]: record for record in map(json.loads, lines)}
    placement, accuracy = written["placement"], written["accuracy"]
    if qnn_version() is None:
        assert placement["verdict"] == accuracy["verdict"] == "skip"
        for record in (placement, accuracy):
            assert "Qualcomm's compiler is not installed here: pip install -e '.[qnn]'" in record["message"]
        return
    assert placement["verdict"] == "pass" and placement["grade"] == "emulated" and placement["fallback_nodes"] == 0
    assert placement["limit"] == 0 and "issue #15" in placement["limit_source"]
    assert written["latency"]["grade"] == "projected" and "not the chip's latency" in written["latency"]["latency_note"]
    assert accuracy["grade"] == "emulated" and accuracy["soc"] == "SA8255" and "not the chip's latency" in (
        accuracy["method"])
    # the folder's evaluation split has 14 images, fewer than EMULATED_IMAGES: all are emulated
    assert accuracy["evaluation_images"] == 14 and accuracy["accuracy_ci95"][0] <= accuracy["accuracy"]
    assert len(accuracy["context_bin_sha256"]) == 64 and accuracy["compile_s"] > 0 and accuracy["emulation_s"] > 0
    summary = json.loads((pytester.path / "reports" / "out" / "summary.json").read_text())
    assert summary["compliance"]["verdict"] == "provisional"  # emulated never counts as measured


@needs_qnn
def test_a_node_left_to_the_cpu_fails_placement_naming_it(pytester, image_folder, tmp_path):
    model = onnx.load(str(tiny_classifier(tmp_path / "celu.onnx")))
    model.graph.node[-1].output[0] = "flat"
    model.graph.node.append(helper.make_node("Celu", ["flat"], ["logits"], name="celu"))  # QNN has no Celu
    onnx.save(model, str(tmp_path / "celu.onnx"))
    pytester.makepyfile(test_ncap=SUITE.read_text())
    result = pytester.runpytest("-m", "ncap", "--model", str(write_card(tmp_path, "celu.onnx", name="celu")),
                                "--dataset", str(image_folder), "--platform", "qcs8255", "--precision", "int8",
                                "-k", "test_npu_placement", *FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*nodes left to the CPU (celu (Celu)) 1.00 nodes breaks the limit <= 0 nodes*"])


def _record(metric: str, verdict: str, grade: str | None, platform: str = "qcs8255") -> dict:
    return {"cell": f"m-int8-{platform}", "metric": metric, "recipe": "int8", "precision": "int8",
            "platform": platform, "verdict": verdict, "grade": grade}


def test_an_emulated_pass_never_counts_as_measured():
    measured = [_record("latency", "pass", "measured"), _record("accuracy", "pass", "measured")]
    assert outcome.compliance(measured)["verdict"] == "compliant"
    emulated = [measured[0], _record("accuracy", "pass", "emulated"), _record("placement", "pass", "emulated")]
    assert outcome.compliance(emulated)["verdict"] == "provisional"
    assert "emulated" in outcome.compliance(emulated)["reason"]
    assert outcome.exit_status(emulated, strict=True) == outcome.EXIT_INCOMPLETE
    assert outcome.exit_status(emulated) == outcome.EXIT_PASSED


def test_placement_is_a_requirement_on_a_target_and_not_on_the_host():
    host = [_record("latency", "pass", "host-measured", "host"), _record("placement", "skip", None, "host")]
    assert outcome.compliance(host)["verdict"] == "compliant"
    target = [_record("latency", "pass", "measured"), _record("placement", "skip", None)]
    assert outcome.compliance(target)["verdict"] == "provisional"
    assert outcome.compliance([*target[:1], _record("placement", "fail", "emulated")])["verdict"] == "not compliant"


def test_the_placement_limit_comes_from_its_source_or_the_users_file(tmp_path):
    assert load_requirements(None).npu_fallback_nodes.value == 0
    path = tmp_path / "limits.yaml"
    path.write_text("npu_fallback_nodes: 2\n")
    limit = load_requirements(path).npu_fallback_nodes
    assert limit.value == 2 and limit.source == f"requirements file {path}"
    path.write_text("npu_fallback_nodes: -1\n")
    with pytest.raises(NcapError, match="npu_fallback_nodes"):
        load_requirements(path)


def test_the_name_map_reads_a_quantised_tensor_after_its_qdq_pair():
    assert counterpart("relu_1", {"relu_1", "relu_1_DequantizeLinear_Output"}) == "relu_1_DequantizeLinear_Output"
    assert counterpart("logits", {"logits"}) == "logits"
    assert counterpart("bn_out", {"conv_out"}) is None  # fused away before quantisation


def _chain(path: Path, scale: float) -> Path:
    """Conv -> Relu -> Mul(scale): changing `scale` changes the last layer only."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["features"], name="conv"),
         helper.make_node("Relu", ["features"], ["active"], name="relu"),
         helper.make_node("Mul", ["active", "scale"], ["logits"], name="scaled")], "chain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, 1, 1])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 8, 8], rng.standard_normal(768).astype(np.float32)),
         helper.make_tensor("scale", TensorProto.FLOAT, [1], [scale])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_layer_drift_names_the_layer_that_changed_and_finds_none_elsewhere(tmp_path):
    feeds = [np.random.default_rng(i).random((1, 3, 8, 8), dtype=np.float32) for i in range(3)]
    report = layer_drift(_chain(tmp_path / "a.onnx", 1.0), _chain(tmp_path / "b.onnx", 1.5), feeds)
    drift = {layer.tensor: layer for layer in report.layers}
    assert drift["active"].mean_abs_error == 0 and report.before_relu == ["features"]  # compared at the ReLU
    worst = report.worst(1)[0]
    assert (worst.tensor, worst.producer) == ("logits", "scaled (Mul)") and worst.relative_error > 0.3
    int8 = quantised(tmp_path / "a.onnx", tmp_path / "a-int8.onnx", [1, 3, 8, 8])
    quantised_drift = layer_drift(tmp_path / "a.onnx", int8, feeds)
    assert {layer.tensor for layer in quantised_drift.layers} == {"active", "logits"}
    assert all(0 < layer.relative_error < 0.1 for layer in quantised_drift.layers)


def test_a_records_drift_ranks_finite_layers_and_marks_what_mixed_kept_in_float():
    layers = [LayerDrift("a", "conv1 (Conv)", 0.1, 0.2, 0.05), LayerDrift("b", "fc (Gemm)", 0.3, 0.5, 0.20),
              LayerDrift("z", "pad (Pad)", 0.0, 0.0, float("inf")),
              LayerDrift("n", "div (Div)", float("nan"), 1.0, 0.5)]
    figures = drift_figures(DriftReport(layers, ["bn"], []), {"fc"}, images=4, seconds=0.5, top=1)
    assert [(layer["tensor"], layer["kept_float"]) for layer in figures["worst"]] == [("b", True)]
    assert (figures["compared"], figures["unmatched"], figures["unranked"]) == (4, 1, 2)
    assert figures["kept_in_float"] == ["fc"]
    mixed = {"steps": [{"did": {"assignment": {"conv1": "int8", "fc": "fp32"}}}, {"did": {}}]}
    assert kept_in_float(mixed) == {"fc"} and kept_in_float({"steps": [{"did": {}}]}) == set()


@needs_qnn
@pytest.mark.skipif(not os.path.exists(SSHD), reason="no OpenSSH server here: apt install openssh-server")
@pytest.mark.skipif(SOC is None, reason="the qcs8255 profile found names no soc_model (another checkout's platforms/)")
def test_with_a_device_the_board_runs_the_context_that_was_checked(pytester, tiny_card, image_folder, tmp_path):
    pytester.makepyfile(test_ncap=SUITE.read_text())
    (tmp_path / "board").mkdir()
    with local_sshd(tmp_path / "board") as board:  # this machine as the board: its onnxruntime-qnn emulates the HTP
        pytester.runpytest("-m", "ncap", "--model", str(tiny_card), "--dataset", str(image_folder),
                           "--platform", "qcs8255", "--precision", "int8", "--device", board.address(), *FAST)
    lines = (pytester.path / "reports" / "out" / "results.jsonl").read_text().splitlines()
    written = {record["metric"]: record for record in map(json.loads, lines)}
    checked = written["placement"]["context_bin_sha256"]
    assert written["latency"]["grade"] == "measured" and f"context_qnn.bin sha256 {checked}" in (
        written["latency"]["method"])
    assert '"runtime": "onnxruntime-qnn"' in json.dumps(written["latency"]) and '"soc_model": 52' in json.dumps(
        written["latency"])
