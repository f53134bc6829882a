"""Top-1 accuracy of a runner on a labelled split."""
from __future__ import annotations

from harness.data import preprocess
from harness.data.dataset import ImageSet
from harness.errors import NcapError
from harness.models.card import ModelCard
from harness.runtimes.base import Runner


def top1(runner: Runner, card: ModelCard, split: ImageSet, batch_size: int = 100) -> float:
    """Fraction of images whose highest output is the true class (logits and probabilities alike)."""
    step = min(batch_size, runner.max_batch or batch_size)
    correct = 0
    for start in range(0, len(split), step):
        batch = preprocess.to_tensor(split.images[start:start + step], card.input)
        scores = runner.infer(batch)
        if scores.ndim != 2 or scores.shape[1] != len(card.classes):
            raise NcapError(f"{card.name} output has shape {list(scores.shape)}, expected [batch, "
                            f"{len(card.classes)}] (one score per class in the card); fix output.name or classes")
        correct += int((scores.argmax(axis=1) == split.labels[start:start + step]).sum())
    return correct / len(split)
