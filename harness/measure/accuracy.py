"""Top-1 accuracy of a runner on a labelled split."""
from __future__ import annotations

import numpy as np

from harness.data.dataset import ImageSet
from harness.errors import NcapError
from harness.models import preprocess
from harness.models.card import ModelCard
from harness.runtimes.base import Runner


def top1(runner: Runner, card: ModelCard, split: ImageSet, batch_size: int = 100) -> float:
    """Fraction of images whose highest output is the true class (logits and probabilities alike)."""
    step = min(batch_size, runner.max_batch or batch_size)
    correct = 0
    for start in range(0, len(split), step):
        batch = preprocess.to_tensor(split.images[start:start + step], card.input)
        scores = runner.infer(batch)
        check_scores_shape(list(scores.shape), card)
        check_finite(int(np.size(scores) - np.isfinite(scores).sum()), card)
        correct += int((scores.argmax(axis=1) == split.labels[start:start + step]).sum())
    return correct / len(split)


def top1_of_predictions(predictions: list[int], score_shapes: list[list[int]], card: ModelCard,
                        split: ImageSet, nonfinite_scores: int = 0) -> float:
    """Top-1 from the class indices a board sent back (with the shapes of the scores they came from, and how many
    of the scores were not finite)."""
    for shape in score_shapes:
        check_scores_shape(shape, card)
    check_finite(nonfinite_scores, card)
    if len(predictions) != len(split):
        raise NcapError(f"the board answered {len(predictions)} of {len(split)} evaluation images; rerun the cell")
    return float(np.mean(np.asarray(predictions) == split.labels))


def check_finite(nonfinite: int, card: ModelCard) -> None:
    """NaN or infinite scores are no prediction: argmax would read them as class 0, or as a confident class."""
    if nonfinite:
        raise NcapError(f"{card.name} produced {nonfinite} non-finite (NaN or infinite) scores on the evaluation "
                        "split; its accuracy cannot be measured: check the artifact (overflow at this precision?)")


def check_scores_shape(shape: list[int], card: ModelCard) -> None:
    if len(shape) != 2 or shape[1] != len(card.classes):
        raise NcapError(f"{card.name} output has shape {shape}, expected [batch, {len(card.classes)}] "
                        "(one score per class in the card); fix output.name or classes")
