"""Repo-root conftest. The ncap plugin itself comes from the `pytest11` entry point (pip install -e .);
the harness's own tests drive pytest in a sandbox through `pytester`."""

pytest_plugins = ["pytester"]
