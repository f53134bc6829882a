"""`prune:RATIO`: structured channel pruning with torch-pruning, then fine-tuning.

Channels are ranked by the L1/L2 norm of their weights (the article's magnitude criterion) and
removed with every layer that depends on them, so the result is a genuinely smaller network,
not a masked one. The classifier's output layer keeps its classes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch_pruning as tp
from torch import nn

from harness.models.train import split_tensors
from harness.models.zoo import TrainingPlan
from harness.optimize.passes import PassContext
from harness.optimize.torch_passes import module_io

FINE_TUNE = TrainingPlan(epochs=3, learning_rate=1e-3)


class Prune:
    name = "prune"
    precision = None
    depends_on = module_io.SOURCES

    def __init__(self, ratio: float = 0.5, norm: int = 2, plan: TrainingPlan = FINE_TUNE) -> None:
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"pruning ratio {ratio} must be between 0 and 1 (the share of channels removed)")
        if norm not in (1, 2):
            raise ValueError(f"norm {norm} must be 1 (L1) or 2 (L2)")
        self.ratio, self.norm, self.plan = ratio, norm, plan

    @classmethod
    def parse(cls, arg: str | None) -> Prune:
        """`prune`, `prune:0.3`, or `prune:0.3:l1`."""
        ratio, _, norm = (arg or "0.5").partition(":")
        return cls(float(ratio), int(norm.lower().removeprefix("l") or 2))

    def params(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "importance": f"L{self.norm} magnitude", "fine_tune": self.plan.__dict__}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        module = module_io.load_module(source, context, self.name).eval()
        inputs, labels = split_tensors(module_io.training_data(context, self.name).train)
        example = inputs[:1]
        macs_before, params_before = tp.utils.count_ops_and_params(module, example)
        pruner = tp.pruner.MetaPruner(module, example, importance=tp.importance.MagnitudeImportance(p=self.norm),
                                      pruning_ratio=self.ratio, ignored_layers=[_classifier(module)])
        pruner.step()
        macs_after, params_after = tp.utils.count_ops_and_params(module, example)
        module_io.fine_tune(module, inputs, labels, self.plan)
        error = module_io.save_module(module.eval(), target, context)
        return {"tool": f"torch_pruning {tp.__version__} MetaPruner + MagnitudeImportance(p={self.norm})",
                "params_before": int(params_before), "params_after": int(params_after),
                "macs_before": int(macs_before), "macs_after": int(macs_after), "onnx_max_abs_diff": error}


def _classifier(module: nn.Module) -> nn.Module:
    """The last Linear layer: its outputs are the classes, which pruning must keep."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(module).__name__} has no Linear classifier layer to protect from pruning")
    return linears[-1]
