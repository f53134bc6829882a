"""When each frame's output is ready: frames arrive at the camera rate, each takes a processing time drawn from the
cell's latency distribution, and a frame that arrives while the previous one is still processing is dropped."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import NcapError


@dataclass(frozen=True)
class Latency:
    """Where processing times come from: the cell's timed samples (drawn with replacement) or one figure (a
    projection), with the grade and method of the figure they came from."""

    samples_ms: np.ndarray
    grade: str
    method: str
    lower_bound: bool = False  # the true time is at least this: warnings can only be later than computed

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples_ms, dtype=float)
        if samples.size == 0 or not np.all(np.isfinite(samples)) or np.any(samples <= 0):
            raise NcapError(f"latency for scenario timing must be finite positive milliseconds, got {samples[:5]}")

    def describe(self) -> str:
        spread = (f"{len(self.samples_ms)} timed samples, median {np.median(self.samples_ms):.3g} ms, max "
                  f"{np.max(self.samples_ms):.3g} ms, drawn with replacement" if len(self.samples_ms) > 1
                  else f"{self.samples_ms[0]:.3g} ms per frame")
        return f"processing time {self.grade}: {spread} ({self.method})"


@dataclass(frozen=True)
class Schedule:
    processed: np.ndarray  # indices of the frames the network ran on
    done_s: np.ndarray  # when each processed frame's output was ready
    frames: int

    @property
    def dropped(self) -> int:
        return self.frames - len(self.processed)


def schedule(frames: int, fps: float, latency: Latency, rng: np.random.Generator) -> Schedule:
    """Frame i arrives at i / fps; the processor takes it when free, else it is dropped."""
    if not (np.isfinite(fps) and fps > 0):
        raise NcapError(f"camera rate {fps} fps is not a positive number; give e.g. 30")
    draws = rng.choice(np.asarray(latency.samples_ms, dtype=float), size=frames) / 1000.0
    processed, done, busy_until = [], [], -np.inf
    for i in range(frames):
        arrival = i / fps
        if arrival < busy_until:
            continue
        busy_until = arrival + draws[i]
        processed.append(i)
        done.append(busy_until)
    return Schedule(np.asarray(processed, dtype=int), np.asarray(done), frames)
