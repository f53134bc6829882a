"""Datasets as the harness sees them: three disjoint splits of labelled RGB images."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.data import synthetic
from harness.errors import NcapError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")  # PIL modes


@dataclass(frozen=True)
class ImageSet:
    """Labelled RGB uint8 images (HxWx3); sizes may differ when they come from a folder."""

    images: Sequence[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Dataset:
    name: str
    classes: tuple[str, ...]
    train: ImageSet
    calibration: ImageSet
    evaluation: ImageSet
    fingerprint: str  # sha256 over every image and label; part of every cache key that uses the data


def _fingerprint(classes: Sequence[str], splits: Sequence[ImageSet]) -> str:
    digest = hashlib.sha256(repr(tuple(classes)).encode())
    for split in splits:
        for image in split.images:
            digest.update(np.ascontiguousarray(image).tobytes())
        digest.update(split.labels.astype(np.int64).tobytes())
    return digest.hexdigest()


def _make(name: str, classes: Sequence[str], train: ImageSet, calibration: ImageSet, evaluation: ImageSet) -> Dataset:
    return Dataset(name, tuple(classes), train, calibration, evaluation,
                   _fingerprint(classes, (train, calibration, evaluation)))


@dataclass(frozen=True)
class SyntheticSpec:
    """What determines the embedded dataset; its repr is part of cache keys."""

    size: int = 64
    train: int = 2500
    calibration: int = 200
    evaluation: int = 1000
    seed: int = synthetic.DEFAULT_SEED


def embedded_dataset(spec: SyntheticSpec = SyntheticSpec()) -> Dataset:
    """The deterministic synthetic driver-state dataset the harness generates itself."""
    splits = {
        split: ImageSet(*synthetic.generate_split(split, getattr(spec, split), spec.size, spec.seed))
        for split in synthetic.SPLITS
    }
    return _make(f"synthetic driver states ({spec.size}x{spec.size}, seed {spec.seed})",
                 synthetic.CLASSES, splits["train"], splits["calibration"], splits["evaluation"])


def folder_dataset(root: Path) -> Dataset:
    """An ImageFolder tree (`root/<class>/*.png|jpg`), split by a hash of each file's path.

    Hashing the relative path (not shuffling) keeps a file in the same split however the folder
    grows, so the evaluation split never leaks into training or calibration.
    """
    if not root.is_dir():
        raise NcapError(f"dataset folder {root} does not exist; "
                        "pass an ImageFolder tree (DIR/<class>/*.png) to --dataset")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    buckets: dict[str, tuple[list[np.ndarray], list[int]]] = {s: ([], []) for s in synthetic.SPLITS}
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            images, labels = buckets[_split_of(path.relative_to(root))]
            images.append(read_rgb(path))
            labels.append(label)
    for split, (images, _) in buckets.items():
        if not images:
            raise NcapError(
                f"dataset {root} has no images in its {split} split; it needs class folders with "
                f"*.png or *.jpg files (about 10+ per class so every split gets some)")
    sets = {s: ImageSet(images, np.asarray(labels, dtype=np.int64)) for s, (images, labels) in buckets.items()}
    return _make(str(root), classes, sets["train"], sets["calibration"], sets["evaluation"])


def _split_of(relative: Path) -> str:
    bucket = int(hashlib.sha256(relative.as_posix().encode()).hexdigest(), 16) % 10
    return "calibration" if bucket == 0 else "evaluation" if bucket <= 2 else "train"


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if image.mode not in EIGHT_BIT_MODES:
                # PIL would clip a 16-bit or float image to 8 bits without a word: most of it would read as white
                raise NcapError(f"image {path} is {image.mode} ({image.getbands()} bands, not 8 bits per channel); "
                                "convert the dataset to 8-bit PNG or JPEG")
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise NcapError(f"cannot read image {path}: {exc}; remove or replace the file") from exc
