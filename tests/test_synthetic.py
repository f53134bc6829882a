"""The embedded dataset: byte-identical for a seed on every machine, disjoint splits, balanced labels."""
import hashlib

import numpy as np
import pytest

from harness.data import synthetic

# sha256 of generate_split("evaluation", 10, size=64): a machine that renders differently fails here
GOLDEN_EVALUATION_10 = "6a30a9645c16ec9f4ae9b5c5502fee4bdeebd943d5cdec28a5d9c7e463e1ad08"


def _digest(images: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes()).hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes():
    first, _ = synthetic.generate_split("train", 20, size=48, seed=7)
    again, _ = synthetic.generate_split("train", 20, size=48, seed=7)
    other, _ = synthetic.generate_split("train", 20, size=48, seed=8)
    assert _digest(first) == _digest(again) != _digest(other)


def test_golden_bytes():
    images, labels = synthetic.generate_split("evaluation", 10, size=64)
    assert _digest(images) == GOLDEN_EVALUATION_10
    assert labels.tolist() == [0, 1, 2, 3, 4] * 2


def test_splits_never_share_an_image():
    seen = {_digest(image) for image in synthetic.generate_split("train", 500)[0]}
    for split in ("calibration", "evaluation"):
        assert not seen & {_digest(image) for image in synthetic.generate_split(split, 200)[0]}


def test_shapes_types_and_balance():
    images, labels = synthetic.generate_split("calibration", 25, size=32)
    assert images.shape == (25, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [5] * len(synthetic.CLASSES)


def test_unknown_split_names_the_known_ones():
    with pytest.raises(ValueError, match="train, calibration, evaluation"):
        synthetic.generate_split("validation", 3)


def test_task_is_not_linearly_trivial():
    """Nearest class-centroid on raw pixels stays far from what a CNN reaches (>= 95 %)."""
    train, train_labels = synthetic.generate_split("train", 1000, size=32)
    test, test_labels = synthetic.generate_split("evaluation", 500, size=32)
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255  # noqa: E731
    centroids = np.stack([flat(train)[train_labels == c].mean(0) for c in range(len(synthetic.CLASSES))])
    distances = ((flat(test)[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = float((distances.argmin(1) == test_labels).mean())
    assert accuracy < 0.6
