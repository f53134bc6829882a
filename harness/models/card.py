"""Model cards: how to feed an ONNX model and read its output (bring-your-own or zoo-made)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from harness.errors import NcapError
from harness.files import read_text
from harness.platform import describe_validation_error

# finite numbers only, and no booleans taken for numbers (YAML's `false` is not 0)
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    name: str | None = None  # may be omitted when the model has one input
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    size: tuple[PositiveInt, PositiveInt]  # height, width
    channels: Literal[1, 3] = 3
    scale: Positive = 1 / 255
    mean: tuple[Finite, ...] = (0.0,)
    std: tuple[Positive, ...] = (1.0,)  # a divisor: zero, negative, NaN or infinite would corrupt every input

    @model_validator(mode="after")
    def _per_channel(self) -> InputSpec:
        for field in ("mean", "std"):
            if len(getattr(self, field)) not in (1, self.channels):
                raise ValueError(f"input.{field} needs 1 or {self.channels} values (one per channel)")
        return self


class OutputSpec(_Strict):
    name: str | None = None  # may be omitted when the model has one output
    kind: Literal["logits", "probabilities", "detections"] = "logits"  # detections: no top-1 to measure


class ModelCard(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # it becomes part of test ids and file names
    onnx: Path
    input: InputSpec
    output: OutputSpec = OutputSpec()
    classes: tuple[str, ...] = Field(min_length=2)

    @field_validator("onnx")
    @classmethod
    def _a_file_name(cls, onnx: Path) -> Path:
        if "\x00" in str(onnx):  # the OS refuses it with a ValueError, not a missing file
            raise ValueError("a path with a NUL byte names no file")
        return onnx

    @model_validator(mode="after")
    def _distinct_classes(self) -> ModelCard:
        repeated = sorted({name for name in self.classes if self.classes.count(name) > 1})
        if repeated:
            raise ValueError(f"classes must be distinct; {', '.join(repeated)} appear more than once")
        return self


def load_card(path: Path) -> ModelCard:
    """A card from YAML; its `onnx` path is taken relative to the card's folder."""
    try:
        raw = yaml.safe_load(read_text(path, "model card", "--model"))
        card = ModelCard.model_validate(raw)
    except yaml.YAMLError as exc:
        raise NcapError(f"model card {path}: not valid YAML ({exc.__class__.__name__}); fix the syntax") from exc
    except ValidationError as exc:
        raise NcapError(f"model card {path}: {describe_validation_error(exc)}") from exc
    onnx_file = (path.parent / card.onnx).resolve()
    if not onnx_file.is_file():
        raise NcapError(f"model card {path}: its onnx file {onnx_file} does not exist; fix the `onnx:` path "
                        "(relative to the card's folder)")
    return card.model_copy(update={"onnx": onnx_file})
