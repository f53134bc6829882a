"""Fixtures of the ncap plugin: the run, and one measured record per metric for the current cell."""
from __future__ import annotations

import pytest

from harness.catalog import asserted_figure
from harness.cell import Cell, Record
from harness.errors import NcapError
from harness.results import benchmark_json
from harness.session import ComplianceRun


@pytest.fixture(scope="session")
def ncap_run(request: pytest.FixtureRequest) -> ComplianceRun:
    from harness.plugin import RUN_KEY

    return request.config.stash[RUN_KEY]


def _measured(request: pytest.FixtureRequest, run: ComplianceRun, metric: str, cell: Cell) -> Record:
    """The record, or an error (not a failure) when the figure could not be obtained."""
    try:
        record = run.measure(metric, cell, request.node.nodeid)
    except NcapError as exc:
        pytest.fail(f"{metric} of {cell.id} could not be measured: {exc}", pytrace=False)
    properties = {"verdict": record.verdict.status, "grade": record.grade, "method": record.method,
                  "figure": asserted_figure(metric, record.figures), "limit": record.limit,
                  "limit_source": record.limit_source, "message": record.verdict.message}
    request.node.user_properties.extend((f"ncap_{name}", value) for name, value in properties.items())
    return record


@pytest.fixture
def latency(request: pytest.FixtureRequest, ncap_run: ComplianceRun, cell: Cell) -> Record:
    record = _measured(request, ncap_run, "latency", cell)
    samples = ncap_run.latency_samples(cell) if benchmark_json.wanted(request.config) else None
    if samples is not None:
        benchmark_json.publish(request, samples, {
            "cell": cell.id, "grade": record.grade, "p99_ucb_ms": record.figures.get("p99_ucb_ms"),
            "limit_ms": record.limit, "verdict": record.verdict.status, "method": record.method})
    return record


@pytest.fixture
def memory(request: pytest.FixtureRequest, ncap_run: ComplianceRun, cell: Cell) -> Record:
    return _measured(request, ncap_run, "memory", cell)


@pytest.fixture
def power(request: pytest.FixtureRequest, ncap_run: ComplianceRun, cell: Cell) -> Record:
    return _measured(request, ncap_run, "power", cell)


@pytest.fixture
def accuracy(request: pytest.FixtureRequest, ncap_run: ComplianceRun, cell: Cell) -> Record:
    return _measured(request, ncap_run, "accuracy", cell)


@pytest.fixture
def audit(request: pytest.FixtureRequest, ncap_run: ComplianceRun, cell: Cell) -> Record:
    return _measured(request, ncap_run, "audit", cell)


@pytest.fixture
def placement(request: pytest.FixtureRequest, ncap_run: ComplianceRun, cell: Cell) -> Record:
    return _measured(request, ncap_run, "placement", cell)


@pytest.fixture
def regression(request: pytest.FixtureRequest, ncap_run: ComplianceRun, cell: Cell) -> Record:
    return _measured(request, ncap_run, "regression", cell)


@pytest.fixture
def scenario(request: pytest.FixtureRequest, ncap_run: ComplianceRun, cell: Cell, scenario_state: str) -> Record:
    """The record of one Euro NCAP driver state for the cell (warning times, missed and false alerts)."""
    try:
        return ncap_run.scenario(cell, scenario_state, request.node.nodeid)
    except NcapError as exc:
        pytest.fail(f"scenario {scenario_state} of {cell.id} could not be played: {exc}", pytrace=False)


def assert_verdict(record: Record) -> None:
    """Turn a recorded verdict into the pytest outcome: pass, fail (with the margin) or skip (with why)."""
    if record.verdict.status == "fail":
        pytest.fail(record.verdict.message, pytrace=False)
    if record.verdict.status == "skip":
        pytest.skip(record.verdict.message)
    assert record.verdict.status == "pass", record.verdict.message
