"""How a PyTorch pass gets its network, its data, and hands its result on."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from harness import cache
from harness.data.dataset import Dataset
from harness.errors import NcapError
from harness.models import export, preprocess, train, zoo
from harness.models.zoo import TrainingPlan
from harness.optimize.passes import PassContext

MODULE_FILE = "module.pt"  # the pickled network beside a structural pass's ONNX file
EXAMPLE_IMAGES = 8  # the batch the ONNX export is checked on
# The code a PyTorch pass's result depends on besides its own module: part of its cache key (recipe.py)
SOURCES = (sys.modules[__name__], train, zoo, export)


def zoo_module(trained: train.TrainedModel) -> nn.Module:
    """The trained zoo network behind `trained`, in eval mode."""
    module = zoo.ZOO[trained.card.name].build(len(trained.card.classes))
    module.load_state_dict(torch.load(trained.weights, weights_only=True))
    return module.eval()


def load_module(source: Path, context: PassContext, pass_name: str) -> nn.Module:
    """The network `source` was exported from: the previous PyTorch pass's module, else the zoo's."""
    saved = source.with_name(MODULE_FILE)
    # Only a module this harness pickled into its own artifact cache is loaded: unpickling runs code, so a
    # module.pt lying beside a user's ONNX file is never touched.
    if saved.is_file() and saved.resolve().is_relative_to((cache.cache_root() / "artifacts").resolve()):
        return torch.load(saved, weights_only=False)  # written by save_module
    if context.trained is None:
        raise NcapError(f"pass {pass_name} changes a PyTorch network and needs a zoo model; {context.card.name} "
                        "is an ONNX model without one. Use the ONNX-level passes (fp32, fp16, int8) on it")
    if source != context.trained.card.onnx:
        raise NcapError(f"pass {pass_name} works on the PyTorch network, but the step before it produced only "
                        "ONNX; put PyTorch passes (fuse, prune, distill, qat) before ONNX-level ones")
    return zoo_module(context.trained)


def training_data(context: PassContext, pass_name: str) -> Dataset:
    if context.card.output.kind == "detections":
        raise NcapError(f"pass {pass_name} fine-tunes on class labels, and {context.card.name} is a detector: the "
                        "embedded data has no boxes. Use fuse and the ONNX-level passes (fp32, fp16, int8) on it")
    if context.dataset is None:
        raise NcapError(f"pass {pass_name} fine-tunes on the training split, but no dataset was given to it")
    return context.dataset


def save_module(module: nn.Module, target: Path, context: PassContext) -> float:
    """Export `module` to `target` and pickle it beside; return the export's max |ONNX - torch|."""
    images = training_data(context, "export").evaluation.images[:EXAMPLE_IMAGES]
    error = export.export_onnx(module, preprocess.to_tensor(images, context.card.input), target)
    torch.save(module, target.with_name(MODULE_FILE))
    return error


def fine_tune(module: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, plan: TrainingPlan,
              loss: train.Loss | None = None) -> None:
    """`fit`, seeded first so dropout and the like repeat: a cached pass must be reproducible."""
    torch.manual_seed(plan.seed)
    train.fit(module, inputs, labels, plan, loss)
