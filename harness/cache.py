"""Content-addressed on-disk cache for trained models and built artifacts."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """`$NCAP_CACHE`, else `~/.cache/dms-ncap`."""
    return Path(os.environ.get("NCAP_CACHE", Path.home() / ".cache" / "dms-ncap"))


def content_key(*parts: Any) -> str:
    """A sha256 over JSON-rendered parts: everything that determines a cached result goes in."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_sha256(*modules: Any) -> str:
    """Hash of the source files of modules, so a code change invalidates what they produced."""
    return content_key(*(Path(module.__file__).read_text() for module in modules))
