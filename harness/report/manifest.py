"""MANIFEST.sha256: the report's files in coreutils `sha256sum` format, so an auditor can run
`sha256sum -c MANIFEST.sha256` in the report folder and see that nothing was edited afterwards."""
from __future__ import annotations

from pathlib import Path

from harness.cache import file_sha256

MANIFEST = "MANIFEST.sha256"


def write_manifest(folder: Path, names: list[str]) -> Path:
    target = folder / MANIFEST
    target.write_text("".join(f"{file_sha256(folder / name)}  {name}\n" for name in sorted(names)))
    return target
