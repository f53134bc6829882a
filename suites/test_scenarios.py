"""Euro NCAP driver-state scenarios: per cell and protocol state, does the optimised network on its platform warn in
time and without false alerts? A marker of its own, `scenario`: playing a cell's ten states takes minutes, so
`pytest -m ncap` keeps its per-frame run and `pytest -m "ncap or scenario"` runs both into one report
(docs/scenarios.md).
"""
import pytest

from harness.fixtures import assert_verdict

pytestmark = pytest.mark.scenario


def test_scenario(scenario):
    assert_verdict(scenario)
