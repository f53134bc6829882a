"""ONNX Runtime's per-node profile of a model: the events of its kernels and the optimised graph that ran them.

Only onnxruntime and numpy: the board agent runs this on a board that may have neither onnx nor torch; the host
reads the result (harness.project.kernels)."""
from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from harness.errors import NcapError
from harness.runtimes.onnxruntime.runner import session_options

KEPT_ARGS = ("op_name", "input_type_shape", "output_type_shape")  # what a kernel's features need; the rest is bulk
WALL_S, PROFILE_S = 0.05, 0.08  # seconds of timing per block: unprofiled wall time, then the profiled runs
PROFILE_SESSIONS = 2  # a block's profile is taken in two sessions, the faster kept (see `layer_profile`)
PROFILE_WARMUP = 2  # profiled runs left out of the per-layer times
# A time is the mean of the fastest fifth of its runs: the machine's quiet speed. A shared machine has slow spells
# of a fraction of a second to seconds that slow some networks by half and others not at all (2-core AMD EPYC VM,
# windows of 0.2 s interleaved: MobileNetV3 FP16 1.10-2.54 ms while its FP32 held 0.28-0.30 ms), so no drift panel
# can take them out; a median outvotes a spell only where it covers less than half a window's runs. Over 6 rounds
# of 0.3 s of the 18 held-out cells, MobileNetV3 FP16's round medians spread by 119 %, its quiet means by 36 %, and
# the median of the odd rounds lay within 5 % of the even ones' on 83 % of cells by medians, 94 % by quiet means.
QUIET_SHARE = 0.2


def standard_normal(shape: list[int], seed: int = 0) -> np.ndarray:
    """A seeded standard-normal float32 input: what blocks and networks are timed on, on the host and on a board."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def evictor(size_bytes: int, feeds: dict[str, np.ndarray]) -> Callable[[], None]:
    """What runs between two timed runs: reads and writes `size_bytes` of other memory, as a network's other layers
    do between two runs of one of its kernels, so a run finds its weights where a network would leave them (gone
    from the caches where `size_bytes` is larger than they are), then rewrites `feeds` in place, as the layer
    before leaves a kernel's input: just written, in the caches (evicted with the rest, a block's first kernels
    read a cold input no network's kernel reads). Nothing where `size_bytes` is 0."""
    if size_bytes <= 0:
        return lambda: None
    buffer = np.zeros(size_bytes // 4, dtype=np.float32)

    def evict() -> None:
        np.add(buffer, 1.0, out=buffer)
        for array in feeds.values():
            np.multiply(array, 1.0, out=array)  # exact: the values stay what they were

    return evict


def seconds_per_run(model: Path | bytes, feeds: dict[str, np.ndarray], threads: int, budget_s: float = 0.3,
                    evict_bytes: int = 0) -> float:
    """The quiet time of one run (`quiet_mean`), after a warm-up, over about `budget_s` of runs (not counting the
    `evictor`'s time between them)."""
    source = str(model) if isinstance(model, Path) else model
    session = ort.InferenceSession(source, session_options(threads), providers=["CPUExecutionProvider"])
    evict = evictor(evict_bytes, feeds)
    for _ in range(3):
        session.run(None, feeds)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or time.perf_counter() < deadline:
        evict()
        started = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - started)
    return quiet_mean(times)


def quiet_runs(times: Sequence[float]) -> np.ndarray:
    """The indices of the fastest QUIET_SHARE of `times` (one at least): the runs made at the machine's quiet
    speed."""
    return np.argsort(np.asarray(times, dtype=float), kind="stable")[:max(1, round(len(times) * QUIET_SHARE))]


def quiet_mean(times: Sequence[float]) -> float:
    """The mean of the fastest QUIET_SHARE of `times`: what the predictor's samples and its held-out truth time."""
    values = np.asarray(times, dtype=float)
    return float(values[quiet_runs(values)].mean())


