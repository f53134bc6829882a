"""A deliberately slower copy of an ONNX model, to measure whether the gate catches a slow-down.

The copy does `work` extra multiply-adds per inference that depend on the input (so the runtime cannot
fold them away), multiplies their sum by zero and adds it to the output: same predictions, more time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


def slowed_copy(source: Path, target: Path, work: int) -> Path:
    model = onnx.load(str(source))
    graph = model.graph
    output, first_input = graph.output[0].name, graph.input[0].name
    for node in graph.node:  # the node that made the output now feeds the extra work's final Add
        node.output[:] = [f"{name}_fast" if name == output else name for name in node.output]
    graph.initializer.extend([numpy_helper.from_array(np.full(work, 1e-3, np.float32), "slow_weights"),
                              numpy_helper.from_array(np.array(0, np.float32), "slow_zero")])
    graph.node.extend([
        helper.make_node("ReduceSum", [first_input], ["slow_seed"], keepdims=0),
        helper.make_node("Mul", ["slow_seed", "slow_weights"], ["slow_spread"]),
        helper.make_node("ReduceSum", ["slow_spread"], ["slow_total"], keepdims=0),
        helper.make_node("Mul", ["slow_total", "slow_zero"], ["slow_nothing"]),
        helper.make_node("Add", [f"{output}_fast", "slow_nothing"], [output]),
    ])
    # no onnx.checker here: FP16 conversion leaves its Cast nodes out of topological order, which ONNX Runtime
    # runs and the checker refuses; the copy is checked by running it (tests/test_gate.py)
    onnx.save(model, str(target))
    return target
