"""What a figure source answers: evidence for each metric, and the gate's looks at a cell."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from harness.cell import Cell
from harness.gate.compare import SecondLook
from harness.measure.audit import SelfAudit


@dataclass(frozen=True)
class Evidence:
    """A figure as a source obtained it: the value a requirement is judged on (None: the source cannot give
    it, `reason` says why), what it is, how it was obtained, and what is recorded beside it."""

    value: float | None
    what: str
    grade: str | None
    method: str | None
    figures: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    caveat: str | None = None  # added to the verdict's message (a projection says it is one)
    lower_bound: bool = False  # the true figure is at least this: it can break an upper limit, never meet one


class FigureSource(Protocol):
    def latency(self, cell: Cell) -> Evidence:
        """The latency figure asserted (p99 upper bound, or a projection) and its samples' statistics."""
        ...

    def latency_samples(self, cell: Cell) -> np.ndarray | None:
        """The samples the latency was judged on once they were timed; never times. None where nothing was."""
        ...

    def memory(self, cell: Cell) -> Evidence: ...

    def power(self, cell: Cell) -> Evidence: ...

    def top1(self, cell: Cell) -> Evidence: ...

    def audit(self, cell: Cell) -> SelfAudit:
        """The self-audits of the cell's timing (harness.measure.audit), or the reason none could run."""
        ...

    def paired_timing(self, cell: Cell, stored: dict[str, Any]) -> tuple[list[float], list[float]] | None:
        """The baseline's artifact and this cell's timed side by side now; None where that cannot be done."""
        ...

    def second_look(self, cell: Cell, stored: dict[str, Any]) -> SecondLook | None:
        """How the gate confirms a regression; None where this source's figures cannot be gated (a projection)."""
        ...
