"""The embedded model zoo: network definitions and how long each trains on the synthetic data."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torchvision import models as tv

from harness.models.yolo import YoloV8


class DMSNet(nn.Module):
    """The source article's `DMSModel`: three Conv-BN-ReLU blocks and a two-layer head."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, 1, 1), nn.BatchNorm2d(128), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.backbone(x), 1))


@dataclass(frozen=True)
class TrainingPlan:
    """Everything about training besides the data; part of the trained model's cache key.
    Zero epochs: not trained, the seed fixes the random initialisation."""

    epochs: int
    learning_rate: float = 2e-3
    batch_size: int = 64
    weight_decay: float = 1e-4
    seed: int = 0


@dataclass(frozen=True)
class ZooEntry:
    build: Callable[[int], nn.Module]  # from the number of classes
    plan: TrainingPlan
    description: str
    task: Literal["classification", "detection"] = "classification"
    input_size: tuple[int, int] = (64, 64)  # height, width
    classes: int | None = None  # None: one per class of the dataset

    @property
    def trained(self) -> bool:
        return self.plan.epochs > 0


ZOO: dict[str, ZooEntry] = {
    "dmsnet": ZooEntry(DMSNet, TrainingPlan(epochs=8), "source article DMSModel CNN"),
    "mobilenet_v3_small": ZooEntry(
        lambda n: tv.mobilenet_v3_small(num_classes=n), TrainingPlan(epochs=30, learning_rate=4e-3),
        "torchvision MobileNetV3-Small, trained from scratch"),
    "resnet18": ZooEntry(
        lambda n: tv.resnet18(num_classes=n), TrainingPlan(epochs=5),
        "torchvision ResNet18, trained from scratch"),
    # the article's TDA4VM row; timed at its own 640x640 input, never trained (no boxes in the embedded data)
    "yolov8s": ZooEntry(
        lambda n: YoloV8(classes=n), TrainingPlan(epochs=0), "YOLOv8-s-class detector (harness.models.yolo), "
        "random weights: for latency, memory and power only", task="detection", input_size=(640, 640), classes=80),
}
