"""The limits a compliance run asserts, each with where it comes from; a YAML file overrides them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import NcapError
from harness.files import read_text
from harness.platform import Precision, describe_validation_error

ARTICLE = "source article (DMS边缘部署优化, DMS edge deployment optimisation), Euro NCAP要求 (requirements) table"
ARTICLE_PRECISION = "source article, 量化类型 (quantisation types) table, 精度损失 (accuracy loss) column"
NPU_PLACEMENT = ("dms-ncap issue #15: the network runs entirely on the target's NPU; a node the compiler leaves to "
                 "the CPU runs outside the accelerator the latency budget and its projection assume")


class Limit(BaseModel):
    """One requirement: the limit and the document it comes from."""

    model_config = ConfigDict(frozen=True)
    value: float
    source: str
    strict: bool = False  # True when the figure must stay strictly below the value ("< 1 %")

    def admits(self, figure: float) -> bool:
        return figure < self.value if self.strict else figure <= self.value

    def wording(self) -> str:
        return f"{'<' if self.strict else '<='} {self.value:g}"


class Requirements(BaseModel):
    model_config = ConfigDict(frozen=True)
    latency_ms: Limit = Limit(value=50, source=ARTICLE + ": 检测延迟 (detection latency) ≤50ms")
    power_w: Limit = Limit(value=5, source=ARTICLE + ": 功耗 (power) ≤5W")
    memory_mb: Limit = Limit(value=1024, source=ARTICLE + ": 内存 (memory) ≤1GB")
    accuracy_drop_pt: dict[Precision, Limit] = {
        "fp16": Limit(value=1, source=ARTICLE_PRECISION + ": FP16 <1%", strict=True),
        "int8": Limit(value=3, source=ARTICLE_PRECISION + ": INT8 1-3%"),
        "int4": Limit(value=10, source=ARTICLE_PRECISION + ": INT4 5-10%"),
    }
    # nodes the NPU compiler leaves to the CPU (the graph's own float input/output conversions aside)
    npu_fallback_nodes: Limit = Limit(value=0, source=NPU_PLACEMENT)


# finite numbers only: an infinite or NaN limit would pass everything or nothing; a drop bound below zero would
# demand that quantisation improve accuracy
PositiveLimit = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
DropLimit = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]


class _Overrides(BaseModel):
    """The user's file: any key may be left out; values are plain numbers."""

    model_config = ConfigDict(extra="forbid")
    latency_ms: PositiveLimit | None = None
    power_w: PositiveLimit | None = None
    memory_mb: PositiveLimit | None = None
    npu_fallback_nodes: Annotated[int, Field(ge=0, strict=True)] | None = None
    accuracy_drop_pt: dict[Precision, DropLimit] = {}


def load_requirements(path: Path | None) -> Requirements:
    """The article's defaults, with the file's values (if any) put over them and cited as the file."""
    defaults = Requirements()
    if path is None:
        return defaults
    try:
        text = read_text(path, "requirements file", "--ncap-requirements")
        overrides = _Overrides.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as exc:
        raise NcapError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the syntax") from exc
    except ValidationError as exc:
        raise NcapError(f"{path}: {describe_validation_error(exc)}") from exc
    cited = f"requirements file {path}"
    scalar = {
        key: Limit(value=value, source=cited)
        for key in ("latency_ms", "power_w", "memory_mb", "npu_fallback_nodes")
        if (value := getattr(overrides, key)) is not None
    }
    drops = dict(defaults.accuracy_drop_pt) | {
        precision: Limit(value=value, source=cited) for precision, value in overrides.accuracy_drop_pt.items()
    }
    return defaults.model_copy(update={**scalar, "accuracy_drop_pt": drops})
