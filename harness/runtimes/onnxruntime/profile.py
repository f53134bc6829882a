"""ONNX Runtime's per-node profile of a model: the events of its kernels and the optimised graph that ran them.

Only onnxruntime and numpy: the board agent runs this on a board that may have neither onnx nor torch; the host
reads the result (harness.project.kernels)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from harness.errors import NcapError
from harness.runtimes.onnxruntime.runner import session_options

KEPT_ARGS = ("op_name", "input_type_shape", "output_type_shape")  # what a kernel's features need; the rest is bulk


def layer_profile(model: Path | bytes, feeds: dict[str, np.ndarray] | np.ndarray, threads: int, runs: int,
                  warmup: int) -> tuple[list[dict[str, Any]], bytes]:
    """Run the model `warmup` + `runs` times under the profiler on `feeds` (an array goes to its first input):
    (the kernels' events in order, every run's, the warm-up's first; the optimised graph as ONNX bytes)."""
    with tempfile.TemporaryDirectory(prefix="ncap-profile-") as scratch:
        options = session_options(threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(scratch) / "profile")
        options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
        try:
            session = ort.InferenceSession(str(model) if isinstance(model, Path) else model, options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises several unrelated types for an unreadable model
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise NcapError(f"ONNX Runtime cannot load {getattr(model, 'name', 'the model')}: {detail}") from exc
        if isinstance(feeds, np.ndarray):
            feeds = {session.get_inputs()[0].name: feeds}
        for _ in range(warmup + runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
        graph = (Path(scratch) / "optimized.onnx").read_bytes()
    kernels = [{"name": e["name"], "dur": e["dur"], "args": {k: e["args"][k] for k in KEPT_ARGS if k in e["args"]}}
               for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    return kernels, graph
