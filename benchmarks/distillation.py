"""Does distillation help? The same student, from the same initial weights, trained on the same
budget (epochs, schedule, seed) once with labels alone and once distilled from the zoo teacher
(temperature 4, alpha 0.7), then evaluated on the evaluation split.

    python benchmarks/distillation.py [--student dmsnet] [--teacher resnet18] [--epochs 3] [--seeds 0 1]
                                      [--train 600] [--evaluation 400]

The teacher is trained (and cached) on the same, smaller synthetic dataset first; that takes a few
minutes on two CPU cores the first time.
"""
from __future__ import annotations

import argparse
import json

import torch

from harness.data.dataset import SyntheticSpec, embedded_dataset
from harness.models import zoo
from harness.models.train import evaluate_torch, split_tensors, trained_model
from harness.optimize.torch_passes import module_io
from harness.optimize.torch_passes.distill import distill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="dmsnet", choices=list(zoo.ZOO))
    parser.add_argument("--teacher", default="resnet18", choices=list(zoo.ZOO))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--evaluation", type=int, default=400)
    args = parser.parse_args()
    dataset = embedded_dataset(SyntheticSpec(train=args.train, calibration=16, evaluation=args.evaluation))
    teacher = trained_model(args.teacher, dataset)
    teacher_module = module_io.zoo_module(teacher)
    inputs, labels = split_tensors(dataset.train)
    runs = []
    for seed in args.seeds:
        plan = zoo.TrainingPlan(epochs=args.epochs, seed=seed)
        accuracy = {}
        for how in ("alone", "distilled"):
            torch.manual_seed(seed)  # the same initial weights for both
            student = zoo.ZOO[args.student].build(len(dataset.classes))
            if how == "alone":
                module_io.fine_tune(student, inputs, labels, plan)
            else:
                distill(student, teacher_module, dataset, plan)
            accuracy[how] = evaluate_torch(student, dataset.evaluation)
        runs.append({"seed": seed, **accuracy, "gain_pt": round((accuracy["distilled"] - accuracy["alone"]) * 100, 2)})
    print(json.dumps({"student": args.student, "teacher": args.teacher, "teacher_accuracy": teacher.framework_accuracy,
                      "epochs": args.epochs, "train_images": args.train, "evaluation_images": args.evaluation,
                      "accuracy": "top-1 of the PyTorch model", "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
