"""A kernel-level latency predictor for one platform: one regressor per kernel type, a network as the sum of its
kernels (each brought to the wall clock, see `wall_timed`) plus the runtime's measured per-call overhead
(after nn-Meter, MobiSys'21).

The regressor is scikit-learn's RandomForestRegressor on the log of each kernel's features (and of its MACs per
output, `_x`), predicting the log of its time per unit of work (see `_y`): nn-Meter's choice for the same problem.
It needs no feature scaling, fits thousands of samples quickly, and follows the steps in a CPU kernel's time (a
change of GEMM blocking at some channel count) that a smooth model averages away. Its fault is that it cannot
extrapolate: the profiling plan samples the whole range of configurations (harness.project.blocks), and the target
levels off for kernels larger than any sampled.

The predictor file is JSON: the timed samples and the record of their fit, never a pickle (loading a pickle a
user was given runs its code). The forests are refitted on load, with a fixed seed.
"""
from __future__ import annotations

import fcntl
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import lsq_linear

from harness import cache
from harness.errors import NcapError
from harness.project.blocks import LARGE_WEIGHT_BYTES, MAX_EVICT_MB, Config, evict_bytes
from harness.project.kernels import FEATURES, Kernel

# 5: an INT8 max pool's MACs count its window, as other pools' do; 6: fitted without the weightless kernels of evicting
# blocks, on a working set capped at WORKING_SET_CAP; 7: each block profiled in the faster of two sessions
# (runtimes.onnxruntime.profile.layer_profile); 8: each type's profiler cost bounded by its kernels' times
# (`overheads`); 9: samples brought to the plan's speed by a drift panel, by kernel size (profiling.at_plan_speed);
# 10: a convolution's input_elements count its data input alone, not a fused Add's (kernels._features); 11: wall
# and kernel times are the runs' quiet means, not medians and trimmed means (runtimes.onnxruntime.profile.quiet_mean);
# 12: of an evicting block, only kernels of LARGE_WEIGHT_BYTES or more of weights are fitted (`timed_kernels`);
# 13: each split of a tree weighs a third of the features (FOREST); 14: a network's working set is its weights and
# twice its largest output (kernels._network_working_set), and a block's small kernels that write its outputs are not
# fitted (`timed_kernels`); 15: a block's copies of a kernel are one sample at their median time, not their mean
# (`timed_kernels`); 16: the regressors also see the MACs per output element (`_x`). A held-out error measured on an
# earlier format is not this fit's
FORMAT = "dms-ncap kernel predictor 16"
MIN_SAMPLES = 5  # a kernel type with fewer is predicted by the pooled regressor over all types
# A third of the features at each split (Breiman's rule for regression, R randomForest's default; scikit-learn's is
# all of them): trees that split on all of them lean on the same few nearest samples, which a 25-minute plan has a
# handful of in a region. Chosen on three profiles' held-out cells (Intel Xeon host, 2026-12-04; mean absolute error
# 8.1, 9.7, 10.1 % -> 6.0, 9.1, 7.7 %, offline), then a fourth profile fitted with it: 6.4 % (refitted with all, 9.3 %)
FOREST = {"n_estimators": 100, "max_features": 1 / 3, "random_state": 0, "n_jobs": 1}
TREE_SAMPLES = 20_000  # each tree's bootstrap sample at most: fitting time stays bounded as board runs add samples
MIN_US = 0.1  # the profile counts whole microseconds: a kernel timed at 0 took less than 1
COST_QUANTILE = 0.1  # a type's profiler cost is at most the time of this quantile of its profiled kernels
CV_TREES = 30  # the adaptive plan's cross-validation only ranks regions: a smaller forest is enough
# A network's working set is summed over its kernels' weights and outputs, though ONNX Runtime reuses activation
# memory (YOLOv8-s sums to 444 MB). Past the plan's largest eviction, twice a large last-level cache, a kernel finds
# none of its data cached whatever the sum: uncapped, blocks of many large copies taught YOLOv8-s's activations
# twice their time (measured)
WORKING_SET_CAP = MAX_EVICT_MB << 20


@dataclass(frozen=True)
class Sample:
    """One timed block: its configuration, its unprofiled wall time, and its kernels with their profiled times."""

    block: Config
    wall_ms: float | None
    kernels: list[Kernel]


