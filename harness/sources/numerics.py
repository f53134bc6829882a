"""The target's arithmetic on the host: where a chip's own toolchain (a vendor emulator, or the runtime the board
runs) is installed here, a projected platform's accuracy comes from running the cell's target artifact through it.

Each entry of NUMERICS looks at the platform and answers with a source of top-1 figures, or None where it does not
apply or is not installed; the first that answers is used. Latency and memory stay projected either way.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from harness.cell import Cell
from harness.sources.base import Evidence
from harness.sources.litert import litert_on_host
from harness.workspace import Workspace


class TargetNumerics(Protocol):
    def top1(self, cell: Cell) -> Evidence:
        """Top-1 of the cell's target artifact, graded for what ran it (`emulated`, `host-measured`)."""
        ...

    def beside(self, cell: Cell, metric: str) -> dict[str, Any]:
        """Figures the toolchain measured here for `metric` (latency, memory), recorded beside the projected figure
        under a key of their own and never judged (the host is not the chip); {} where it measures none."""
        ...


NUMERICS: list[Callable[[Workspace], TargetNumerics | None]] = [litert_on_host]


def target_numerics(run: Workspace) -> TargetNumerics | None:
    """The platform's numerics on the host, None where no toolchain for it is installed here."""
    for candidate in NUMERICS:
        numerics = candidate(run)
        if numerics is not None:
            return numerics
    return None
