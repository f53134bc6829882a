"""Projection: per-layer cost from the ONNX graph, and the method's error against real host measurements."""
from __future__ import annotations

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
