"""`fuse`: fold each BatchNorm into the convolution before it (eval mode), then export.

ONNX Runtime folds Conv+BN itself at its default graph optimisation level, so this pass changes
the runtime graph only where that optimisation is off or absent (see benchmarks/fusion.py); it still
matters for toolchains that do not fold, and it hands QAT and pruning a BN-free network. Conv+ReLU
is left to the runtime: in float there is no fused Conv+ReLU ONNX op to export.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn
from torch.fx.experimental.optimization import fuse

from harness.optimize.passes import PassContext
from harness.optimize.torch_passes import module_io


class Fuse:
    name = "fuse"
    precision = None
    depends_on = module_io.SOURCES

    def params(self) -> dict[str, Any]:
        return {"patterns": ["Conv1d/2d/3d + BatchNorm"]}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        module = module_io.load_module(source, context, self.name).eval()
        before = _batch_norms(module)
        # torch.fx traces the network, so a BN is folded only where the conv's output feeds it alone
        fused = fuse(module)
        error = module_io.save_module(fused, target, context)
        return {"tool": "torch.fx.experimental.optimization.fuse (fuse_conv_bn_eval)",
                "batch_norms_before": before, "batch_norms_after": _batch_norms(fused),
                "onnx_max_abs_diff": error}


def _batch_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
