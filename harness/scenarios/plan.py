"""What a run's scenario tests do: how many sequences per state, the camera rate, the protocol file, a recording."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_RUNS = 5
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class ScenarioPlan:
    runs: int = DEFAULT_RUNS  # --ncap-scenario-runs: sequences per state
    fps: float = DEFAULT_FPS  # --ncap-fps: the camera rate
    protocol_file: Path | None = None  # --ncap-scenario-protocol: an OEM's thresholds over protocol.yaml
    recordings: tuple[Path, ...] = ()  # --ncap-scenario-recording: a user's recordings, played like the scripted ones
