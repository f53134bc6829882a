"""Qualcomm's compiler on the host (the `.[qnn]` extra, onnxruntime-qnn): a QDQ ONNX model compiled for one SoC into
a context binary (an EPContext ONNX file + `*_qnn.bin`, what the board loads without recompiling), checked for that
SoC, cached by content, with which nodes the compiler took. runner.py runs the context (on the host: the HTP
emulator on this machine's CPU).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from harness import cache
from harness.errors import NcapError
from harness.platform import QualcommSoc
from harness.runtimes.qnn.runner import EP_NAME, qnn_session, qnn_version

CONTEXT_ONNX = "context.onnx"  # QNN writes the binary beside it as context_qnn.bin
MISSING = ("Qualcomm's compiler is not installed here: pip install -e '.[qnn]' (onnxruntime-qnn; its QNN libraries "
           "are under Qualcomm's AI Stack License, see docs/qualcomm-npu.md)")
# what a compiled HTP context says it was built for, in its serialised graph configuration
SOC_METADATA = re.compile(rb"soc_type=([A-Za-z0-9_]+);arch=(\d+)")


@dataclass(frozen=True)
class Placement:
    """Which nodes the compiler put on the NPU and which it left to the CPU (`name (op)`). The graph's own float
    input quantisation and output dequantisation stay on the CPU by design: they are listed apart, not a fallback."""

    npu: tuple[str, ...]
    fallback: tuple[str, ...]
    io_conversions: tuple[str, ...]


@dataclass(frozen=True)
class CompiledContext:
    folder: Path
    manifest: dict[str, Any]  # files with sha256, SoC, placement, compile seconds, versions

    @property
    def onnx(self) -> Path:
        return self.folder / CONTEXT_ONNX

    @property
    def binary(self) -> Path:
        return self.folder / self.manifest["binary"]

    @property
    def placement(self) -> Placement:
        return Placement(**{key: tuple(value) for key, value in self.manifest["placement"].items()})


def compiled_context(model: Path, model_sha256: str, soc: QualcommSoc) -> CompiledContext:
    """The model compiled for `soc`, from the cache when a verified copy exists (keyed by the model's content, the
    SoC, the compiler's version and this module), else compiled now, checked and cached."""
    key = cache.content_key(model_sha256, soc.model_dump(), qnn_version(), ort.__version__,
                            cache.source_sha256(sys.modules[__name__]))
    folder = cache.cache_root() / "qnn-contexts" / key[:32]
    manifest = _verified(folder)
    if manifest is None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".ctx-{os.getpid()}-", dir=folder.parent))
        try:
            _compile(model, soc, staging)
            staging.rename(folder)
        except OSError:  # ENOTEMPTY, not FileExistsError, when renaming onto a folder another worker filled first
            if not folder.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        manifest = _verified(folder)
    if manifest is None:
        raise NcapError(f"the compiled context in {folder} does not match its own manifest after a rebuild; "
                        "remove the folder (or $NCAP_CACHE) and run again")
    return CompiledContext(folder, manifest)


def check_soc(binary: Path, soc: QualcommSoc) -> None:
    """The context must say it targets the profile's SoC: QNN compiles an unknown id for a default SoC, warning only."""
    found = {(name.decode(), int(arch)) for name, arch in SOC_METADATA.findall(binary.read_bytes())}
    if found != {(soc.soc_type, soc.htp_arch)}:
        said = ", ".join(f"{name} (HTP v{arch})" for name, arch in sorted(found)) or "no SoC at all"
        raise NcapError(f"{binary.name} was compiled for {said}, not {soc.soc_type} (HTP v{soc.htp_arch}) as "
                        f"soc_model {soc.value} asks: QNN does not know that id or the profile's soc_type/htp_arch "
                        "is wrong; fix soc_model in the platform profile")


def _compile(model: Path, soc: QualcommSoc, folder: Path) -> None:
    started = time.perf_counter()
    config = {"session.record_ep_graph_assignment_info": "1", "ep.context_enable": "1",
              "ep.context_file_path": str(folder / CONTEXT_ONNX)}
    session = qnn_session(model, soc.value, config, _symbolic_dims(model))
    compile_s = time.perf_counter() - started
    placement = _placement(session, onnx.load(str(model), load_external_data=False).graph)
    binaries = sorted(folder.glob("*_qnn.bin"))
    if not (folder / CONTEXT_ONNX).is_file() or len(binaries) != 1:
        raise NcapError(f"QNN compiled no context binary of {model.name} for soc_model {soc.value}: the compiler "
                        "rejected that SoC id or took no node of the graph; check soc_model in the platform profile")
    check_soc(binaries[0], soc)
    files = {path.name: cache.file_sha256(path) for path in (folder / CONTEXT_ONNX, binaries[0])}
    (folder / "context.json").write_text(json.dumps({
        "files": files, "binary": binaries[0].name, "soc": soc.model_dump(), "compile_s": compile_s,
        "placement": {key: list(value) for key, value in placement.__dict__.items()},
        "versions": {"onnxruntime_qnn": qnn_version(), "onnxruntime": ort.__version__}}, indent=1))


def _verified(folder: Path) -> dict[str, Any] | None:
    """The manifest when every file still has its sha256; a damaged folder is removed so it is rebuilt."""
    try:
        manifest = json.loads((folder / "context.json").read_text())
        if all(cache.file_sha256(folder / name) == sha for name, sha in manifest["files"].items()):
            return manifest
    except FileNotFoundError:
        if not folder.exists():
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _placement(session: ort.InferenceSession, graph: onnx.GraphProto) -> Placement:
    inputs, outputs = {i.name for i in graph.input}, {o.name for o in graph.output}
    nodes = {node.name: node for node in graph.node}

    def io_conversion(name: str, op: str) -> bool:
        node = nodes.get(name)
        return node is not None and ((op == "QuantizeLinear" and node.input[0] in inputs)
                                     or (op == "DequantizeLinear" and node.output[0] in outputs))
    npu, fallback, io = [], [], []
    for subgraph in session.get_provider_graph_assignment_info():
        for node in subgraph.get_nodes():
            named = f"{node.name} ({node.op_type})"
            if subgraph.ep_name == EP_NAME:
                npu.append(named)
            else:
                (io if io_conversion(node.name, node.op_type) else fallback).append(named)
    return Placement(tuple(npu), tuple(fallback), tuple(io))


def _symbolic_dims(model: Path) -> set[str]:
    graph = onnx.load(str(model), load_external_data=False).graph
    return {dim.dim_param for value in graph.input for dim in value.type.tensor_type.shape.dim if dim.dim_param}