def time_and_profile(model: Path | bytes, feeds: dict[str, np.ndarray], threads: int,
                     evict_bytes: int = 0) -> tuple[float, list[dict[str, Any]], bytes]:
    """A latency predictor's sample of one model: its unprofiled wall time (s), then its per-layer profile over
    enough runs for about PROFILE_S (3 to 25 in each of PROFILE_SESSIONS sessions), as `layer_profile` gives it;
    its first PROFILE_WARMUP runs are the warm-up. `evict_bytes` of other memory are touched between runs (see
    `evictor`). The same on the host and, through the device profiler, on a board."""
    wall_s = seconds_per_run(model, feeds, threads, WALL_S, evict_bytes)
    runs = int(np.clip(PROFILE_S / PROFILE_SESSIONS / max(wall_s, 1e-6), 3, 25))
    return (wall_s, *layer_profile(model, feeds, threads, runs, PROFILE_WARMUP, evict_bytes=evict_bytes,
                                   sessions=PROFILE_SESSIONS))


def layer_profile(model: Path | bytes, feeds: dict[str, np.ndarray] | np.ndarray, threads: int, runs: int,
                  warmup: int, disabled_optimizers: tuple[str, ...] = (), evict_bytes: int = 0,
                  sessions: int = 1) -> tuple[list[dict[str, Any]], bytes]:
    """Run the model `warmup` + `runs` times under the profiler on `feeds` (an array goes to its first input):
    (the kernels' events in order, every run's, the warm-up's first; the optimised graph as ONNX bytes).
    `disabled_optimizers` leaves out graph transformers another machine's runtime does not have; `evict_bytes`
    of other memory are touched between runs (see `evictor`). With `sessions` > 1 the profile is taken in that
    many sessions and the one whose median run is shortest is kept: a profiled session can run every kernel
    slower throughout, which unprofiled runs do not show (measured on the AMD EPYC host: MobileNetV3 FP32's median
    profiled run took 537-664 us in 15 sessions of 20 and 908-1116 us in the other 5, every kernel about twice
    as long; unprofiled, its median run took 278-354 us)."""
    profiles = [_profiled_session(model, feeds, threads, runs, warmup, disabled_optimizers, evict_bytes)
                for _ in range(sessions)]
    return min(profiles, key=lambda profile: _median_run_us(profile[0], warmup))


def _profiled_session(model: Path | bytes, feeds: dict[str, np.ndarray] | np.ndarray, threads: int, runs: int,
                      warmup: int, disabled_optimizers: tuple[str, ...],
                      evict_bytes: int) -> tuple[list[dict[str, Any]], bytes]:
    with tempfile.TemporaryDirectory(prefix="ncap-profile-") as scratch:
        options = session_options(threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(scratch) / "profile")
        options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
        try:
            session = ort.InferenceSession(str(model) if isinstance(model, Path) else model, options,
                                           providers=["CPUExecutionProvider"],
                                           disabled_optimizers=list(disabled_optimizers))
        except Exception as exc:  # ORT raises several unrelated types for an unreadable model
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise NcapError(f"ONNX Runtime cannot load {getattr(model, 'name', 'the model')}: {detail}") from exc
        if isinstance(feeds, np.ndarray):
            feeds = {session.get_inputs()[0].name: feeds}
        evict = evictor(evict_bytes, feeds)
        for _ in range(warmup + runs):
            evict()
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
        graph = (Path(scratch) / "optimized.onnx").read_bytes()
    kernels = [{"name": e["name"], "dur": e["dur"], "args": {k: e["args"][k] for k in KEPT_ARGS if k in e["args"]}}
               for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    return kernels, graph


def _median_run_us(events: list[dict[str, Any]], warmup: int) -> float:
    """The median over the runs after the warm-up of the sum of a run's kernel times (its first kernel starts a
    run); infinite where there is no such run."""
    totals: list[float] = []
    for event in events:
        if event["name"] == events[0]["name"]:
            totals.append(0.0)
        totals[-1] += float(event["dur"])
    return float(np.median(totals[warmup:])) if totals[warmup:] else float("inf")
