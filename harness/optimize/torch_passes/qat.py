"""`qat`: quantisation-aware training from the trained FP32 network, exported as an INT8 (QDQ) ONNX model.

Path chosen: PT2E from torchao (`torchao.quantization.pt2e`), the maintained successor of torch.ao's
eager QAT (deprecated in torch 2.x) and of torch.ao's own PT2E copy (gone from torch 2.14). The
network is captured with torch.export, fake-quantised by X86InductorQuantizer (is_qat=True: uint8
asymmetric per-tensor activations, int8 symmetric per-channel weights, as the `int8` PTQ pass uses),
fine-tuned, converted, and the converted graph's quantize/dequantize ops export to ONNX
QuantizeLinear/DequantizeLinear directly. Accuracy is then measured by ONNX Runtime on that file.

A module called at several places (torchvision's BasicBlock calls one ReLU twice) is first given one copy
per call: the quantizer groups graph nodes by the module they came from, and a group with two outputs
stops it ("Input partition has more than one output node", pytorch/ao#4478).
"""
from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from harness.models import export, preprocess
from harness.models.train import split_tensors
from harness.models.zoo import TrainingPlan
from harness.optimize.passes import PassContext
from harness.optimize.torch_passes import module_io

FINE_TUNE = TrainingPlan(epochs=2, learning_rate=2e-4)
# ONNX Runtime runs integer kernels where torch simulates them in float: each layer may round one
# quantisation step differently, so the export check allows a few per cent of the largest logit
EXPORT_TOLERANCE = 0.05


class Qat:
    name = "qat"
    precision = "int8"
    depends_on = module_io.SOURCES

    def __init__(self, plan: TrainingPlan = FINE_TUNE) -> None:
        self.plan = plan

    def params(self) -> dict[str, Any]:
        return {"format": "QDQ", "quantizer": "X86InductorQuantizer(is_qat=True)", "per_channel": True,
                "activation_type": "QUInt8", "weight_type": "QInt8", "fine_tune": self.plan.__dict__}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        # torchao takes seconds to import: load it only when a recipe really runs QAT, not at plugin start-up
        import torchao
        from torchao.quantization.pt2e import allow_exported_model_train_eval
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )

        module = module_io.load_module(source, context, self.name)
        dataset = module_io.training_data(context, self.name)
        inputs, labels = split_tensors(dataset.train)
        batch = torch.export.Dim("batch", min=2, max=1024)  # BatchNorm in training needs 2 images or more
        captured = torch.export.export(one_module_per_call(module).train(), (inputs[:self.plan.batch_size],),
                                       dynamic_shapes=({0: batch},)).module()
        quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config(is_qat=True))
        prepared = allow_exported_model_train_eval(prepare_qat_pt2e(captured, quantizer))
        module_io.fine_tune(prepared, inputs, labels, self.plan)
        prepared.eval()  # the patched eval() switches BatchNorm and observers in place and returns None
        converted = allow_exported_model_train_eval(convert_pt2e(prepared))
        example = preprocess.to_tensor(dataset.evaluation.images[:module_io.EXAMPLE_IMAGES], context.card.input)
        error = export.export_onnx(converted, example, target, tolerance=EXPORT_TOLERANCE)
        return {"tool": f"torchao {torchao.__version__} PT2E: prepare_qat_pt2e, convert_pt2e, torch.onnx (dynamo)",
                "onnx_max_abs_diff": error}


def one_module_per_call(module: nn.Module) -> nn.Module:
    """`module` as a torch.fx graph where each call of a weightless module (an activation) has a module of its
    own; `module` itself where none is called twice. Modules with weights stay shared: copies would train apart."""
    graph = fx.symbolic_trace(module)
    calls = [node for node in graph.graph.nodes if node.op == "call_module"]
    shared = {target for target, count in Counter(node.target for node in calls).items()
              if count > 1 and not list(graph.get_submodule(target).parameters())}
    if not shared:
        return module
    seen: Counter[str] = Counter()
    for node in calls:
        if node.target in shared:
            seen[node.target] += 1
            if seen[node.target] > 1:
                copy_name = f"{node.target}_call{seen[node.target]}"
                graph.add_submodule(copy_name, copy.deepcopy(graph.get_submodule(node.target)))
                node.target = copy_name
                # torch.export keeps the tracer's record of where a node came from: it must name the copy
                node.meta.pop("nn_module_stack", None)
    graph.recompile()
    return graph
