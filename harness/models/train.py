"""Train a zoo network on a dataset on the CPU, export it to ONNX, and cache both by content."""
from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness import cache
from harness.data.dataset import Dataset, ImageSet
from harness.models import export, preprocess, zoo
from harness.models.card import InputSpec, ModelCard, OutputSpec

Progress = Callable[[str], None]
# (logits of a batch, the batch's indices into the training split) -> the loss to minimise
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# The zoo's input: a 64x64 RGB face crop. Small enough that three networks train on two CPU
# cores in a few minutes, large enough that closed eyes remain visible.
ZOO_INPUT = InputSpec(name=export.INPUT_NAME, size=(64, 64), channels=3, scale=1 / 255,
                      mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@dataclass(frozen=True)
class TrainedModel:
    card: ModelCard  # points at the FP32 ONNX export
    weights: Path  # the PyTorch state dict, for passes that fine-tune (QAT, pruning, distillation)
    framework_accuracy: float | None  # top-1 of the PyTorch model on the evaluation split; None if untrained
    train_seconds: float
    cache_hit: bool


def input_spec(name: str) -> InputSpec:
    """The zoo input at the network's own size (the classifiers' 64x64, the detector's 640x640)."""
    return ZOO_INPUT.model_copy(update={"size": zoo.ZOO[name].input_size})


def output_spec(name: str) -> OutputSpec:
    return OutputSpec(kind="detections" if zoo.ZOO[name].task == "detection" else "logits")


def class_names(name: str, dataset: Dataset) -> tuple[str, ...]:
    """The dataset's classes, or numbered ones for a network with its own class count (the detector)."""
    count = zoo.ZOO[name].classes
    return dataset.classes if count is None else tuple(f"class_{index}" for index in range(count))


def trained_model(name: str, dataset: Dataset, progress: Progress = print) -> TrainedModel:
    """The zoo network `name` trained on `dataset`: from the cache, or trained now (with progress)."""
    entry = zoo.ZOO[name]
    key = cache.content_key(name, entry.plan, dataset.fingerprint, input_spec(name).model_dump(), torch.__version__,
                            cache.source_sha256(zoo, preprocess, export, sys.modules[__name__]))
    folder = cache.cache_root() / "models" / f"{name}-{key[:16]}"
    if (folder / "trained.json").is_file():
        return _load(name, dataset, folder, cache_hit=True)
    progress(f"training {name} on {dataset.name} (not cached; {entry.plan.epochs} epochs)" if entry.trained
             else f"exporting {name} with its seeded random weights (not cached; it is not trained here)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        _train_and_export(name, entry, dataset, staging, progress)
        staging.rename(folder)  # atomic: a killed run never leaves a half-written cache entry
    except OSError as error:
        # Linux says ENOTEMPTY (or EEXIST) when another worker renamed the same model into place first: theirs
        # is identical, so it stands; any other failure is a real one
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not (folder / "trained.json").is_file():
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _load(name, dataset, folder, cache_hit=False)


def _load(name: str, dataset: Dataset, folder: Path, cache_hit: bool) -> TrainedModel:
    record = json.loads((folder / "trained.json").read_text())
    card = ModelCard(name=name, onnx=folder / "model.onnx", input=input_spec(name), output=output_spec(name),
                     classes=class_names(name, dataset))
    return TrainedModel(card, folder / "weights.pt", record["framework_accuracy"], record["train_seconds"], cache_hit)


def _train_and_export(name: str, entry: zoo.ZooEntry, dataset: Dataset, out: Path, progress: Progress) -> None:
    plan = entry.plan
    torch.manual_seed(plan.seed)
    module = entry.build(len(class_names(name, dataset)))
    started = time.perf_counter()
    accuracy = None
    if entry.trained:
        accuracy = _train(name, module, dataset, plan, progress)
    seconds = time.perf_counter() - started
    torch.save(module.state_dict(), out / "weights.pt")
    example = preprocess.to_tensor(dataset.evaluation.images[:8], input_spec(name))
    export_error = export.export_onnx(module.eval(), example, out / "model.onnx")
    (out / "trained.json").write_text(json.dumps({
        "model": name, "plan": plan.__dict__, "dataset": dataset.fingerprint, "framework_accuracy": accuracy,
        "train_seconds": seconds, "onnx_max_abs_diff": export_error, "torch": torch.__version__}, indent=2))


def _train(name: str, module: nn.Module, dataset: Dataset, plan: zoo.TrainingPlan, progress: Progress) -> float:
    """Fit on the training split with progress per epoch; returns the evaluation top-1."""
    inputs, labels = split_tensors(dataset.train)
    started = time.perf_counter()
    accuracy = 0.0

    def report(epoch: int, mean_loss: float) -> None:
        nonlocal accuracy
        accuracy = evaluate_torch(module, dataset.evaluation)
        progress(f"  {name} epoch {epoch}/{plan.epochs}: loss {mean_loss:.3f}, "
                 f"eval top-1 {accuracy:.1%} ({time.perf_counter() - started:.0f} s)")

    fit(module, inputs, labels, plan, after_epoch=report)
    accuracy = evaluate_torch(module, dataset.evaluation)
    progress(f"  {name} with re-estimated BatchNorm statistics: eval top-1 {accuracy:.1%}")
    return accuracy


def reference_model(name: str, size: tuple[int, int], classes: tuple[str, ...]) -> ModelCard:
    """The zoo architecture `name`, seeded random weights, exported at `size`: what the article's latencies
    (at 224x224 or 640x640) are projected from. A latency depends on the graph, not on trained weights."""
    spec = input_spec(name).model_copy(update={"size": tuple(size)})
    key = cache.content_key(name, spec.model_dump(), len(classes), torch.__version__,
                            cache.source_sha256(zoo, export, sys.modules[__name__]))
    target = cache.cache_root() / "references" / f"{name}-{size[0]}x{size[1]}-{key[:16]}.onnx"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(zoo.ZOO[name].plan.seed)
        # a staging name of this process's own: two workers exporting the same reference never share a file
        staging = target.with_suffix(f".{os.getpid()}.partial.onnx")
        example = np.random.default_rng(0).standard_normal((2, spec.channels, *size)).astype(np.float32)
        export.export_onnx(zoo.ZOO[name].build(len(classes)), example, staging)
        staging.rename(target)
    return ModelCard(name=name, onnx=target, input=spec, output=output_spec(name), classes=classes)


def split_tensors(split: ImageSet) -> tuple[torch.Tensor, torch.Tensor]:
    """A split as the zoo networks take it: preprocessed float images and int64 labels."""
    return torch.from_numpy(preprocess.to_tensor(split.images, ZOO_INPUT)), torch.from_numpy(split.labels)


def fit(module: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, plan: zoo.TrainingPlan,
        loss: Loss | None = None, after_epoch: Callable[[int, float], None] | None = None) -> None:
    """Train with AdamW and a one-cycle schedule, shuffled by `plan.seed`: the zoo's training and
    every fine-tuning pass (pruning, distillation, QAT) share this loop. `loss` defaults to cross-entropy;
    `after_epoch` gets the epoch number and its mean loss."""
    loss = loss or (lambda logits, batch: nn.functional.cross_entropy(logits, labels[batch]))
    optimiser = torch.optim.AdamW(module.parameters(), lr=plan.learning_rate, weight_decay=plan.weight_decay)
    steps = plan.epochs * -(-len(labels) // plan.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=plan.learning_rate, total_steps=steps)
    generator = torch.Generator().manual_seed(plan.seed)
    for epoch in range(1, plan.epochs + 1):
        module.train()
        total = 0.0
        for batch in torch.randperm(len(labels), generator=generator).split(plan.batch_size):
            optimiser.zero_grad()
            value = loss(module(inputs[batch]), batch)
            value.backward()
            optimiser.step()
            schedule.step()
            total += value.item() * len(batch)
        if after_epoch is not None:
            after_epoch(epoch, total / len(labels))
    recalibrate_batchnorm(module, inputs, plan.batch_size)


def recalibrate_batchnorm(module: nn.Module, inputs: torch.Tensor, batch_size: int) -> None:
    """Re-estimate BatchNorm running statistics as exact averages over the training inputs.

    torchvision's MobileNetV3 uses BatchNorm momentum 0.01: after the few hundred steps a CPU budget
    allows, its running statistics still lag the weights and eval-mode accuracy collapses to chance
    although training converged. Weights are untouched, so this is safe for every network.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None: a cumulative average over every batch seen
    module.train()
    with torch.no_grad():
        for batch in inputs.split(batch_size):
            module(batch)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


def evaluate_torch(module: nn.Module, split: ImageSet, batch_size: int = 256) -> float:
    """Top-1 accuracy of a PyTorch model on a split."""
    module.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            x = torch.from_numpy(preprocess.to_tensor(split.images[start:start + batch_size], ZOO_INPUT))
            correct += int((module(x).argmax(1).numpy() == split.labels[start:start + batch_size]).sum())
    return correct / len(split)