@dataclass
class PredictorRecord:
    platform: str
    machine: str  # the CPU or board the samples were timed on
    runtime: str
    threads: int
    fitted: str  # ISO 8601 date and time of the fit
    profiling_seconds: float
    # the plan's drift panel: {"blocks": configs, "kernels": their kernel counts, "readings_s": seconds into the
    # plan, "readings_ms": each reading's wall times of the blocks} (profiling.at_plan_speed)
    panel: dict[str, Any]
    held_out: dict[str, Any] | None = None  # the measured error on networks not used in fitting
    updates: list[dict[str, Any]] = field(default_factory=list)  # per-layer samples added by board runs since


@dataclass(frozen=True)
class Prediction:
    ms: float
    kernels: int
    unknown_kinds: list[str]  # kernel types the predictor has too few samples of (the pooled regressor took them)


class Predictor:
    def __init__(self, record: PredictorRecord, samples: list[Sample]) -> None:
        if not samples:
            raise NcapError("a predictor needs timed samples; the profiling plan produced none")
        self.record, self.samples = record, samples
        # a network runs back to back: a warm call (overheads.call_us); the per-kernel term is in each kernel's time
        self.overheads = overheads(samples)
        self.by_kind = timed_by_kind(samples)
        self._forests = {kind: _forest(kernels) for kind, kernels in self.by_kind.items()
                         if len(kernels) >= MIN_SAMPLES}
        self._pooled = _forest([k for kernels in self.by_kind.values() for k in kernels])

    def predict(self, kernels: list[Kernel]) -> Prediction:
        """The network's time as the sum of its kernels' predicted times (each with its share of the time between
        kernels, see `wall_timed`) plus the overhead of a call."""
        unknown = sorted({k.kind for k in kernels if k.kind not in self._forests})
        total = self.overheads.call_us
        rows: dict[str, list[list[float]]] = defaultdict(list)
        for kernel in kernels:
            rows[kernel.kind if kernel.kind in self._forests else ""].append(kernel.row())
        for kind, kind_rows in rows.items():
            forest = self._forests.get(kind, self._pooled)
            total += float(_microseconds(kind_rows, forest.predict(_x(kind_rows))).sum())
        return Prediction(total / 1e3, len(kernels), unknown)

    def own_profile_ms(self, kernels: list[Kernel]) -> float:
        """A network's time from its own profiled kernels, each brought to the wall clock as the fit brings the
        blocks' (`wall_timed`), plus the call: what `predict` would give with regressors that made no error. So
        against the measured time it is the error of the rest of the method (the profiler's cost, the call), and
        `predict` against it the regressors' error on this network's kernels (benchmarks/projection_error.py)."""
        timed = wall_timed(Sample({}, None, kernels), self.overheads)
        return (self.overheads.call_us + sum(k.microseconds or 0.0 for k in timed)) / 1e3

    def disabled_optimizers(self) -> tuple[str, ...]:
        """The host's graph transformers to leave out when listing a network's kernels for this predictor: NCHWc
        exists on x86 with AVX2 only, so a predictor fitted on a board without it (an Arm SoC) never saw
        its kernels, and the board's runtime fuses without it."""
        return () if any(kind.startswith("nchwc.") for kind in self.by_kind) else ("NchwcTransformer",)

    def describe(self) -> str:
        """The predictor as a projection's method names it: which, fitted when, and its measured error."""
        record = self.record
        held_out = record.held_out
        truth = (f"; the truth itself reproduced within +/-10 % on {held_out['truth_within_10']:.0%} of them"
                 if held_out and "truth_within_10" in held_out else "")
        error = (f"held-out error on {held_out['cells']} networks x precisions: {held_out['within_10']:.0%} within "
                 f"+/-10 %, {held_out['within_25']:.0%} within +/-25 %{truth} ({held_out['source']}, "
                 f"{held_out['date']})" if held_out
                 else "held-out error not measured (run benchmarks/projection_error.py --record)")
        added = (f", and {sum(u['kernels'] for u in record.updates)} per-layer samples from {len(record.updates)} "
                 f"board run(s), the last {record.updates[-1]['date']}" if record.updates else "")
        return (f"kernel predictor for {record.platform} ({record.machine}; {record.runtime}, {record.threads} "
                f"thread(s)) fitted {record.fitted} on {len(self.samples)} blocks, "
                f"{sum(len(k) for k in self.by_kind.values())} kernel samples of {len(self._forests)} kernel "
                f"types in {record.profiling_seconds / 60:.1f} min of profiling{added}; {error}")

    def save(self, path: Path) -> None:
        samples = [_sample_json(sample) for sample in self.samples]
        _write(path, {"format": FORMAT, "record": asdict(self.record), "samples": samples})


