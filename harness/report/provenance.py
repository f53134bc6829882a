"""Where a run's figures come from: tool version and git state, packages, input files, seeds, machine.

Collected once per run and kept in summary.json, so a merged report lists every shard's provenance.
"""
from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

from harness.cache import file_sha256
from harness.cell import RunOptions
from harness.data.dataset import SyntheticSpec
from harness.gate.baseline import machine_fingerprint, package_version
from harness.models import zoo
from harness.platform import platforms_dir

PACKAGES = ("dms-ncap", "onnx", "onnxruntime", "torch", "numpy", "scipy", "pandas", "jinja2", "pytest")


def run_provenance(run_id: str, options: RunOptions) -> dict[str, Any]:
    requirements = options.requirements_file
    return {
        "run_id": run_id,
        "harness_version": package_version("dms-ncap"),
        "git": git_state(Path(__file__).parent),
        "packages": {name: package_version(name) for name in PACKAGES},
        "platform_profile": {"name": options.platform.name,
                             "sha256": file_sha256(platforms_dir() / f"{options.platform.name}.yaml")},
        "requirements_file": ({"path": str(requirements), "sha256": file_sha256(requirements)} if requirements
                              else {"path": "built-in limits of the source article", "sha256": None}),
        "strict": options.strict,
        "gate": dataclasses.asdict(options.gate),  # the thresholds `ncap merge` gates this shard's cells with
        "seeds": {"synthetic_dataset": SyntheticSpec().seed,
                  **{f"training:{name}": entry.plan.seed for name, entry in zoo.ZOO.items()}},
        "machine": machine_fingerprint(options.threads),
    }


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit of the harness's checkout and whether it had uncommitted changes; None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()
    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return None
