"""PyTorch → ONNX export (the FP32 artifact every recipe starts from)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from harness.errors import NcapError

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_onnx(module: nn.Module, example: np.ndarray, path: Path, optimize: bool = True,
                tolerance: float = 1e-3) -> float:
    """Export with a dynamic batch axis through torch.export (dynamo); return the max |ONNX - torch|.

    The comparison on a real batch catches an exporter that silently changes the maths. The exporter's
    optimiser folds BatchNorm into Conv among others; `optimize=False` keeps the graph as traced.
    `tolerance` is relative to the largest output.
    """
    module.eval()  # in place; an exported (PT2E) module's patched eval() returns None
    sample = torch.from_numpy(example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter is chatty about internals the user can't act on
        program = torch.onnx.export(
            module, (sample,), dynamo=True, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},), optimize=optimize, verbose=False,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    with torch.no_grad():
        expected = module(sample).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: example})[0]
    error = float(np.max(np.abs(got - expected)))
    if error > tolerance * max(1.0, float(np.max(np.abs(expected)))):
        raise NcapError(f"ONNX export of {type(module).__name__} disagrees with PyTorch (max |diff| {error:.3g}); "
                        "report this with the torch and onnx versions")
    return error
