"""Platform profiles: chip facts as validated data, one YAML per platform in `platforms/`."""
from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from harness.errors import NcapError
from harness.files import read_text

Precision = Literal["fp32", "fp16", "int8", "int4"]
# a chip figure must be a finite positive number: an infinite peak would project 0 ms and pass anything
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourcedFigure(_Strict):
    """A chip fact with where it comes from, so a report can cite it."""

    value: Positive
    source: str = Field(min_length=1)


class QualcommSoc(_Strict):
    """The SoC id Qualcomm's compiler (QNN HTP) takes, and what a context compiled for it must say it targets:
    the compiler accepts an unknown id with only a warning and compiles for a default SoC instead."""

    value: PositiveInt  # QNN's numeric soc_model
    soc_type: str = Field(min_length=1)  # as written in the compiled context (`soc_type=SA8255`)
    htp_arch: PositiveInt  # the HTP (Hexagon NPU) generation, `arch=73` in the context
    source: str = Field(min_length=1)


class Runtime(_Strict):
    """How the artifact runs on the chip: the runner (`onnxruntime`, `tensorrt`, `litert`, ...) and
    the execution provider or delegate that reaches the accelerator."""

    name: str
    execution_provider: str | None = None
    delegate: str | None = None


class Power(_Strict):
    per_core_active_w: SourcedFigure | None = None  # for the host's CPU-time estimate
    envelope_w: SourcedFigure | None = None  # the chip's rated power: the upper bound a projection can give


class ArticleBaseline(_Strict):
    """A before/after latency documented by the source article. With `zoo_model`, `input_size` and
    `after_precision` it also calibrates the chip's projection: the zoo network of that architecture,
    exported at that input and optimised to that precision, must take `after_ms` there."""

    model: str
    before_ms: Positive
    after_ms: Positive
    source: str
    zoo_model: str | None = None  # the zoo network of the article's architecture
    input_size: tuple[PositiveInt, PositiveInt] | None = None  # height, width the figure is taken at
    after_precision: Precision | None = None
    assumption: str | None = None  # what the article leaves unsaid and the calibration assumes


class Platform(_Strict):
    name: str
    description: str
    kind: Literal["host", "target"]
    precisions: list[Precision] = Field(min_length=1)
    default_precisions: list[Precision] | None = None  # what a run covers without --precision (else all)
    runtime: Runtime
    toolchain: str | None = None
    soc_model: QualcommSoc | None = None  # a Qualcomm target: compiled for and checked on the host (.[qnn])
    peak_tops: dict[Precision, SourcedFigure] = {}  # tera-operations per second (a MAC is two)
    memory_bandwidth_gbs: SourcedFigure | None = None  # DRAM bandwidth, GB/s
    memory_gb: SourcedFigure | None = None  # DRAM capacity
    power: Power | None = None
    baselines: list[ArticleBaseline] = []
    device: str | None = Field(None, pattern=r"^(ssh|labgrid)://")  # a board or lab pool; --device overrides it

    @model_validator(mode="after")
    def _defaults_supported(self) -> Platform:
        unsupported = [p for p in self.default_precisions or [] if p not in self.precisions]
        if unsupported:
            raise ValueError(f"default_precisions {', '.join(unsupported)} are not among its precisions")
        return self


def platforms_dir() -> Path:
    return Path(str(files("harness.platforms")))


def known_platforms() -> list[str]:
    return sorted(p.stem for p in platforms_dir().glob("*.yaml"))


@cache
def load_platform(name: str) -> Platform:
    """The profile `platforms/<name>.yaml`; an unknown name or a malformed file is an NcapError."""
    path = platforms_dir() / f"{name}.yaml"
    if not path.is_file():
        raise NcapError(f"unknown platform {name!r}; known platforms: {', '.join(known_platforms())}")
    return parse_platform(path)


def parse_platform(path: Path) -> Platform:
    try:
        return Platform.model_validate(yaml.safe_load(read_text(path, "platform profile", "--platform")))
    except yaml.YAMLError as exc:
        raise NcapError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the syntax") from exc
    except ValidationError as exc:
        raise NcapError(f"{path}: {describe_validation_error(exc)}") from exc


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error as `field.path: message`, fit for one line."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"field {where}: {first['msg']}{more}"
