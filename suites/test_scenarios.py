"""Euro NCAP driver-state scenarios: per cell and protocol state, does the optimised network on its platform warn in
time and without false alerts? Marked `ncap` like the per-frame suite, so `pytest -m ncap` runs both
(docs/scenarios.md).
"""
import pytest

from harness.fixtures import assert_verdict

pytestmark = pytest.mark.ncap


def test_scenario(scenario):
    assert_verdict(scenario)
