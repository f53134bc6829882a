"""LiteRT artifacts: the recipe's network as the `.tflite` file a LiteRT platform runs (the i.MX 8 with NXP's VX
delegate), converted from PyTorch with litert-torch (the `litert-convert` extra).

FP32 is the network as converted; FP16 stores convolution and fully-connected weights as float16
(ai-edge-quantizer's float casting: LiteRT's CPU kernels widen them back to float32, a GPU delegate runs them in
half precision); INT8 is full-integer (int8 input, weights, activations and output) through litert-torch's PT2E
quantizer, calibrated on the calibration split. Each conversion is checked against the PyTorch network it came
from, then cached by content and verified by sha256 before use, like the ONNX artifacts (recipe.py).

A bring-your-own ONNX model has no PyTorch network to convert: converting ONNX to LiteRT (onnx2tf and the like)
is not part of the harness, and NOT_FROM_ONNX says what to do.
"""
from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness import cache
from harness.errors import NcapError
from harness.models import preprocess
from harness.optimize import passes
from harness.optimize.passes import Pass, PassContext
from harness.optimize.recipe import Artifact, cached_artifact, verified_build
from harness.optimize.torch_passes import module_io
from harness.optimize.torch_passes.qat import one_module_per_call

MODEL_FILE = "model.tflite"
EXTRA = "pip install -e '.[litert-convert]' (litert-torch)"
NOT_FROM_ONNX = ("{name} is an ONNX model card and LiteRT artifacts are converted from the PyTorch network (zoo "
                 "models only): convert the ONNX file to .tflite yourself (e.g. onnx2tf) and run it on the board "
                 "with its own tools, or measure {name} on a platform whose runtime is ONNX Runtime")
CHECK_IMAGES = 16  # evaluation images each conversion is compared with PyTorch on
# The largest |LiteRT - PyTorch| a conversion may show, relative to the largest PyTorch output. FP32: the same
# maths in another order (2e-7 to 6e-7 on the zoo); FP16: weights rounded to 11 significant bits (4e-4 on dmsnet);
# INT8: LiteRT's integer kernels against the same quantisation simulated in float by PyTorch (the PT2E-converted
# network), where each layer may round one quantisation step differently: measured 0.007 (ResNet18), 0.008
# (DMSNet) and 0.047 (MobileNetV3-Small, 16 hard-swish and squeeze-excite layers deep), so twice the worst.
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "int8": 0.1}
# LiteRT operators whose weights FP16 stores as float16 (ai-edge-quantizer's float casting supports these)
FP16_OPERATORS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@dataclass(frozen=True)
class LiteRTArtifact:
    path: Path  # the .tflite file
    precision: str
    manifest: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"]


def converter_installed() -> str | None:
    """None when litert-torch and the LiteRT runtime are installed here, else the reason with the fix."""
    missing = [name for name in ("litert_torch", "ai_edge_litert") if importlib.util.find_spec(name) is None]
    return f"{' and '.join(missing)} not installed: {EXTRA}" if missing else None


def build_litert_artifact(artifact: Artifact, recipe: list[Pass], context: PassContext) -> LiteRTArtifact:
    """The network behind the ONNX `artifact` (its recipe's steps before the precision step) converted to
    `.tflite` at the recipe's precision; cached by content, verified by sha256, checked against PyTorch."""
    if context.trained is None:
        raise NcapError(NOT_FROM_ONNX.format(name=context.card.name))
    missing = converter_installed()
    if missing:
        raise NcapError(f"a LiteRT artifact is converted with litert-torch, and {missing}")
    precision_step = _supported(recipe[-1], artifact)
    source = _network_source(artifact, context)
    feeding = context.card.model_dump(mode="json", include={"input", "output", "classes"})
    key = cache.content_key(cache.file_sha256(source), precision_step, context.data_fingerprint, feeding,
                            version("litert-torch"), version("ai-edge-litert"), torch.__version__,
                            cache.source_sha256(sys.modules[__name__], *module_io.SOURCES))
    folder = cache.cache_root() / "litert" / key[:32]

    def convert(target: Path) -> dict[str, Any]:
        module = module_io.load_module(source, context, "litert")
        did = convert_to_tflite(module, precision_step, context, target)
        return {"pass": f"litert:{precision_step['precision']}", "params": precision_step, "did": did,
                "input_sha256": cache.file_sha256(source), "onnx_sha256": artifact.sha256,
                "versions": {name: version(name) for name in ("litert-torch", "ai-edge-litert", "torch")}}

    record = verified_build(folder, MODEL_FILE, convert, f"LiteRT conversion of {context.card.name}")
    path = folder / MODEL_FILE
    manifest = {**record, "recipe": artifact.manifest["recipe"], "size_bytes": path.stat().st_size}
    return LiteRTArtifact(path, artifact.precision, manifest)


