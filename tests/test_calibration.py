"""Calibrating a target's roofline on the article's documented latency, and the YOLOv8-s-class detector."""
from __future__ import annotations

import pytest
import torch

from conftest import tiny_classifier
from harness.models.yolo import YoloV8
from harness.platform import Platform, load_platform
from harness.project.calibration import calibrated_roofline
from harness.project.projection import project


def chip(after_ms: float, bandwidth_gbs: float | None = None) -> Platform:
    profile = load_platform("tda4vm").model_dump()
    profile["baselines"] = [{"model": "Tiny", "before_ms": 2 * after_ms, "after_ms": after_ms, "source": "test",
                             "zoo_model": "dmsnet", "input_size": [64, 64], "after_precision": "int8"}]
    if bandwidth_gbs:
        profile["memory_bandwidth_gbs"] = {"value": bandwidth_gbs, "source": "test"}
    return Platform.model_validate(profile)


def test_the_calibration_point_reproduces_the_article_and_other_models_scale(tmp_path):
    reference = tiny_classifier(tmp_path / "reference.onnx", size=64, classes=64)
    calibrated = calibrated_roofline(chip(after_ms=0.5), "int8", lambda baseline: reference)
    assert calibrated.baseline is not None and "calibrated on Tiny" in calibrated.roofline.source
    assert project(reference, calibrated.roofline).latency_ms == pytest.approx(0.5, rel=1e-3)
    smaller = tiny_classifier(tmp_path / "smaller.onnx", size=32, classes=64)  # a quarter of the operations
    assert project(smaller, calibrated.roofline).latency_ms == pytest.approx(0.125, rel=1e-2)


def test_an_article_figure_faster_than_the_memory_roof_is_not_calibrated(tmp_path):
    reference = tiny_classifier(tmp_path / "reference.onnx", size=64, classes=64)
    # 1 MB/s of bandwidth: reading the 3 MB of weights alone takes seconds, the article says 0.5 ms
    calibrated = calibrated_roofline(chip(after_ms=0.5, bandwidth_gbs=1e-3), "int8", lambda baseline: reference)
    assert calibrated.baseline is None and "not calibrated" in calibrated.roofline.source
    assert calibrated.roofline.efficiency == 1.0


def test_a_profile_without_a_calibration_row_stays_a_lower_bound():
    calibrated = calibrated_roofline(load_platform("imx8"), "int8", lambda baseline: pytest.fail("no reference"))
    assert calibrated.baseline is None and "uncalibrated" in calibrated.roofline.source


def test_the_detector_has_yolov8s_size_and_output():
    model = YoloV8().eval()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(11.17e6, rel=0.01)  # Ultralytics: 11.2 M
    with torch.no_grad():
        boxes = model(torch.zeros(1, 3, 320, 320))
    assert boxes.shape == (1, 84, 40 * 40 + 20 * 20 + 10 * 10)  # xywh + 80 scores per anchor, 3 strides
