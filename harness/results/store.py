"""The results store: one JSON line per measurement, appended the moment it exists.

Appends take an exclusive lock so parallel workers (pytest-xdist) never interleave lines, and
each line is written with a single write() so a crash leaves at worst one incomplete last line,
which the reader skips, never losing what was measured before. Every line is a StoredRecord
(harness.results.record) on the way in and on the way out.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import NcapError
from harness.results.record import StoredRecord, parse


class ResultsStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: StoredRecord) -> None:
        """Refuses a non-finite figure (ValueError) rather than write a line no JSON reader accepts; a write the
        disk refuses (full, read-only) is one NcapError line, and the lines already stored stay readable."""
        line = (json.dumps(record.model_dump(), sort_keys=True, allow_nan=False) + "\n").encode()
        try:
            self._append_line(line)
        except OSError as exc:
            raise NcapError(f"could not store the {record.metric} record of {record.cell} in {self.path} "
                            f"({exc.strerror or exc}); the records stored before it are intact: free space or "
                            "fix the folder, then rerun the cell") from exc

    def _append_line(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            if _ends_mid_line(descriptor):  # a writer died (or a disk filled) mid-line: start on a line of our own
                line = b"\n" + line
            written = 0
            while written < len(line):  # os.write may write less than asked; 0 bytes means it cannot go on
                count = os.write(descriptor, line[written:])
                if count == 0:
                    raise OSError(errno.EIO, "the write made no progress")
                written += count
            os.fsync(descriptor)
        finally:
            os.close(descriptor)  # closing releases the lock

    def records(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The stored records (of one run), each read through the schema, as plain dicts for the readers."""
        return [r.model_dump() for r in self._read() if run_id is None or r.run_id == run_id]

    def _read(self) -> Iterator[StoredRecord]:
        if not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    fields = json.loads(line)
                except UnicodeDecodeError as exc:
                    raise NcapError(f"{self.path} line {number} is not text (byte {exc.start} is not UTF-8); it "
                                    "holds no dms-ncap records") from exc
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash; every complete line still counts
                yield parse(fields, f"{self.path} line {number}")


def _ends_mid_line(descriptor: int) -> bool:
    size = os.fstat(descriptor).st_size
    return size > 0 and os.pread(descriptor, 1, size - 1) != b"\n"
