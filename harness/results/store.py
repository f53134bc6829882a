"""The results store: one JSON line per measurement, appended the moment it exists.

Appends take an exclusive lock so parallel workers (pytest-xdist) never interleave lines, and
each line is written with a single write() so a crash leaves at worst one incomplete last line,
which `read_records` skips, never losing what was measured before.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ResultsStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)  # closing releases the lock

    def records(self, run_id: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self._read() if run_id is None or r.get("run_id") == run_id]

    def _read(self) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            return
        with self.path.open() as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash; every complete line still counts