class Overheads(NamedTuple):
    """Microseconds a block's wall time holds beside its kernels' profiled times."""

    call_us: float  # one call with the runtime's own memory warm, as a network runs back to back
    cold_call_us: float  # more per call where other memory was touched before it (a block's `evict_mb`)
    per_kernel_us: dict[str, float]  # by kernel type: the runtime's time between kernels less the profiler's cost

    def kernel_us(self, kind: str) -> float:
        """A kernel's share of its wall time beyond its profiled time; a type no timed block ran (a board's per-layer
        sample without a wall time) takes the median over the types."""
        if kind in self.per_kernel_us:
            return self.per_kernel_us[kind]
        return float(np.median(list(self.per_kernel_us.values()))) if self.per_kernel_us else 0.0


def overheads(samples: list[Sample]) -> Overheads:
    """Each block's unprofiled wall time less its kernels' profiled times, fitted on its number of kernels of each
    type and on whether memory was evicted before each run, by least squares weighted by 1 / wall time (the timing
    noise of a large block would swamp the few microseconds at stake). Per type, because the profiler records every
    kernel's input and output shapes: a QLinearConv and its nine inputs cost 3.6 us, a Relu 0.6 us (fitted on the
    host). Eviction leaves the call's own work (the feeds, the outputs, the runtime's state) cold: 25 us more a call
    on the host, which spread over a block's kernels made its small kernels several times too slow.

    No type's cost may take more than the time of its fastest tenth of kernels (scipy's bounded least squares):
    types that always run together (a squeeze-and-excitation's QLinearMul beside its convolutions) share their
    blocks' difference in any proportion, and unbounded the fit gave QLinearMul -10.5 us against its 4.4 us. Its
    kernels then stopped at MIN_US, the sum no longer held, and MobileNetV3 INT8's own profile came to 1.64x
    its measured time; bounded, 1.06x (measured on the AMD EPYC host, profile 8)."""
    timed = [s for s in samples if s.wall_ms is not None and all(k.microseconds is not None for k in s.kernels)]
    kinds = sorted({k.kind for s in timed for k in s.kernels})
    if len(timed) < 2 + len(kinds):
        return Overheads(0.0, 0.0, {})
    column = {kind: 2 + index for index, kind in enumerate(kinds)}
    design = np.zeros((len(timed), 2 + len(kinds)))
    for row, sample in zip(design, timed, strict=True):
        row[0], row[1] = 1.0, float(evict_bytes(sample.block) > 0)
        for kernel in sample.kernels:
            row[column[kernel.kind]] += 1.0
    weight = np.array([1.0 / max(s.wall_ms or 0.0, 1e-3) for s in timed])
    rest = np.array([s.wall_ms * 1e3 - sum(k.microseconds or 0.0 for k in s.kernels) for s in timed])
    profiled: dict[str, list[float]] = defaultdict(list)
    for sample in timed:
        for kernel in sample.kernels:
            profiled[kernel.kind].append(kernel.microseconds or 0.0)
    lower = np.full(design.shape[1], -np.inf)
    for kind in kinds:
        lower[column[kind]] = MIN_US - float(np.quantile(profiled[kind], COST_QUANTILE))
    fitted = lsq_linear(design * weight[:, None], rest * weight, bounds=(lower, np.inf)).x
    return Overheads(float(fitted[0]), float(fitted[1]), {kind: float(fitted[column[kind]]) for kind in kinds})


def timed_by_kind(samples: list[Sample]) -> dict[str, list[Kernel]]:
    """The timed kernels of the samples by kernel type, in the samples' order (see `timed_kernels`)."""
    by_kind: dict[str, list[Kernel]] = defaultdict(list)
    for _, kernel in timed_kernels(samples):
        by_kind[kernel.kind].append(kernel)
    return dict(by_kind)


