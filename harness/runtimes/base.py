"""The life cycle every runtime's runner follows (after Polygraphy's runners).

A runner is a context manager: entering loads the model, `infer` runs one batch, leaving frees it.
A new runtime is one new folder under `harness/runtimes/` with a `runner.py`; nothing else changes.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Runner(Protocol):
    name: str
    last_inference_seconds: float  # wall time of the latest `infer` call

    def __enter__(self) -> Runner: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch and return the model's selected output."""
        ...

    @property
    def max_batch(self) -> int | None:
        """The largest batch the loaded model accepts, None when the batch axis is dynamic."""
        ...

    @property
    def settings(self) -> dict[str, Any]:
        """What a reader needs to reproduce a timing: runtime version, provider, threads..."""
        ...
