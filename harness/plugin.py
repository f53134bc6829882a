"""The pytest plugin: options, markers and hooks only (fixtures live in harness.fixtures)."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import NcapError
from harness.measure.latency import LatencyPlan
from harness.optimize.recipe import known_precisions, parse_recipe
from harness.platform import Platform, load_platform
from harness.requirements import load_requirements
from harness.session import ComplianceRun, RunOptions

pytest_plugins = ["harness.fixtures"]

RUN_KEY = pytest.StashKey[ComplianceRun]()
DEFAULT_MODELS = ("dmsnet", "mobilenet_v3_small", "resnet18")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ncap", "dms-ncap Euro NCAP compliance")
    group.addoption("--platform", default="host", help="platform profile to assert against (default: host)")
    group.addoption("--model", action="append", default=[], metavar="NAME_OR_CARD",
                    help=f"zoo model ({', '.join(DEFAULT_MODELS)}) or model-card YAML; repeatable or comma-separated")
    group.addoption("--precision", help="comma-separated precisions (default: all the platform supports)")
    group.addoption("--recipe", action="append", default=[], metavar="STEPS",
                    help="optimisation recipe, steps comma-separated and ending in a precision, e.g. "
                         "'int8:Entropy'; repeatable (replaces --precision)")
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
    group.addoption("--ncap-assert-estimates", action="store_true",
                    help="assert estimated power figures instead of skipping them")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ncap: a Euro NCAP compliance check of one (model, precision, platform) cell")
    try:
        # xdist workers join the controller's run, so one report covers every worker's records
        run_id = getattr(config, "workerinput", {}).get("ncap_run_id")
        config.stash[RUN_KEY] = ComplianceRun(_run_options(config), _progress_writer(config), run_id)
    except NcapError as exc:
        raise pytest.UsageError(str(exc)) from exc


def _run_options(config: pytest.Config) -> RunOptions:
    platform = load_platform(config.getoption("platform"))
    models = tuple(m.strip() for value in config.getoption("model") or DEFAULT_MODELS for m in value.split(","))
    recipes = tuple(config.getoption("recipe")) or _precisions(config.getoption("precision"), platform)
    for recipe in recipes:
        parse_recipe(recipe)  # a malformed recipe is a usage error now, not an error in every cell
    requirements_file = config.getoption("ncap_requirements")
    plan = LatencyPlan(config.getoption("ncap_warmup"), config.getoption("ncap_min_runs"),
                       config.getoption("ncap_min_seconds"))
    extra = {"threads": config.getoption("ncap_threads")} if config.getoption("ncap_threads") else {}
    return RunOptions(platform=platform, models=models, recipes=recipes,
                      requirements=load_requirements(requirements_file), report_dir=config.getoption("ncap_report"),
                      dataset_dir=config.getoption("dataset"), latency_plan=plan,
                      assert_estimates=config.getoption("ncap_assert_estimates"),
                      requirements_file=requirements_file, **extra)


def _precisions(text: str | None, platform: Platform) -> tuple[str, ...]:
    precisions = tuple(p.strip() for p in text.split(",")) if text else tuple(platform.precisions)
    unknown = [p for p in precisions if p not in known_precisions()]
    if unknown:
        raise NcapError(f"unknown precision {', '.join(unknown)}; known: {', '.join(known_precisions())}")
    return precisions


def _progress_writer(config: pytest.Config):
    """Progress lines that reach the terminal even while pytest captures test output."""
    def write(message: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if capture is None or reporter is None:
            print(message)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[ncap] {message}")
    return write


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # pytest-xdist: hand each worker the controller's run id
    node.workerinput["ncap_run_id"] = node.config.stash[RUN_KEY].run_id


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" in metafunc.fixturenames:
        cells = metafunc.config.stash[RUN_KEY].cells()
        metafunc.parametrize("cell", cells, ids=[cell.id for cell in cells])


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller renders the one report
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or not run.store.records(run.run_id):
        return
    from harness.report.render import render_report  # only runs that measured something pay for pandas

    written = render_report(run)
    reporter = session.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"[ncap] report: {', '.join(str(p) for p in written)}")
