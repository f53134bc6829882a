"""One sequence played through a DMS: its frames at the camera rate, the network's state for each frame it had
time for, the decision layer's warnings, and what they mean against the ground truth."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.data.synthetic import ATTENTIVE, CLASSES
from harness.errors import NcapError
from harness.measure.accuracy import check_finite, check_scores_shape
from harness.models import preprocess
from harness.models.card import ModelCard
from harness.runtimes.base import Runner
from harness.scenarios.decision import Alert, DecisionLayer, Output
from harness.scenarios.protocol import Protocol
from harness.scenarios.sequences import Sequence
from harness.scenarios.timing import Latency, schedule

# frames [n, H, W, 3] uint8 -> each frame's driver state (a name in synthetic.CLASSES)
Classifier = Callable[[np.ndarray], list[str]]
BATCH = 64


@dataclass(frozen=True)
class Played:
    sequence: str
    alerts: tuple[Alert, ...]
    warning_s: float | None  # first expected warning - onset; None: none came (missed) or none was expected
    on_time: bool  # warned within the criterion, or (a state that must not warn) did not warn
    false_alerts: int  # warnings the ground truth does not call for
    frames: int
    dropped: int
    correct: int  # processed frames whose state matched the ground truth
    seconds: float


def runner_classifier(runner: Runner, card: ModelCard) -> Classifier:
    """The runner's top class per frame, as a driver state; a card whose classes are not the states is an error."""
    missing = [name for name in CLASSES if name not in card.classes]
    if missing:
        raise NcapError(f"{card.name}'s classes {list(card.classes)} lack the driver states {missing} the scenarios "
                        "need; fix `classes` in the model card")
    step = min(BATCH, runner.max_batch or BATCH)

    def classify(frames: np.ndarray) -> list[str]:
        states: list[str] = []
        for start in range(0, len(frames), step):
            scores = runner.infer(preprocess.to_tensor(frames[start:start + step], card.input))
            check_scores_shape(list(scores.shape), card)
            check_finite(int(np.size(scores) - np.isfinite(scores).sum()), card)
            states += [card.classes[i] for i in scores.argmax(axis=1)]
        return states
    return classify


def play(sequence: Sequence, frames: np.ndarray, classify: Classifier, latency: Latency, protocol: Protocol,
         rng: np.random.Generator) -> Played:
    """The sequence through the network (only the frames it had time for) and the decision layer."""
    timing = schedule(len(frames), sequence.fps, latency, rng)
    states = classify(frames[timing.processed])
    outputs = [Output(int(i) / sequence.fps, float(done), state)
               for i, done, state in zip(timing.processed, timing.done_s, states, strict=True)]
    alerts = DecisionLayer(protocol.decision).run(outputs)
    truth = np.asarray(sequence.labels)[timing.processed]
    correct = int(sum(CLASSES[label] == state for label, state in zip(truth, states, strict=True)))
    expected = protocol.states[sequence.state]
    if not expected.must_warn:
        return Played(sequence.name, tuple(alerts), None, not alerts, len(alerts), len(frames), timing.dropped,
                      correct, sequence.seconds)
    # a warning of the expected kind counts once the scripted event has begun; one before it is a false alert
    begins = next(i for i, label in enumerate(sequence.labels) if label != ATTENTIVE) / sequence.fps
    answers = [a for a in alerts if a.kind in expected.alerts]
    early = [a for a in answers if a.at_s < begins]
    timely = [a for a in answers if a.at_s >= begins]
    warning = float(timely[0].at_s - sequence.onset_s) if timely else None
    on_time = warning is not None and warning <= expected.warn_within_s
    return Played(sequence.name, tuple(alerts), warning, on_time, len(early), len(frames), timing.dropped, correct,
                  sequence.seconds)
