"""Projection: per-layer cost from the ONNX graph, and the method's error against real host measurements."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import tiny_classifier
from harness.errors import NcapError
from harness.measure.latency import LatencyRun
from harness.platform import load_platform
from harness.project import validate
from harness.project.graph import graph_cost
from harness.project.projection import project
from harness.project.roofline import Roofline, target_roofline
from harness.project.validate import share_within


def test_graph_cost_counts_conv_operations_and_bytes(tmp_path):
    cost = graph_cost(tiny_classifier(tmp_path / "tiny.onnx", size=16, classes=5))
    (conv,) = cost.layers  # Flatten is a view: free
    assert conv.ops == 2 * 5 * 3 * 16 * 16  # one output per class, each a 3x16x16 dot product
    assert conv.bytes == 4 * (3 * 16 * 16 + 5 * 3 * 16 * 16 + 5)  # input, weights, output in float32
    assert cost.weight_bytes == 4 * 5 * 3 * 16 * 16


def test_target_projection_uses_the_profile_and_names_its_sources(tmp_path):
    model = tiny_classifier(tmp_path / "tiny.onnx", size=64, classes=64)
    projected = project(model, target_roofline(load_platform("tda4vm"), "int8"))
    assert projected.latency_ms == pytest.approx(2 * 64 * 3 * 64 * 64 / 8e12 * 1e3)  # compute-only: no bandwidth
    assert "8 TOPS" in projected.latency_method and "lower bound" in projected.latency_method
    with pytest.raises(NcapError, match="no peak_tops.fp16"):
        target_roofline(load_platform("tda4vm"), "fp16")


def test_host_check_compares_projection_and_measurement_in_the_same_unit(tmp_path, monkeypatch):
    """The error arithmetic on known figures: a roofline of 1 GOP/s at half efficiency, a runner timed at 2 ms.
    (The method's real error is measured by benchmarks/projection_error.py: a timing study, not a unit test.)"""
    model = tiny_classifier(tmp_path / "tiny.onnx", size=16, classes=5)
    ops = graph_cost(model).layers[0].ops
    monkeypatch.setattr(validate, "host_roofline", lambda precision, threads: Roofline(
        ops_per_s=1e9, bytes_per_s=None, overhead_s=1e-4, per_layer_s=1e-5, efficiency=0.5, source="a known roof"))
    monkeypatch.setattr(validate, "time_inferences",
                        lambda runner, sample, plan: LatencyRun(np.full(200, 2.0), None, np.zeros(200, int)))
    check = validate.check_on_host(model, "fp32", threads=1)
    assert check.projected_ms == pytest.approx((1e-4 + ops / 0.5e9 + 1e-5) * 1e3)  # Flatten is free: one layer
    assert check.measured_ms == 2.0 and check.error == pytest.approx(check.projected_ms / 2.0 - 1)
    assert share_within([0.05, -0.3, 0.2], 0.25) == pytest.approx(2 / 3)


def _evaluated(model: str, truth_ms: float, measured_ms: float, predicted_ms: float,
               fit: str | None = None) -> validate.EvaluatedCell:
    return validate.EvaluatedCell(
        model=model, recipe="fp32", fit=fit, roofline_ms=1.0, predicted_ms=predicted_ms, measured_ms=measured_ms,
        drift=1.0, truth_ms=truth_ms, rounds_ms=[truth_ms], truth_spread=0.0, roofline_error=0.0, predictor_error=0.0,
        undrifted_error=0.0, own_profile_ms=float("nan"), regressor_error=0.0, overhead_error=0.0,
        unknown_kernel_types=[])


def test_an_evaluation_read_back_gives_how_far_each_shared_cell_s_truth_moved(tmp_path):
    """One fit (named, or in files that do not name it the same predictions): truths at the fit's speed
    compared; another: the medians as measured; a cell only one evaluation has is left out."""
    then = [_evaluated("a", 1.0, 2.0, 0.9), _evaluated("b", 1.0, 1.0, 0.5), _evaluated("gone", 1.0, 1.0, 0.7)]
    path = tmp_path / "then.json"
    path.write_text(json.dumps([cell.model_dump() for cell in then]))
    now = [_evaluated("a", 1.2, 2.0, 0.9), _evaluated("b", 1.05, 1.1, 0.5), _evaluated("new", 1.0, 1.0, 0.1)]
    moves, same_predictor = validate.truth_moves(now, validate.load_evaluation(path))
    assert same_predictor and moves == pytest.approx({("a", "fp32"): 0.2, ("b", "fp32"): 0.05})
    assert share_within(list(moves.values()), 0.10) == 0.5
    another = [_evaluated("a", 1.2, 2.0, 0.8), _evaluated("b", 1.05, 1.1, 0.5)]
    moves, same_predictor = validate.truth_moves(another, then)
    assert not same_predictor and moves == pytest.approx({("a", "fp32"): 0.0, ("b", "fp32"): 0.1})
    refitted = [_evaluated("a", 1.2, 2.0, 0.9, fit="2026-12-04"), _evaluated("b", 1.05, 1.1, 0.5, fit="2026-12-04")]
    assert not validate.truth_moves(refitted, [_evaluated("a", 1.0, 2.0, 0.9, fit="2026-12-03")])[1]
    updated = [_evaluated("a", 1.2, 2.0, 0.8, fit="2026-12-03")]  # board samples added since: other predictions
    assert validate.truth_moves(updated, [_evaluated("a", 1.0, 2.0, 0.9, fit="2026-12-03")]) == (
        pytest.approx({("a", "fp32"): 0.2}), True)


def test_truths_timed_differently_are_not_compared():
    """Rounds timed by their runs' median (files before format 11) and by their quiet mean measure different
    things: a network in a slow spell moves one and not the other."""
    quiet = _evaluated("a", 1.0, 1.0, 0.9).model_copy(update={"timed": "quiet"})
    assert validate.truth_moves([quiet], [_evaluated("a", 1.5, 1.5, 0.9)]) == ({}, False)
    assert validate.pooled_truths([quiet], [[_evaluated("a", 1.5, 1.5, 0.9)]]) == {("a", "fp32"): [1.0]}


@pytest.mark.parametrize(("content", "problem", "fix"), [
    (b"[{\"model\": \"a\"}]", "field 0.recipe: Field required", "wrote with --json"),
    (b"not JSON", "is not an evaluation (JSONDecodeError)", "wrote with --json"),
    (b"\xff\xfe", "is not a text file", "check --against"),
    (None, "cannot read earlier evaluation", "check --against"),
])
def test_an_earlier_evaluation_that_is_not_one_fails_in_one_line_naming_the_fix(tmp_path, content, problem, fix):
    path = tmp_path / "then.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NcapError, match=re.escape(problem)) as caught:
        validate.load_evaluation(path)
    assert "\n" not in str(caught.value) and fix in str(caught.value)


def test_a_non_finite_truth_in_an_earlier_evaluation_is_bad_input(tmp_path):
    cell = _evaluated("a", 1.0, 1.0, float("nan")).model_dump() | {"truth_ms": float("inf")}
    path = tmp_path / "then.json"
    path.write_text(json.dumps([cell]))  # Python writes Infinity, and reads it back
    with pytest.raises(NcapError, match="field 0.truth_ms: Input should be a finite number"):
        validate.load_evaluation(path)


def test_the_truths_pooled_over_evaluations_are_those_of_the_same_predictor():
    now = [_evaluated("a", 1.0, 1.0, 0.9), _evaluated("b", 2.0, 2.0, 0.5)]
    same = [_evaluated("a", 1.3, 1.0, 0.9), _evaluated("gone", 9.0, 9.0, 0.7)]
    another = [_evaluated("a", 5.0, 5.0, 0.8)]
    assert validate.pooled_truths(now, [same, another, same]) == {("a", "fp32"): [1.0, 1.3, 1.3],
                                                                  ("b", "fp32"): [2.0]}
