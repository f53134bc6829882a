"""Runners share one life cycle: PyTorch, LiteRT and TensorRT (the latter only where installed, with a GPU)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_classifier
from harness.errors import NcapError
from harness.measure.latency import LatencyPlan, time_inferences
from harness.runtimes.pytorch.runner import PyTorchRunner
from harness.runtimes.tensorrt.runner import TensorRTRunner

PLAN = LatencyPlan(warmup_runs=2, min_runs=20, min_seconds=0.01)


def tiny_tflite(path: Path, weights: np.ndarray) -> Path:
    """One FULLY_CONNECTED layer written with LiteRT's own flatbuffer schema: no converter needed offline."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    outputs, inputs = weights.shape
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    data = schema.BufferT()
    data.data = list(weights.astype(np.float32).tobytes())

    def tensor(name: str, shape: list[int], buffer: int) -> schema.TensorT:
        made = schema.TensorT()
        made.name, made.shape, made.type, made.buffer = name, shape, schema.TensorType.FLOAT32, buffer
        return made
    layer = schema.OperatorT()
    layer.opcodeIndex, layer.inputs, layer.outputs = 0, [0, 1, -1], [2]  # -1: no bias
    layer.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    layer.builtinOptions = schema.FullyConnectedOptionsT()
    graph = schema.SubGraphT()
    graph.tensors = [tensor("input", [1, inputs], 0), tensor("w", [outputs, inputs], 1),
                     tensor("logits", [1, outputs], 0)]
    graph.inputs, graph.outputs, graph.operators = [0], [2], [layer]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.buffers, model.subgraphs = 3, [code], [schema.BufferT(), data], [graph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


def test_pytorch_runner_life_cycle_and_timing():
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    batch = np.ones((1, 3, 2, 2), np.float32)
    with PyTorchRunner(module) as runner:
        result = runner.infer(batch)
        run = time_inferences(runner, batch, PLAN)
    expected = module(torch.from_numpy(batch)).detach().numpy()
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    assert runner.last_inference_seconds > 0 and len(run.samples_ms) >= 20
    assert runner.max_batch is None and runner.settings["device"] == "cpu"


def test_litert_runner_runs_a_bring_your_own_tflite(tmp_path):
    pytest.importorskip("ai_edge_litert", reason="LiteRT is in the test extra: pip install -e '.[test]'")
    from harness.runtimes.litert.runner import LiteRTRunner

    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    batch = np.ones((1, 4), np.float32)
    with LiteRTRunner(tiny_tflite(tmp_path / "tiny.tflite", weights)) as runner:
        np.testing.assert_allclose(runner.infer(batch), batch @ weights.T)
        time_inferences(runner, batch, PLAN)
        assert runner.max_batch == 1 and runner.settings["runtime"].startswith("ai-edge-litert")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(NcapError, match="LiteRT cannot load"):
        LiteRTRunner(broken).__enter__()


def test_a_litert_delegate_missing_here_is_named_with_the_fix(tmp_path):
    pytest.importorskip("ai_edge_litert", reason="LiteRT is in the test extra: pip install -e '.[test]'")
    from harness.runtimes.litert.runner import LiteRTRunner, delegate_library

    assert delegate_library("vx_delegate") == "libvx_delegate.so"  # the name a profile gives, as the loader finds it
    assert delegate_library("/usr/lib/libvx_delegate.so") == "/usr/lib/libvx_delegate.so"
    model = tiny_tflite(tmp_path / "tiny.tflite", np.ones((3, 4), np.float32))
    with pytest.raises(NcapError, match="delegate libvx_delegate.so cannot be loaded on this machine .* install it"):
        LiteRTRunner(model, delegate="vx_delegate").__enter__()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_absent_is_a_clear_error(tmp_path):
    with pytest.raises(NcapError, match="TensorRT is not installed"):
        TensorRTRunner(tiny_classifier(tmp_path / "tiny.onnx")).__enter__()


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_runs_an_onnx_artifact(tmp_path, precision):
    if importlib.util.find_spec("tensorrt") is None or not torch.cuda.is_available():
        pytest.skip("TensorRT is not installed or there is no NVIDIA GPU here (needs both)")
    model = tiny_classifier(tmp_path / "tiny.onnx")
    batch = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    from harness.runtimes.onnxruntime.runner import OnnxRuntimeRunner

    with OnnxRuntimeRunner(model) as reference, TensorRTRunner(model, precision=precision) as runner:
        np.testing.assert_allclose(runner.infer(batch), reference.infer(batch), rtol=0.05, atol=0.05)
        assert runner.last_inference_seconds > 0


def test_an_engine_is_built_once_per_model_content_and_settings(tmp_path):
    from harness.runtimes.tensorrt.loader import cached_engine

    model = tiny_classifier(tmp_path / "tiny.onnx")
    builds: list[str] = []

    def build(label: str):
        return lambda: builds.append(label) or f"engine {label}".encode()
    fp16 = {"precision": "fp16", "tensorrt": "10.x", "gpu": "a GPU"}
    assert cached_engine(model, fp16, build("first")) == b"engine first"
    assert cached_engine(model, fp16, build("again")) == b"engine first"  # from the cache: not built again
    assert cached_engine(model, {**fp16, "gpu": "another GPU"}, build("other gpu")) == b"engine other gpu"
    tiny_classifier(model, seed=1)  # new weights, same path: a new engine
    assert cached_engine(model, fp16, build("new weights")) == b"engine new weights"
    assert builds == ["first", "other gpu", "new weights"]
