"""Latency cells in pytest-benchmark's own files (`--benchmark-json`, `--benchmark-autosave`, `--benchmark-save`),
so the dashboards a team already has (pytest-benchmark `compare`, github-action-benchmark's `pytest` tool) plot
dms-ncap latency per commit, computed by pytest-benchmark's statistics from the very samples the cell was judged on.

pytest-benchmark times a callable itself and has no public call for samples taken elsewhere; its fixture's
`_make_stats` is the one seam (its own `pedantic` uses it). Pinned in pyproject (<6) and covered by
tests/test_plugin.py, which reads the JSON back.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

OUTPUT_OPTIONS = ("benchmark_json", "benchmark_autosave", "benchmark_save")


def wanted(config: pytest.Config) -> bool:
    """Whether the user asked pytest-benchmark for a file (and did not skip or disable it)."""
    asked = any(config.getoption(option, None) for option in OUTPUT_OPTIONS)
    off = config.getoption("benchmark_skip", False) or config.getoption("benchmark_disable", False)
    return asked and not off


def publish(request: pytest.FixtureRequest, samples_ms: np.ndarray, extra_info: dict[str, Any]) -> None:
    """Hand one cell's latency samples (one inference each) to pytest-benchmark's session for this test."""
    benchmark = request.getfixturevalue("benchmark")
    benchmark.group = "ncap latency"
    benchmark.extra_info.update(extra_info)
    stats = benchmark._make_stats(1)
    for sample_ms in samples_ms:
        stats.update(float(sample_ms) / 1e3)  # pytest-benchmark's unit is the second