def convert_to_tflite(module: nn.Module, step: dict[str, Any], context: PassContext, target: Path) -> dict[str, Any]:
    """Write `module` as a batch-1 `.tflite` at `step`'s precision and check it against PyTorch; return what was
    done (tools, calibration, the check)."""
    import litert_torch

    precision = step["precision"]
    check = preprocess.to_tensor(_evaluation_images(context)[:CHECK_IMAGES], context.card.input)
    example = (torch.from_numpy(check[:1]),)
    module = module.eval()
    did: dict[str, Any] = {"tool": f"litert-torch {litert_torch.__version__} (litert_torch.convert)"}
    if precision == "int8":
        reference, quant_config, calibrated = _pt2e_int8(module, example, context, step)
        litert_torch.convert(reference, example, quant_config=quant_config).export(str(target))
        did |= {"quantizer": "litert_torch PT2EQuantizer, get_symmetric_quantization_config(is_per_channel="
                             f"{step['per_channel']}): int8 activations (HistogramObserver), int8 symmetric weights",
                "calibration_images": calibrated, "io": io_types(target), "float_operators": float_operators(target)}
    else:
        reference = module
        litert_torch.convert(module, example).export(str(target))
        if precision == "fp16":
            did["weights"] = _float16_weights(target)
    against = ("the PT2E-quantised PyTorch network (the same int8 scales, simulated in float)" if precision == "int8"
               else "the PyTorch network")
    did["check"] = {**check_against_torch(target, reference, check, TOLERANCE[precision]), "against": against}
    return did


def check_against_torch(model: Path, reference: nn.Module, inputs: np.ndarray, tolerance: float) -> dict[str, Any]:
    """Run `inputs` one at a time through the `.tflite` (LiteRT's runner) and through `reference`; an NcapError when
    the largest difference exceeds `tolerance` times the largest PyTorch output."""
    from harness.runtimes.litert.runner import LiteRTRunner

    with LiteRTRunner(model) as runner:
        got = np.concatenate([runner.infer(inputs[i:i + 1]) for i in range(len(inputs))])
    with torch.no_grad():  # batch 1 as well: a network captured by torch.export takes the batch it was captured at
        expected = np.concatenate([reference(torch.from_numpy(inputs[i:i + 1])).numpy() for i in range(len(inputs))])
    scale = float(np.abs(expected).max()) or 1.0
    relative = float(np.abs(got.astype(np.float64) - expected).max()) / scale
    if not np.isfinite(relative) or relative > tolerance:
        raise NcapError(f"the LiteRT conversion {model.name} differs from PyTorch by {relative:.3g} of the largest "
                        f"output (allowed {tolerance:g}) on {len(inputs)} images: the converter changed the maths; "
                        "report it with the model, or pin another litert-torch")
    return {"images": len(inputs), "max_abs_diff_relative": relative, "tolerance_relative": tolerance}


def float_operators(model: Path) -> dict[str, int]:
    """The operators of a `.tflite` that still compute in float (a float32 output), by type. In an INT8 file each
    is a float island between QUANTIZE/DEQUANTIZE: the quantizer left it unannotated (MobileNetV3's hard-sigmoid),
    and an integer-only NPU hands it back to the CPU."""
    from ai_edge_litert import schema_py_generated as schema

    parsed = _parsed(model)
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    graph, found = parsed.subgraphs[0], Counter()
    for operator in graph.operators:
        if any(graph.tensors[index].type == schema.TensorType.FLOAT32 for index in operator.outputs if index >= 0):
            code = parsed.operatorCodes[operator.opcodeIndex]
            found[names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "custom")] += 1
    return dict(found)


