"""The Euro NCAP compliance suite: one test per requirement and cell (model, precision, platform).

QA runs it as `pytest -m ncap --platform=host`; the plugin parametrises `cell` and the fixtures
measure, record and judge each figure.
"""
import pytest

from harness.fixtures import assert_verdict

pytestmark = pytest.mark.ncap


def test_latency(latency):
    assert_verdict(latency)


def test_memory(memory):
    assert_verdict(memory)


def test_power(power):
    assert_verdict(power)


def test_accuracy_drop(accuracy):
    assert_verdict(accuracy)


def test_npu_placement(placement):
    assert_verdict(placement)


def test_self_audit(audit):
    assert_verdict(audit)


def test_no_regression(regression):
    assert_verdict(regression)
