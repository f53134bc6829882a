"""Loading for the TensorRT runner, apart from running: an engine is built from the ONNX file once per
(file content, precision, workspace, TensorRT version, GPU) and kept in the cache, since a build takes seconds
to minutes and a serialized engine runs only on the GPU and TensorRT version that built it."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import cache
from harness.errors import NcapError


def cached_engine(model: Path, settings: dict[str, Any], build: Callable[[], bytes]) -> bytes:
    """The serialized engine for `model` built with `settings`: from the engine cache, else built now and kept."""
    key = cache.content_key(cache.file_sha256(model), settings)
    path = cache.cache_root() / "engines" / f"{key[:32]}.plan"
    if path.is_file():
        return path.read_bytes()
    serialized = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=".engine-", dir=path.parent)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(serialized)
    os.replace(staging, path)  # whole or not at all: a reader never sees half an engine
    return serialized


def build_engine(trt: Any, model: Path, precision: str, workspace_bytes: int, max_batch: int) -> bytes:
    """Parse the ONNX file and build a serialized engine; a dynamic batch axis is profiled from 1 to `max_batch`."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch, the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise NcapError(f"TensorRT cannot parse {model.name}: {errors[:300]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        smallest = tuple(1 if d < 0 else d for d in shape)
        largest = tuple(max_batch if d < 0 else d for d in shape)
        profile.set_shape(tensor.name, smallest, smallest, largest)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise NcapError(f"TensorRT could not build an {precision} engine for {model.name}; see the TensorRT log above")
    return bytes(serialized)