def timed_kernels(samples: list[Sample]) -> list[tuple[int, Kernel]]:
    """(index of the sample, kernel) for the samples' timed kernels, each timed as `wall_timed` says; the kernels
    of a block's copies (one type, the same features) are one kernel at their median time: a network runs each kernel
    once, and one copy apart from the rest (one of a residual pair's 3x3 convolutions at 52 GMAC/s beside its 25
    copies at 71-75: Intel Xeon host, profile 22) would pull a mean its way. A kernel of under
    LARGE_WEIGHT_BYTES of weights (a reorder, an activation, a small convolution) takes the time of wherever its data
    is, so it is left out where a block leaves its data as no network's inner kernel finds it. After an eviction
    (memory evicted between a block's runs stands for the rest of a network leaving a large kernel's weights cold),
    it finds its input and more cold, warm in a network (small reorders took 4-7 us after one, 0.5-1.7 without:
    measured). And writing one of the graph's outputs, it writes memory handed to the caller on every run, where a
    network's inner kernel writes a buffer its memory plan reuses: every copy of a block ends so, a network once
    (an FP16 block's final Casts took twice as long as the same Casts inside it: Intel Xeon host, profile 20)."""
    fitted = overheads(samples)
    timed = []
    for index, sample in enumerate(samples):
        evicted = evict_bytes(sample.block) > 0
        alike: dict[tuple[str, tuple[float, ...]], list[Kernel]] = defaultdict(list)
        for kernel in wall_timed(sample, fitted):
            if kernel.weight_bytes < LARGE_WEIGHT_BYTES and (evicted or kernel.writes_output):
                continue
            alike[kernel.kind, tuple(kernel.row())].append(kernel)
        for (kind, _), kernels in alike.items():
            median_us = float(np.median([k.microseconds or 0.0 for k in kernels]))
            timed.append((index, Kernel(kernels[0].name, kind, kernels[0].features, median_us)))
    return timed


def wall_timed(sample: Sample, fitted: Overheads) -> list[Kernel]:
    """The sample's timed kernels, each at its profiled time plus its type's fitted share of the wall time (less
    the profiler's cost), so kernels sum to what a caller waits on average over the blocks. Not each block's own
    difference spread over its kernels: a block's timing noise is a share of its time, and a large kernel's 1 %
    spread over a block's 1-us kernels (a 375 us pool block's reorders) made them several times too slow."""
    return [replace(k, microseconds=max(MIN_US, k.microseconds + fitted.kernel_us(k.kind)))
            for k in sample.kernels if k.microseconds is not None]


