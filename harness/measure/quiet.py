"""Timing on a machine that other workers share.

Under `pytest -n N`, or two runs at once, one worker's quantisation or accuracy run would share the cores with
another worker's latency timing and slow it. Heavy work holds a shared lock and timing an exclusive one, on one
file in the cache folder: a cell is timed only while no other worker of this machine computes or times.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from harness.cache import cache_root


@contextmanager
def _machine_lock(mode: int) -> Iterator[None]:
    cache_root().mkdir(parents=True, exist_ok=True)
    descriptor = os.open(cache_root() / "machine.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, mode)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def timing() -> contextlib.AbstractContextManager[None]:
    """Held while latency is timed: waits until no other worker computes or times."""
    return _machine_lock(fcntl.LOCK_EX)


def computing() -> contextlib.AbstractContextManager[None]:
    """Held while heavy work runs (building artifacts, training, accuracy): many at once, none while timing."""
    return _machine_lock(fcntl.LOCK_SH)