def io_types(model: Path) -> str:
    """The element types of a `.tflite`'s input and output as the file declares them, e.g. `int8 in, int8 out`."""
    from ai_edge_litert import schema_py_generated as schema

    graph = _parsed(model).subgraphs[0]
    names = {code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
    return (f"{'/'.join(names[graph.tensors[index].type] for index in graph.inputs)} in, "
            f"{'/'.join(names[graph.tensors[index].type] for index in graph.outputs)} out")


def _parsed(model: Path) -> Any:
    """The `.tflite` file read through LiteRT's own flatbuffer schema."""
    from ai_edge_litert import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(model.read_bytes())


def _supported(step: Pass, artifact: Artifact) -> dict[str, Any]:
    """The precision step as LiteRT converts it; an NcapError for a recipe LiteRT has no form for here."""
    if type(step) is passes.Int8:  # not its subclasses' searches (mixed), which LiteRT has no form for
        if step.method != "MinMax":
            raise NcapError(f"recipe {','.join(artifact.manifest['recipe'])}: litert-torch's PT2E quantizer "
                            f"calibrates activations with its own histogram observer, not {step.method}; use int8 "
                            "or int8/per-tensor on a LiteRT platform")
        return {"precision": "int8", "per_channel": step.per_channel, "calibration_images": step.calibration_images}
    if isinstance(step, passes.Fp32 | passes.Fp16):
        return {"precision": step.precision}
    raise NcapError(f"recipe step {step.name!r} has no LiteRT conversion here (LiteRT artifacts are fp32, fp16 and "
                    "int8); on a LiteRT platform end the recipe in one of those, e.g. fuse,prune:0.3,int8")


def _network_source(artifact: Artifact, context: PassContext) -> Path:
    """The ONNX file the recipe's precision step started from: the trained export, or a PyTorch pass's output
    (whose pickled network lies beside it)."""
    step_input = artifact.manifest["steps"][-1]["input_sha256"]
    if step_input == artifact.manifest["source_sha256"]:  # the trained export (an fp32 step's copy has its sha256)
        return context.trained.card.onnx
    return cached_artifact(step_input) or context.trained.card.onnx


def _evaluation_images(context: PassContext) -> np.ndarray:
    return (context.dataset.evaluation if context.dataset is not None else context.calibration).images


def _pt2e_int8(module: nn.Module, example: tuple[torch.Tensor], context: PassContext,
               step: dict[str, Any]) -> tuple[nn.Module, Any, int]:
    """The network quantised by litert-torch's PT2E quantizer (calibrated on the calibration split, one image at a
    time as the board sees them), the quantizer's config for the conversion, and how many images calibrated it."""
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=step["per_channel"]))
    # one module per call: the quantizer groups nodes by module, and a ReLU called twice (ResNet) stops it
    captured = torch.export.export(one_module_per_call(module), example).module()
    prepared = prepare_pt2e(captured, quantizer)
    images = context.calibration.images[:step["calibration_images"]]
    with torch.no_grad():
        for image in images:
            prepared(torch.from_numpy(preprocess.to_tensor([image], context.card.input)))
    return convert_pt2e(prepared, fold_quantize=False), QuantConfig(pt2e_quantizer=quantizer), len(images)


def _float16_weights(model: Path) -> dict[str, Any]:
    """Rewrite `model` with its convolution and fully-connected weights in float16 (ai-edge-quantizer)."""
    from ai_edge_quantizer import qtyping, quantizer

    converter = quantizer.Quantizer(str(model))
    for operator in FP16_OPERATORS:
        converter.update_quantization_recipe(
            regex=".*", operation_name=qtyping.TFLOperationName[operator],
            algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
            op_config=qtyping.OpQuantizationConfig(
                weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16,
                                                                     dtype=qtyping.TensorDataType.FLOAT),
                compute_precision=qtyping.ComputePrecision.FLOAT))
    model.write_bytes(converter.quantize().quantized_model)
    return {"tool": f"ai-edge-quantizer {version('ai-edge-quantizer')} float casting",
            "operators": list(FP16_OPERATORS)}
