"""Projection: per-layer cost from the ONNX graph, and the method's error against real host measurements."""
from __future__ import annotations

import pytest

from conftest import tiny_classifier
from harness.errors import NcapError
from harness.platform import load_platform
from harness.project.graph import graph_cost
from harness.project.projection import project
from harness.project.roofline import target_roofline
from harness.project.validate import check_on_host, share_within


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


def test_projection_error_on_host_from_real_measurements(tmp_path):
    """Project the host from its own microbenchmarked roofline and compare with measuring the same models."""
    models = [tiny_classifier(tmp_path / f"tiny{size}.onnx", size=size, classes=classes)
              for size, classes in ((16, 5), (64, 64))]
    checks = [check_on_host(model, "fp32", threads=1) for model in models]
    errors = [check.error for check in checks]
    print(f"host projection errors: {[f'{e:+.0%}' for e in errors]}; within 25 %: {share_within(errors, 0.25):.0%}")
    assert all(check.measured_ms > 0 and check.projected_ms > 0 for check in checks)
    # a loose bound on a shared CI machine: a unit slip (us vs ms) or a lost roof would break it by orders of magnitude
    assert all(-0.67 < error < 2.0 for error in errors), errors
