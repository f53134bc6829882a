"""The convolutions of published CNN architectures, as configurations for the profiling plan to time.

A random configuration lands where no network has a kernel as often as where networks have them: a 25-minute plan
left ResNet18's 256 -> 256 3x3 convolution on 4x4 pixels four samples, and MobileNetV3's 1x1 convolutions on one
pixel one. LitePred (NSDI'24) samples from the configurations of a large zoo of real models instead; this module
does the same with torchvision's classification architectures, read from the model definitions themselves.

The architectures are from families other than the zoo's (harness.models.zoo: no ResNet, no MobileNetV3), so the
networks the predictor is evaluated on stay out of its fit; their configurations overlap the zoo's only as CNNs'
configurations overlap.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import NamedTuple

import numpy as np

ARCHITECTURES = ("mobilenet_v2", "mnasnet1_0", "efficientnet_b0", "shufflenet_v2_x1_0", "squeezenet1_1",
                 "densenet121", "googlenet", "vgg11", "mnasnet0_5", "convnext_tiny")
TRACED_AT = 224  # the input size the architectures are traced at; a layer's size scales with the input's


class Layer(NamedTuple):
    """One convolution as its architecture has it, its size a share of the input's."""

    architecture: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    depthwise: bool
    size_share: float  # its input's side over the network input's


@functools.cache
def architecture_layers() -> dict[str, tuple[Layer, ...]]:
    """Each architecture's convolutions that a conv block can be (square kernels, undilated, dense or depthwise),
    in execution order."""
    return {name: _traced(name) for name in ARCHITECTURES}


def _traced(name: str) -> tuple[Layer, ...]:
    """The architecture's convolutions as a forward pass meets them, on PyTorch's meta device: shapes only, no
    weights are allocated (RegNet's builder computes its widths with tensors and cannot be built there)."""
    import torch
    from torchvision import models

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # GoogLeNet's, about initialising weights never used here
        network = models.get_model(name, weights=None).eval()
    found: list[Layer] = []

    def record(conv: torch.nn.Conv2d, inputs: tuple[torch.Tensor, ...]) -> None:
        kernel, stride = conv.kernel_size, conv.stride
        if kernel[0] == kernel[1] and conv.dilation == (1, 1) and conv.groups in (1, conv.in_channels):
            found.append(Layer(name, conv.in_channels, conv.out_channels, kernel[0], stride[0], conv.groups > 1,
                               inputs[0].shape[-1] / TRACED_AT))

    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_pre_hook(record)
    with torch.no_grad():
        network(torch.zeros(1, 3, TRACED_AT, TRACED_AT, device="meta"))
    return tuple(found)


def sample_layer(rng: np.random.Generator, input_size: int) -> tuple[Layer, int]:
    """A convolution of a random architecture (each equally likely, then each of its layers), and its input's side
    when the network is fed `input_size` pixels."""
    layers = architecture_layers()[str(rng.choice(ARCHITECTURES))]
    layer = layers[int(rng.integers(len(layers)))]
    return layer, max(1, math.ceil(input_size * layer.size_share))
