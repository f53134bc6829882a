"""A cell's scenario records: every scripted sequence (and the user's recordings) through the cell's optimised
artifact, timed with the cell's latency on its platform, judged per state."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import numpy as np

from harness.cell import Cell, Record
from harness.errors import NcapError
from harness.models.card import ModelCard
from harness.runtimes.base import Runner
from harness.scenarios import sequences as scripted
from harness.scenarios.judge import judge_state
from harness.scenarios.plan import ScenarioPlan
from harness.scenarios.play import Classifier, Played, play, runner_classifier
from harness.scenarios.protocol import Protocol, load_protocol
from harness.scenarios.recording import load_recording
from harness.scenarios.timing import Latency
from harness.sources.base import Evidence, FigureSource

TIMING_SEED = 0
__all__ = ["cell_latency", "classifying", "load_protocol", "scenario_records", "state_ids"]


def state_ids(protocol: Protocol, plan: ScenarioPlan) -> list[str]:
    """The keys scenario_records gives its records under, known before anything is played (test ids)."""
    states = [state for state in protocol.states if state in scripted.SCRIPTED]
    for folder in plan.recordings:
        states.append(f"{load_recording(folder, protocol, plan.fps).sequence.state} ({folder.name})")
    return states


@contextmanager
def classifying(runner: Runner, card: ModelCard) -> Iterator[Classifier]:
    """The runner loaded, as a per-frame classifier."""
    with runner as loaded:
        yield runner_classifier(loaded, card)


def cell_latency(source: FigureSource, cell: Cell) -> Latency:
    """The cell's processing time as its source has it: the timed samples (host or board), else the one figure
    (a projection), with that figure's grade."""
    evidence: Evidence = source.latency(cell)
    if evidence.value is None:
        raise NcapError(f"no latency for {cell.id} to time the scenarios with: {evidence.reason}")
    samples = source.latency_samples(cell)
    figures = samples if samples is not None and len(samples) else np.asarray([evidence.value])
    return Latency(np.asarray(figures, dtype=float), evidence.grade or "unknown", evidence.method or evidence.what,
                   evidence.lower_bound)


def scenario_records(cell: Cell, protocol: Protocol, plan: ScenarioPlan,
                     classifier: Callable[[], AbstractContextManager[Classifier]], latency: Latency, how: str,
                     progress: Callable[[str], None]) -> dict[str, Record]:
    """One record per protocol state (keyed by state), and one per user recording (keyed `state (recording)`).
    `classifier` opens the per-frame classifier (the cell's artifact on a runtime) for the duration."""
    sequences = scripted.sequences(protocol, plan.runs, plan.fps)
    progress(f"scenarios of {cell.id}: {plan.runs} sequences x {len(sequences)} states at {plan.fps:g} fps")
    with classifier() as classify:
        return _played(cell, protocol, plan, classify, latency, how, sequences)


def _played(cell: Cell, protocol: Protocol, plan: ScenarioPlan, classify: Classifier, latency: Latency, how: str,
            sequences: dict[str, list[scripted.Sequence]]) -> dict[str, Record]:
    rng = np.random.default_rng(TIMING_SEED)
    records = {}
    for state, runs in sequences.items():
        played = [play(s, scripted.frames(s), classify, latency, protocol, rng) for s in runs]
        records[state] = judge_state(cell, state, played, runs, protocol, latency, how)
    for folder in plan.recordings:
        recording = load_recording(folder, protocol, plan.fps)
        played: list[Played] = [play(recording.sequence, recording.frames(), classify, latency, protocol, rng)]
        record = judge_state(cell, recording.sequence.state, played, [recording.sequence], protocol, latency, how)
        record.figures |= {"recording": str(folder)}
        records[f"{recording.sequence.state} ({folder.name})"] = record
    return records
