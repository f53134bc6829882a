"""The target's arithmetic on the host: where a chip's own toolchain (a vendor emulator, or the runtime the board
runs) is installed here, a projected platform's accuracy comes from running the cell's target artifact through it,
and the chip's compiler says which nodes it put on the accelerator.

Each entry of NUMERICS looks at the platform and answers with a source of top-1 and placement figures, or None where
it does not apply; the first that answers is used. Latency and memory stay projected either way.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from harness.catalog import HOST_PLATFORM
from harness.cell import Cell
from harness.sources.base import Evidence
from harness.sources.litert import litert_on_host
from harness.sources.qnn_htp import qnn_htp
from harness.workspace import Workspace


class TargetNumerics(Protocol):
    def top1(self, cell: Cell) -> Evidence:
        """Top-1 of the cell's target artifact, graded for what ran it (`emulated`, `host-measured`)."""
        ...

    def placement(self, cell: Cell) -> Evidence:
        """How many of the cell's nodes the chip's compiler left to the CPU, named in the evidence."""
        ...

    def beside(self, cell: Cell, metric: str) -> dict[str, Any]:
        """Figures the toolchain measured here for `metric` (latency, memory), recorded beside the projected figure
        under a key of their own and never judged (the host is not the chip); {} where it measures none."""
        ...


NUMERICS: list[Callable[[Workspace], TargetNumerics | None]] = [qnn_htp, litert_on_host]


def target_numerics(run: Workspace) -> TargetNumerics | None:
    """The platform's numerics on the host, None where no toolchain for it is known."""
    for candidate in NUMERICS:
        numerics = candidate(run)
        if numerics is not None:
            return numerics
    return None


def target_placement(run: Workspace, cell: Cell) -> Evidence:
    """The chip's compiler's placement of the cell's nodes; no figure (a skip) where no compiler for it is known."""
    numerics = target_numerics(run)
    if cell.platform == HOST_PLATFORM:
        return Evidence(None, "NPU placement", None, None, reason=(
            "the host runs the network on its CPU: there is no NPU placement to check (not a requirement here)"))
    if numerics is None:
        return Evidence(None, "NPU placement", None, None, reason=(
            f"op placement on {cell.platform} is not checked: no NPU compiler for this profile runs on the host "
            "(a Qualcomm profile names its soc_model and compiles with pip install -e '.[qnn]')"))
    return numerics.placement(cell)
