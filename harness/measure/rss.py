"""Resident memory of the current process from /proc, with nothing but the standard library, so the
device-side agent can read it on a board that has no psutil."""
from __future__ import annotations

from pathlib import Path

from harness.errors import NcapError


def status_bytes(field: str) -> int:
    """A memory line of /proc/self/status in bytes: `VmRSS` now, or `VmHWM`, the high-water mark. Unlike
    getrusage's ru_maxrss, VmHWM restarts at exec, so it excludes a (large) parent the process was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise NcapError(f"this OS has no {field} in /proc/self/status; peak memory can only be measured on Linux")
