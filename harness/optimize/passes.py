"""Precision passes: an ONNX model in, an ONNX model out, plus a record of what was done.

Each pass uses the tool made for it: ONNX Runtime's float16 converter and its static
quantiser. The toolbox's other passes (fusion, pruning, QAT, ...) join the registry in recipe.py.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import onnx
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)
from onnxruntime.transformers.float16 import convert_float_to_float16

from harness.data.dataset import Dataset, ImageSet
from harness.models import preprocess
from harness.models.card import ModelCard
from harness.models.train import TrainedModel

PER_CHANNEL_MIN_OPSET = 13  # QuantizeLinear's `axis` (per-channel) arrived in opset 13
GRANULARITIES = ("", "per-channel", "per-tensor")  # int8's weight scales; "" means the default, per-channel


@dataclass(frozen=True)
class PassContext:
    card: ModelCard  # how to feed the model (for calibration)
    calibration: ImageSet
    data_fingerprint: str  # identifies the data: part of every step's cache key
    dataset: Dataset | None = None  # train/evaluation splits, for passes that fine-tune or evaluate
    trained: TrainedModel | None = None  # the PyTorch network behind a zoo card; None for a user's ONNX


class Pass(Protocol):
    name: str
    precision: str | None  # the precision a pass ends in, None for a structural pass

    def params(self) -> dict[str, Any]: ...

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        """Write the transformed model to `target`; return what was done, for the manifest."""
        ...


class Fp32:
    """The exported model as it is: the reference every other precision is compared with."""

    name = precision = "fp32"

    def params(self) -> dict[str, Any]:
        return {}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        shutil.copyfile(source, target)
        return {"tool": "none (reference)"}


class Fp16:
    """Weights and activations to float16; the graph keeps float32 inputs and outputs."""

    name = precision = "fp16"

    def params(self) -> dict[str, Any]:
        return {"keep_io_types": True}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        model = onnx.load(str(source))
        _drop_initializers_value_info(model.graph)
        onnx.save(convert_float_to_float16(model, keep_io_types=True), str(target))
        return {"tool": "onnxruntime.transformers.float16.convert_float_to_float16"}


def _drop_initializers_value_info(graph: onnx.GraphProto) -> None:
    """Remove the value_info entries torch.onnx writes for initializers (an initializer states its own type).
    ONNX Runtime's float16 converter retypes such an entry to float16 while it keeps the initializer float32 for
    an input that must stay float (Resize's scales), then casts it once per consumer under one node name: YOLOv8-s,
    whose two upsamplings share their scales, came out a model ONNX Runtime refuses to load."""
    initializers = {initializer.name for initializer in graph.initializer}
    kept = [value for value in graph.value_info if value.name not in initializers]
    del graph.value_info[:]
    graph.value_info.extend(kept)


class Int8:
    """Post-training static quantisation, QDQ format, calibrated on the calibration split.

    Recipe form `int8[:METHOD][/GRANULARITY]`: METHOD is MinMax (default), Entropy or Percentile,
    GRANULARITY per-channel (default) or per-tensor weight scales, e.g. `int8:Entropy/per-tensor`.
    """

    name = precision = "int8"

    def __init__(self, method: str = "MinMax", per_channel: bool = True, calibration_images: int = 200) -> None:
        if method not in CalibrationMethod.__members__:
            raise ValueError(f"calibration method {method!r} is not one of {', '.join(CalibrationMethod.__members__)}")
        self.method, self.per_channel, self.calibration_images = method, per_channel, calibration_images

    @classmethod
    def parse(cls, arg: str | None) -> Int8:
        """The pass for the text after `int8:` (see the class docstring)."""
        method, _, granularity = (arg or "MinMax").partition("/")
        if granularity not in GRANULARITIES:
            raise ValueError(f"weight granularity {granularity!r} is not one of {', '.join(GRANULARITIES[1:])}")
        return cls(method or "MinMax", per_channel=granularity != "per-tensor")

    def params(self) -> dict[str, Any]:
        return {"format": "QDQ", "calibration": self.method, "per_channel": self.per_channel,
                "activation_type": "QUInt8", "weight_type": "QInt8", "calibration_images": self.calibration_images}

    def apply(self, source: Path, target: Path, context: PassContext) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="ncap-int8-") as scratch:
            prepared = Path(scratch) / "prepared.onnx"
            upgraded_from = prepare_for_quantization(source, prepared)
            self.quantize(prepared, target, context)
        return {"tool": "onnxruntime.quantization.quantize_static (after quant_pre_process)",
                "opset_upgraded_from": upgraded_from}

    def quantize(self, prepared: Path, target: Path, context: PassContext, *, nodes_to_exclude: Sequence[str] = (),
                 weight_type: QuantType = QuantType.QInt8, op_types: Sequence[str] | None = None,
                 extra_options: dict[str, Any] | None = None) -> None:
        """quantize_static with this pass's settings; other passes vary the excluded nodes or the weight type."""
        self.quantize_with(prepared, target, _Calibration(context, self.calibration_images),
                           nodes_to_exclude=nodes_to_exclude, weight_type=weight_type, op_types=op_types,
                           extra_options=extra_options)

    def quantize_with(self, prepared: Path, target: Path, reader: CalibrationDataReader, *,
                      nodes_to_exclude: Sequence[str] = (), weight_type: QuantType = QuantType.QInt8,
                      op_types: Sequence[str] | None = None, extra_options: dict[str, Any] | None = None) -> None:
        """quantize_static with this pass's settings on the batches `reader` gives (the latency predictor's
        synthetic blocks are quantised as the zoo's networks are, on their own inputs)."""
        quantize_static(str(prepared), str(target), reader,
                        quant_format=QuantFormat.QDQ, per_channel=self.per_channel,
                        activation_type=QuantType.QUInt8, weight_type=weight_type,
                        calibrate_method=CalibrationMethod[self.method], nodes_to_exclude=list(nodes_to_exclude),
                        op_types_to_quantize=list(op_types) if op_types else None, extra_options=extra_options)


def prepare_for_quantization(source: Path, target: Path) -> int | None:
    """Upgrade to the opset per-channel scales need, then ORT's quant_pre_process; returns the old opset if upgraded."""
    upgraded_from = _upgrade_opset(source, target, PER_CHANNEL_MIN_OPSET)
    quant_pre_process(str(target), str(target), skip_symbolic_shape=True)
    return upgraded_from


class _Calibration(CalibrationDataReader):
    """Feeds the calibration split one image at a time, preprocessed as the card says."""

    def __init__(self, context: PassContext, limit: int) -> None:
        self._batches: Iterator[dict[str, Any]] = (
            {context.card.input.name or _only_input(context.card.onnx):
             preprocess.to_tensor(context.calibration.images[i:i + 1], context.card.input)}
            for i in range(min(limit, len(context.calibration))))

    def get_next(self) -> dict[str, Any] | None:
        return next(self._batches, None)


def _only_input(model: Path) -> str:
    graph = onnx.load(str(model), load_external_data=False).graph
    initialisers = {init.name for init in graph.initializer}
    return next(i.name for i in graph.input if i.name not in initialisers)


def _upgrade_opset(source: Path, target: Path, minimum: int) -> int | None:
    """Copy the model, converting it to `minimum` when its default-domain opset is older."""
    model = onnx.load(str(source))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), minimum)
    if opset >= minimum:
        onnx.save(model, str(target))
        return None
    onnx.save(version_converter.convert_version(model, minimum), str(target))
    return opset
