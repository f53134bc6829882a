"""The pytest plugin: options, markers and hooks only (fixtures live in harness.fixtures, the options' checks in
harness.options)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.errors import NcapError
from harness.gate.baseline import save_baseline
from harness.gate.compare import GateNotes, Thresholds, gate_notes
from harness.measure.latency import LatencyPlan
from harness.options import DEFAULT_MODELS, run_options
from harness.scenarios.plan import ScenarioPlan
from harness.session import ComplianceRun

pytest_plugins = ["harness.fixtures"]

RUN_KEY = pytest.StashKey[ComplianceRun]()
NOTES_KEY = pytest.StashKey[GateNotes]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ncap", "dms-ncap Euro NCAP compliance")
    group.addoption("--platform", default="host", help="platform profile to assert against (default: host)")
    group.addoption("--model", action="append", default=[], metavar="NAME_OR_CARD",
                    help=f"zoo model ({', '.join(DEFAULT_MODELS)}) or model-card YAML; repeatable or comma-separated")
    group.addoption("--precision", help="comma-separated precisions (default: the platform's default_precisions)")
    group.addoption("--recipe", action="append", default=[], metavar="STEPS",
                    help="optimisation recipe, steps comma-separated and ending in a precision, e.g. "
                         "'fuse,prune:0.5,int8', or a named one (p0..p3); repeatable (replaces --precision)")
    group.addoption("--dataset", type=Path,
                    help="ImageFolder dataset DIR/<class>/*.png|jpg (default: embedded synthetic)")
    group.addoption("--ncap-requirements", type=Path, metavar="FILE", help="YAML overriding the limits")
    group.addoption("--ncap-report", type=Path, default=Path("reports/out"), metavar="DIR",
                    help="where results.jsonl and the report go (default: reports/out)")
    group.addoption("--ncap-threads", type=int, help="intra-op threads for the runtime (default: physical cores)")
    group.addoption("--ncap-warmup", type=int, default=LatencyPlan.warmup_runs, help="latency warm-up runs")
    group.addoption("--ncap-min-runs", type=int, default=LatencyPlan.min_runs, help="latency: at least this many runs")
    group.addoption("--ncap-min-seconds", type=float, default=LatencyPlan.min_seconds,
                    help="latency: and at least this long")
    group.addoption("--ncap-denormals-as-zero", action="store_true",
                    help="ONNX Runtime's session.set_denormal_as_zero: its intra-op worker threads flush denormal "
                         "floats to zero (ONNX Runtime's scope: with --ncap-threads 1 there are none). Off by default, "
                         "as deployed runtimes run; recorded in each latency record's settings")
    group.addoption("--ncap-assert-estimates", action="store_true",
                    help="assert estimated power figures instead of skipping them")
    group.addoption("--ncap-power-meter", metavar="SPEC",
                    help="power source: rapl, nvml[:GPU], tegrastats[:RAIL+RAIL], hwmon:hwmonN[:CHANNEL] or "
                         "scpi:VISA_RESOURCE (default: RAPL where readable, else the profile's estimate)")
    group.addoption("--device", metavar="ssh://USER@HOST[:PORT]|labgrid://PLACE|labgrid://?TAG=VALUE",
                    help="run every cell on this board over SSH and grade its figures measured (overrides the "
                         "profile's device:); options ?python=PATH&known_hosts=FILE&identity=FILE; labgrid:// takes "
                         "a place from a labgrid pool (&timeout=S&coordinator=HOST:PORT, docs/board-lab.md)")
    group.addoption("--ncap-strict", action="store_true",
                    help="homologation mode: only measured (on-target) figures can pass; others fail as "
                         "insufficient evidence")
    group.addoption("--ncap-save-baseline", type=Path, metavar="FILE",
                    help="write this run's figures per cell and the machine fingerprint to FILE (JSON)")
    group.addoption("--ncap-baseline", type=Path, metavar="FILE",
                    help="gate on regressions against a baseline FILE (test_no_regression per cell)")
    group.addoption("--ncap-scenario-runs", type=int, default=ScenarioPlan.runs, metavar="N",
                    help=f"scenario tests: scripted sequences per driver state (default {ScenarioPlan.runs})")
    group.addoption("--ncap-fps", type=float, default=ScenarioPlan.fps,
                    help=f"scenario tests: the camera frame rate (default {ScenarioPlan.fps:g})")
    group.addoption("--ncap-scenario-protocol", type=Path, metavar="FILE",
                    help="scenario tests: YAML over harness/scenarios/protocol.yaml (an OEM's thresholds)")
    group.addoption("--ncap-scenario-recording", type=Path, action="append", default=[], metavar="DIR",
                    help="scenario tests: a recording (frames/, labels.csv or OpenLABEL annotations.json, "
                         "scenario.yaml) played like the scripted sequences; repeatable")
    gate = Thresholds()
    group.addoption("--ncap-gate-alpha", type=float, default=gate.alpha,
                    help=f"significance level of the latency test (default {gate.alpha:g})")
    group.addoption("--ncap-gate-latency", type=float, default=gate.latency,
                    help=f"relative median slow-down that counts as a regression (default {gate.latency:g})")
    group.addoption("--ncap-gate-memory", type=float, default=gate.memory,
                    help=f"relative peak-memory growth that counts as a regression (default {gate.memory:g})")
    group.addoption("--ncap-gate-accuracy", type=float, default=gate.accuracy_pt,
                    help=f"top-1 drop in points that counts as a regression (default {gate.accuracy_pt:g})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ncap: a Euro NCAP compliance check of one (model, precision, platform) cell")
    config.addinivalue_line("markers", "scenario: a Euro NCAP driver-state scenario of one cell (warning times)")
    try:
        # xdist workers join the controller's run, so one report covers every worker's records
        run_id = getattr(config, "workerinput", {}).get("ncap_run_id")
        config.stash[RUN_KEY] = ComplianceRun(run_options(config), _progress_writer(config), run_id)
    except NcapError as exc:
        raise pytest.UsageError(str(exc)) from exc


def _progress_writer(config: pytest.Config):
    """Progress lines that reach the terminal even while pytest captures test output."""
    def write(message: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if capture is None or reporter is None:
            print(message)
            return
        with capture.global_and_fixture_disabled():
            if hasattr(config, "workerinput"):  # an xdist worker's stdout is its channel; its stderr is the terminal
                print(f"[ncap {config.workerinput['workerid']}] {message}", file=sys.stderr, flush=True)
            else:
                reporter.write_line(f"[ncap] {message}")
    return write


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # pytest-xdist: hand each worker the controller's run id
    node.workerinput["ncap_run_id"] = node.config.stash[RUN_KEY].run_id


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # pytest-xdist: the default `-n N` distribution
    """Under `pytest -n N` each cell's tests run on one worker, so the gate judges the figures that worker measured
    and recorded; cells spread over the workers. xdist's scope scheduler, grouped by cell (its documented
    `_split_scope` extension point; `loadgroup` marks no longer reach the scheduler under pytest 9.2)."""
    if config.getvalue("dist") != "load":
        return None  # the user chose a distribution mode: keep it
    from xdist.scheduler import LoadScopeScheduling

    class CellScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid[nodeid.rfind("["):] if nodeid.endswith("]") else nodeid

    return CellScheduling(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" in metafunc.fixturenames:
        cells = metafunc.config.stash[RUN_KEY].cells()
        metafunc.parametrize("cell", cells, ids=[cell.id for cell in cells])
    if "scenario_state" in metafunc.fixturenames:
        metafunc.parametrize("scenario_state", metafunc.config.stash[RUN_KEY].scenario_states())


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(RUN_KEY, None)
    if run is not None:
        run.release_board()  # a place taken from a labgrid pool, by each process that took one (xdist workers too)
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller renders the one report
    records = run.store.records(run.run_id) if run is not None else []
    if not records:
        return
    from harness.report.provenance import run_provenance  # only runs that measured something pay for pandas
    from harness.report.render import render_report

    options = run.options
    notes = gate_notes(options.baseline, records) if options.baseline else None
    if notes:
        session.config.stash[NOTES_KEY] = notes
    written = render_report(records, options.report_dir, [run_provenance(run.run_id, options)], notes)
    baseline_file = session.config.getoption("ncap_save_baseline")
    if baseline_file:
        written.append(save_baseline(baseline_file, records))
    reporter = session.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"[ncap] report: {', '.join(str(p) for p in written)}")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The gate's caveats, loud: a baseline from another machine, cells the run no longer has."""
    notes = config.stash.get(NOTES_KEY, None)
    if notes is None:
        return
    if notes.machine_differences:
        terminalreporter.section("ncap: BASELINE FROM A DIFFERENT MACHINE", sep="!", red=True, bold=True)
        terminalreporter.write_line("latency comparisons across machines are not meaningful:", red=True, bold=True)
        for difference in notes.machine_differences:
            terminalreporter.write_line(f"  {difference}", red=True)
    if notes.missing_cells:
        terminalreporter.section("ncap: baseline cells missing from this run (not gated)", sep="!", yellow=True)
        terminalreporter.write_line(", ".join(notes.missing_cells), yellow=True)