def cross_validated_errors(kernels: list[Kernel], folds: int = 5) -> np.ndarray:
    """Each kernel's relative error when predicted by a forest fitted without it (k-fold), as the adaptive plan
    ranks regions; infinite where there are too few kernels to say."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import KFold, cross_val_predict

    if len(kernels) < max(folds, MIN_SAMPLES):
        return np.full(len(kernels), np.inf)
    rows = [k.row() for k in kernels]
    x, y = _x(rows), _y(kernels)
    forest = RandomForestRegressor(**FOREST | {"n_estimators": CV_TREES},
                                   max_samples=min(len(kernels) * (folds - 1) // folds, TREE_SAMPLES))
    predicted = cross_val_predict(forest, x, y, cv=KFold(folds, shuffle=True, random_state=0))
    return _microseconds(rows, predicted) / _microseconds(rows, y) - 1


def load_predictor(path: Path) -> Predictor:
    """The predictor in the file at `path`; a file that is not one fails with one line naming it."""
    record, samples = _parsed(path)
    return Predictor(record, samples)


def keep_board_samples(predictor: Predictor, path: Path) -> Predictor:
    """`predictor` with the per-layer samples that board runs added to the file at `path`: a new profiling plan
    replaces the blocks, not what compliance runs measured."""
    if not path.is_file():
        return predictor
    record, samples = _parsed(path)
    networks = [sample for sample in samples if "network" in sample.block]
    predictor.record.updates = record.updates + predictor.record.updates
    return Predictor(predictor.record, predictor.samples + networks) if networks else predictor


def add_samples(path: Path, samples: list[Sample], record: PredictorRecord, what: str) -> None:
    """Add per-layer samples (a board's compliance run of `what`) to the platform's predictor file, which is
    created with `record` where there is none; its forests take them in when it is next loaded. Needs no
    scikit-learn, so a board run adds its samples wherever it runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two workers adding at once would lose one's samples
        document = _read(path) if path.is_file() else {"format": FORMAT, "record": asdict(record), "samples": []}
        document["samples"] += [_sample_json(sample) for sample in samples]
        document["record"].setdefault("updates", []).append({
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "what": what,
            "kernels": sum(len(sample.kernels) for sample in samples)})
        _write(path, document)


def predictor_path(platform: str) -> Path:
    """Where a platform's predictor lives: one file per platform under the cache."""
    return cache.cache_root() / "predictors" / f"{platform}.json"


def _parsed(path: Path) -> tuple[PredictorRecord, list[Sample]]:
    document = _read(path)
    try:
        record = PredictorRecord(**document["record"])
        samples = [Sample(s["block"], s["wall_ms"],
                          [Kernel(name, kind, dict(zip(FEATURES, row, strict=True)), us, writes_output)
                           for name, kind, row, us, writes_output in s["kernels"]])
                   for s in document["samples"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NcapError(f"{path} is not a readable latency predictor ({type(exc).__name__}: "
                        f"{str(exc)[:160]}); fit it again with `ncap profile`") from exc
    return record, samples


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            found = document.get("format") if isinstance(document, dict) else type(document).__name__
            raise ValueError(f"format {found!r}, expected {FORMAT!r}")
    except FileNotFoundError as exc:
        raise NcapError(f"predictor file {path} does not exist; fit one with `ncap profile`") from exc
    except (OSError, ValueError) as exc:
        raise NcapError(f"{path} is not a readable latency predictor ({type(exc).__name__}: "
                        f"{str(exc)[:160]}); fit it again with `ncap profile`") from exc
    return document


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(document))
    staging.replace(path)  # atomic: a reader never sees half a file


def _sample_json(sample: Sample) -> dict[str, Any]:
    return {"block": sample.block, "wall_ms": sample.wall_ms,
            "kernels": [[k.name, k.kind, k.row(), k.microseconds, k.writes_output] for k in sample.kernels]}


def _x(rows: list[list[float]]) -> np.ndarray:
    """The regressors' input: the log of each feature, and of the multiply-accumulates per output element (a
    convolution's kernel area x input channels per group: the depth of its dot products, a GEMM's K). A kernel's
    rate per MAC follows that depth, which no single feature holds: the forest predicted DMS-Net pruned INT8's
    3 -> 16 3x3 stem at 10 ns a pixel, leaning on a 3 -> 16 5x5 (nearly three times the MACs a pixel), where the
    fit's 3 -> 8-24 3x3 stems ran at 15-21 and the network at 16 (AMD EPYC host, profile 26)."""
    table = np.asarray(rows, dtype=np.float64).clip(min=0)
    working_set = FEATURES.index("working_set")
    table[:, working_set] = table[:, working_set].clip(max=WORKING_SET_CAP)
    macs, outputs = table[:, FEATURES.index("macs")], table[:, FEATURES.index("output_elements")]
    return np.log1p(np.column_stack([table, macs / np.maximum(outputs, 1.0)]))


def _y(kernels: list[Kernel]) -> np.ndarray:
    """The regressors' target: the log of the time per unit of work. A forest cannot extrapolate, and time per
    unit of work levels off for large kernels (the hardware's throughput), so a kernel larger than any sampled
    is predicted at the largest sampled kernels' rate, not at their time."""
    times = np.asarray([k.microseconds for k in kernels], dtype=np.float64).clip(min=MIN_US)
    return np.log(times / _work([k.row() for k in kernels]))


def _microseconds(rows: list[list[float]], target: np.ndarray) -> np.ndarray:
    return np.exp(target) * _work(rows)


def _work(rows: list[list[float]]) -> np.ndarray:
    """A kernel's work: its multiply-accumulates, or the elements it reads and writes where those are more."""
    table = np.asarray(rows, dtype=np.float64)
    column = {name: table[:, index] for index, name in enumerate(FEATURES)}
    return np.maximum.reduce([column["macs"], column["input_elements"] + column["output_elements"],
                              np.ones(len(table))])


def _forest(kernels: list[Kernel]) -> Any:
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError as exc:
        raise NcapError("the latency predictor needs scikit-learn: pip install 'dms-ncap[predict]'") from exc
    forest = RandomForestRegressor(**FOREST, max_samples=min(len(kernels), TREE_SAMPLES))
    return forest.fit(_x([k.row() for k in kernels]), _y(kernels))

