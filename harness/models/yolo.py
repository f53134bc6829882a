"""A YOLOv8-s-class detector, for the article's "YOLOv8-s on TDA4VM, 80 -> 25 ms" row.

Written here from the published YOLOv8 architecture (CSP backbone of C2f blocks, SPPF, a PAN neck,
an anchor-free decoupled head with distribution focal loss boxes) at the "s" scale: depth 0.33,
width 0.50, 80 classes, 640x640 input, about 11.2 M parameters and 14 G MACs (Ultralytics
publishes 11.2 M and 28.6 GFLOPs). Ultralytics' own package is AGPL and its weights cannot be
downloaded here, so the weights are a fixed random initialisation: right for latency, memory
and power, meaningless for accuracy (which the harness therefore skips for detectors).
The export includes the box decoding that runs on the device, not non-maximum suppression.
"""
from __future__ import annotations

import torch
from torch import nn

REG_MAX = 16  # bins of the distribution each box side is predicted as
STRIDES = (8, 16, 32)


class ConvBnSiLU(nn.Sequential):
    def __init__(self, inputs: int, outputs: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(outputs), nn.SiLU())


class Bottleneck(nn.Module):
    def __init__(self, channels: int, shortcut: bool) -> None:
        super().__init__()
        self.convs = nn.Sequential(ConvBnSiLU(channels, channels, 3), ConvBnSiLU(channels, channels, 3))
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs(x) if self.shortcut else self.convs(x)


class C2f(nn.Module):
    """Split in two halves, run bottlenecks on the second, keep every intermediate, fuse them with a 1x1."""

    def __init__(self, inputs: int, outputs: int, blocks: int, shortcut: bool) -> None:
        super().__init__()
        self.hidden = outputs // 2
        self.split = ConvBnSiLU(inputs, 2 * self.hidden)
        self.blocks = nn.ModuleList(Bottleneck(self.hidden, shortcut) for _ in range(blocks))
        self.fuse = ConvBnSiLU((2 + blocks) * self.hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = list(self.split(x).chunk(2, dim=1))
        for block in self.blocks:
            parts.append(block(parts[-1]))
        return self.fuse(torch.cat(parts, dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max-pools, concatenated."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.reduce = ConvBnSiLU(inputs, inputs // 2)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.fuse = ConvBnSiLU(inputs // 2 * 4, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [self.reduce(x)]
        for _ in range(3):
            parts.append(self.pool(parts[-1]))
        return self.fuse(torch.cat(parts, dim=1))


def _branch(inputs: int, width: int, outputs: int) -> nn.Sequential:
    """Two 3x3 convolutions, then a 1x1 prediction layer: one head branch at one scale."""
    return nn.Sequential(ConvBnSiLU(inputs, width, 3), ConvBnSiLU(width, width, 3), nn.Conv2d(width, outputs, 1))


class DetectHead(nn.Module):
    """Per scale, a box branch (4 x REG_MAX bins) and a class branch; decoded to (x, y, w, h) in pixels."""

    def __init__(self, classes: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        box_width, class_width = max(16, channels[0] // 4, 4 * REG_MAX), max(channels[0], min(classes, 100))
        self.boxes = nn.ModuleList(_branch(c, box_width, 4 * REG_MAX) for c in channels)
        self.scores = nn.ModuleList(_branch(c, class_width, classes) for c in channels)
        self.register_buffer("bins", torch.arange(REG_MAX, dtype=torch.float32), persistent=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        boxes, scores, centres, strides = [], [], [], []
        for feature, box, score, stride in zip(features, self.boxes, self.scores, STRIDES, strict=True):
            height, width = feature.shape[2:]
            boxes.append(box(feature).flatten(2))
            scores.append(score(feature).flatten(2))
            ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
            centres.append(torch.stack((xs, ys)).flatten(1))
            strides.append(torch.full((1, height * width), float(stride)))
        box, centre, stride = torch.cat(boxes, 2), torch.cat(centres, 1), torch.cat(strides, 1)
        # each side's distance is the expectation of its REG_MAX-bin distribution
        distances = (box.view(box.shape[0], 4, REG_MAX, -1).softmax(2) * self.bins.view(1, 1, -1, 1)).sum(2)
        near, far = centre - distances[:, :2], centre + distances[:, 2:]
        xywh = torch.cat(((near + far) / 2, far - near), 1) * stride
        return torch.cat((xywh, torch.cat(scores, 2).sigmoid()), 1)  # (batch, 4 + classes, anchors)


class YoloV8(nn.Module):
    def __init__(self, classes: int = 80, width: float = 0.50, depth: float = 0.33, max_channels: int = 1024) -> None:
        super().__init__()
        c = [min(int(base * width), int(max_channels * width)) for base in (64, 128, 256, 512, 1024)]

        def n(blocks: int) -> int:
            return max(round(blocks * depth), 1)
        self.stem = nn.Sequential(ConvBnSiLU(3, c[0], 3, 2), ConvBnSiLU(c[0], c[1], 3, 2), C2f(c[1], c[1], n(3), True))
        self.p3 = nn.Sequential(ConvBnSiLU(c[1], c[2], 3, 2), C2f(c[2], c[2], n(6), True))
        self.p4 = nn.Sequential(ConvBnSiLU(c[2], c[3], 3, 2), C2f(c[3], c[3], n(6), True))
        self.p5 = nn.Sequential(ConvBnSiLU(c[3], c[4], 3, 2), C2f(c[4], c[4], n(3), True), SPPF(c[4], c[4]))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.top_down4 = C2f(c[4] + c[3], c[3], n(3), False)
        self.top_down3 = C2f(c[3] + c[2], c[2], n(3), False)
        self.down3, self.bottom_up4 = ConvBnSiLU(c[2], c[2], 3, 2), C2f(c[2] + c[3], c[3], n(3), False)
        self.down4, self.bottom_up5 = ConvBnSiLU(c[3], c[3], 3, 2), C2f(c[3] + c[4], c[4], n(3), False)
        self.head = DetectHead(classes, (c[2], c[3], c[4]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        n4 = self.top_down4(torch.cat((self.up(p5), p4), 1))
        n3 = self.top_down3(torch.cat((self.up(n4), p3), 1))
        m4 = self.bottom_up4(torch.cat((self.down3(n3), n4), 1))
        m5 = self.bottom_up5(torch.cat((self.down4(m4), p5), 1))
        return self.head([n3, m4, m5])
