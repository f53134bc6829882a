"""Turn dataset images into the tensor a model card asks for."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from harness.models.card import InputSpec


def to_tensor(images: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Resize (when needed), convert channels, normalise and lay out a batch as float32."""
    height, width = spec.size
    batch = np.stack([_fit(image, height, width) for image in images]).astype(np.float32)
    if spec.channels == 1:
        # ITU-R BT.601 luma, the conversion Pillow and OpenCV use for "L"/GRAY.
        batch = batch @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        batch = batch[..., None]
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    batch = (batch * np.float32(spec.scale) - mean) / std
    if spec.layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32)


def _fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
