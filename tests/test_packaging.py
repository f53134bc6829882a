"""What a fresh machine needs: every import declared, and CI examples whose verdict can fail a pipeline."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# the team's checker lies in the shared folder beside the repository (CI gets a copy of it)
CHECK_DEPS = ROOT.parent / "shared" / "tools" / "check_deps.py"


@pytest.mark.skipif(not CHECK_DEPS.is_file(), reason=f"{CHECK_DEPS} is not beside this checkout")
def test_every_import_is_declared_in_pyproject():
    check = subprocess.run([sys.executable, str(CHECK_DEPS), "harness", "benchmarks"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_harness_package_ships_in_a_non_editable_install():
    """pyproject lists the packages by hand (platforms/ and templates/ map into the package): a folder of code
    missing from the list works in the editable install every developer has and is absent from a wheel."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(folder.relative_to(ROOT).parts) for folder in (ROOT / "harness").rglob("*")
               if folder.is_dir() and any(folder.glob("*.py"))}
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_test_files_have_unique_names_across_the_testpaths():
    """suites/ and tests/ are rootless folders: pytest refuses two test files of one name in them (`pytest -m ncap`
    collects both, and stopped at collection when tests/ had a test_scenarios.py beside the suite's)."""
    names = [path.name for folder in ("suites", "tests") for path in (ROOT / folder).rglob("test_*.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []


@pytest.mark.parametrize("example", sorted((ROOT / "docs" / "ci").glob("*.yml")), ids=lambda p: p.name)
def test_ci_examples_let_the_verdict_fail_the_pipeline(example):
    """No `|| true` (or `; true`, `set +e`) hides an exit code, and the shards and report are kept on failure."""
    text = example.read_text()
    for hidden in ("|| true", "; true", "set +e", "allow_failure", "continue-on-error"):
        assert hidden not in text, f"{example.name} hides a verdict with {hidden!r}"
    config = yaml.safe_load(text)
    if "jobs" in config:  # GitHub Actions
        uploads = [step for job in config["jobs"].values() for step in job["steps"]
                   if str(step.get("uses", "")).startswith("actions/upload-artifact")]
        assert uploads and all(step.get("if") == "always()" for step in uploads)
        assert config["jobs"]["merge"].get("if") == "always()"
    else:  # GitLab CI
        assert config["measure"]["artifacts"]["when"] == "always" and config["merge"]["when"] == "always"
