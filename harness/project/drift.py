"""The machine's drift: how much slower it runs blocks now than at a reference time, by the size of a kernel, read
on a panel of synthetic blocks. The profiling plan reads it every minute to bring its samples to one speed; the
evaluation reads it against the fit to take the machine's drift out of the truth (harness.project.validate).

A shared machine's slow spells do not slow every kernel alike: re-timed in one spell, the fit's blocks of under
50 us took 1.65x their fitted time, those over 1 ms 1.13x, the panel's median 1.16x; in a fast minute the order
can turn (measured on the AMD EPYC host). So the drift is a line in log-log, not one factor."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import theilslopes

from harness.project.blocks import Config, block_shape, block_weights

MIN_KERNEL_US = 0.5  # a drift is read no lower on the kernel sizes: a panel's smallest blocks run ~1 us a kernel
PANEL_MAX_ELEMENTS = 1e6  # weights and input of a panel block: its model and feeds stay in memory (4 MB each at most)
# a large panel block's (40 MB at most): an evaluation's panel adds a few, whose kernels run as long as large
# networks' do (harness.project.validate.DriftPanel)
LARGE_PANEL_MAX_ELEMENTS = 1e7
MIN_PANEL = 3  # blocks read in one reading, at least, for it to say anything about the machine


@dataclass(frozen=True)
class Drift:
    """The machine's speed now over the reference's, by the size of a kernel: log(now / then) = intercept + slope x
    log(microseconds the kernel takes now). Indexed by the time now because that is the time there is to correct:
    a kernel timed now is divided by its factor, exactly."""

    intercept: float
    slope: float

    def factor(self, kernel_us: float) -> float:
        """How much longer a kernel that takes `kernel_us` now takes than at the reference."""
        return float(np.exp(self.intercept + self.slope * np.log(max(kernel_us, MIN_KERNEL_US))))

    def at(self, kernel_us: list[float]) -> float:
        """A network's drift from its kernels' times now (its own profile): its time now over the sum of its
        kernels' times at the reference."""
        times = np.clip(np.asarray(kernel_us, dtype=np.float64), MIN_KERNEL_US, None)
        if not times.size:
            return float(np.exp(self.intercept))
        return float(times.sum() / np.sum(times / np.exp(self.intercept + self.slope * np.log(times))))


def fit_drift(now_over_then: list[float], kernel_us: list[float]) -> Drift:
    """The drift through a panel's readings: each block's time now over then, against its microseconds a kernel
    now, fitted by Theil-Sen's estimator (scipy's `theilslopes`: the median of the pairwise slopes, so a few
    blocks caught by a slow spell do not tilt it); the median alone where the blocks' kernels are all one size."""
    if len(set(kernel_us)) < 2:
        return Drift(float(np.log(np.median(now_over_then))), 0.0)
    with np.errstate(invalid="ignore"):  # its confidence interval, unused here, is NaN where times tie
        slope, intercept, *_ = theilslopes(np.log(now_over_then), np.log(np.clip(kernel_us, MIN_KERNEL_US, None)),
                                           method="joint")  # intercept: the median of y - slope x
    return Drift(float(intercept), float(slope))


def panel_sized(config: Config, max_elements: float = PANEL_MAX_ELEMENTS) -> bool:
    """Whether a block is small enough in memory to be kept built for a panel."""
    return block_weights(config) + math.prod(block_shape(config)) <= max_elements


def plan_drifts(readings_ms: list[list[float | None]], kernels: list[int]) -> list[Drift | None]:
    """Each reading's drift against the plan's median speed: readings_ms[t][b] is panel block b's wall time at
    reading t, kernels[b] its number of kernels. A block's reference is its median over the readings; a time
    that is not a positive number (None: a board's failed reading) is left out, and a reading of fewer than MIN_PANEL
    blocks gives None."""
    times = np.asarray(readings_ms, dtype=np.float64).reshape(len(readings_ms), len(kernels))
    times[~(np.isfinite(times) & (times > 0))] = np.nan
    # a block no reading could time has no reference
    reference = np.array([np.median(block[np.isfinite(block)]) if np.isfinite(block).any() else np.nan
                          for block in times.T])
    per_block = np.maximum(np.asarray(kernels, dtype=np.float64), 1)
    drifts: list[Drift | None] = []
    for reading in times:
        usable = np.isfinite(reading) & np.isfinite(reference)
        now, then, count = reading[usable], reference[usable], per_block[usable]
        drifts.append(fit_drift(list(now / then), list(now * 1e3 / count)) if usable.sum() >= MIN_PANEL else None)
    return drifts
