"""`distill` / `distill:TEACHER`: knowledge distillation from a larger zoo network into the current one.

The student learns from the teacher's softened outputs (temperature 4) and from the labels, weighted
0.7 / 0.3 as in the source article. The teacher is the zoo's trained network (cached on disk).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.data.dataset import Dataset
from harness.models import zoo
from harness.models.train import split_tensors, trained_model
from harness.models.zoo import TrainingPlan
from harness.optimize.passes import PassContext
from harness.optimize.torch_passes import module_io

TEMPERATURE, ALPHA = 4.0, 0.7
FINE_TUNE = TrainingPlan(epochs=3, learning_rate=1e-3)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                      temperature: float = TEMPERATURE, alpha: float = ALPHA) -> torch.Tensor:
    """alpha * T² * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(student, labels).

    T² keeps the soft term's gradients on the same scale as the hard term's whatever T is
    (Hinton et al.); "batchmean" is the KL divergence's true mean over the batch.
    """
    soft = nn.functional.kl_div(nn.functional.log_softmax(student / temperature, dim=1),
                                nn.functional.softmax(teacher / temperature, dim=1),
                                reduction="batchmean") * temperature ** 2
    return alpha * soft + (1 - alpha) * nn.functional.cross_entropy(student, labels)


def distill(student: nn.Module, teacher: nn.Module, dataset: Dataset, plan: TrainingPlan,
            temperature: float = TEMPERATURE, alpha: float = ALPHA) -> None:
    """Train `student` on the training split against `teacher`'s logits (computed once, in eval mode)."""
    inputs, labels = split_tensors(dataset.train)
    with torch.no_grad():
        teacher_logits = torch.cat([teacher.eval()(chunk) for chunk in inputs.split(256)])
    module_io.fine_tune(student, inputs, labels, plan, lambda logits, batch: distillation_loss(
        logits, teacher_logits[batch], labels[batch], temperature, alpha))


class Distill:
    name = "distill"
    precision = None
    depends_on = module_io.SOURCES

    def __init__(self, teacher: str = "resnet18", temperature: float = TEMPERATURE, alpha: float = ALPHA,
                 plan: TrainingPlan = FINE_TUNE) -> None:
        if teacher not in zoo.ZOO:
            raise ValueError(f"teacher {teacher!r} is not a zoo model ({', '.join(zoo.ZOO)})")
        self.teacher, self.temperature, self.alpha, self.plan = teacher, temperature, alpha, plan

    def params(self) -> dict[str, Any]:
        return {"teacher": self.teacher, "temperature": self.temperature, "alpha": self.alpha,
                "teacher_plan": zoo.ZOO[self.teacher].plan.__dict__, "fine_tune": self.plan.__dict__}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        student = module_io.load_module(source, context, self.name)
        dataset = module_io.training_data(context, self.name)
        teacher = trained_model(self.teacher, dataset)
        distill(student, module_io.zoo_module(teacher), dataset, self.plan, self.temperature, self.alpha)
        error = module_io.save_module(student.eval(), target, context)
        return {"tool": "KL divergence (batchmean) x T^2 + cross-entropy",
                "teacher_accuracy": teacher.framework_accuracy, "onnx_max_abs_diff": error}
