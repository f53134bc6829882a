"""What a run builds once and its figure sources share: the data, the trained networks, each cell's artifact,
the inputs latency is timed over, and the memo that keeps each (or the error that stopped it)."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from harness.catalog import REFERENCE_RECIPE
from harness.cell import Cell, RunOptions
from harness.data.dataset import Dataset, ImageSet, SyntheticSpec, embedded_dataset, folder_dataset
from harness.errors import NcapError
from harness.measure import quiet
from harness.measure.drift import DRIFT_IMAGES, DRIFT_TOP, drift_figures, kept_in_float, layer_drift
from harness.models import preprocess, zoo
from harness.models.card import ModelCard, load_card
from harness.models.train import TrainedModel, trained_model
from harness.optimize.litert import LiteRTArtifact, build_litert_artifact
from harness.optimize.passes import PassContext
from harness.optimize.recipe import Artifact, build_artifact, parse_recipe

# Latency is timed over the evaluation images in this seeded order (recorded with each latency figure), as many as
# fit this budget once preprocessed (all 1000 embedded images at 64x64 take 49 MB; at 640x640 the budget holds 54)
TIMING_ORDER_SEED = 0
TIMING_INPUTS_BYTES = 256 * 2**20


class Workspace:
    def __init__(self, options: RunOptions, progress: Callable[[str], None]) -> None:
        self.options, self.progress = options, progress
        self.cards = {spec: _resolve_card(spec) for spec in options.models}  # None for a zoo model
        names = [self.model_name(spec) for spec in options.models]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:  # one cell id would stand for two networks: only the first would ever be measured
            raise NcapError(f"model name {', '.join(repeated)} is given twice (--model); give each card its own "
                            "`name:` and each zoo model once")
        self.memo: dict[tuple[str, ...], Any] = {}

    @cached_property
    def dataset(self) -> Dataset:
        if self.options.dataset_dir is not None:
            return folder_dataset(self.options.dataset_dir)
        self.progress("generating the embedded synthetic driver-state dataset")
        return embedded_dataset(SyntheticSpec())

    def model_name(self, spec: str) -> str:
        card = self.cards[spec]
        return card.name if card else spec

    def user_card(self, model: str) -> ModelCard | None:
        """The card the user brought for `model`; None for a zoo model."""
        return next((c for c in self.cards.values() if c and c.name == model), None)

    def trained(self, model: str) -> TrainedModel:
        return self.once(("trained", model), lambda: trained_model(model, self.dataset, self.progress), heavy=True)

    def source_card(self, model: str) -> ModelCard:
        return self.user_card(model) or self.trained(model).card

    def artifact(self, cell: Cell) -> Artifact:
        def build() -> Artifact:
            return build_artifact(self.source_card(cell.model), parse_recipe(cell.recipe), self._context(cell.model))
        return self.once(("artifact", cell.model, cell.recipe), build, heavy=True)

    def litert_artifact(self, cell: Cell) -> LiteRTArtifact:
        """The cell's network as the `.tflite` a LiteRT platform runs, converted from PyTorch (optimize/litert.py)."""
        def build() -> LiteRTArtifact:
            self.progress(f"converting {cell.model} ({cell.recipe}) to LiteRT")
            return build_litert_artifact(self.artifact(cell), parse_recipe(cell.recipe), self._context(cell.model))
        return self.once(("litert-artifact", cell.model, cell.recipe), build, heavy=True)

    def deployed_model(self, cell: Cell) -> Path:
        """The file the platform's runtime loads: the `.tflite` where it is LiteRT, else the ONNX artifact."""
        if self.options.platform.runtime.name == "litert":
            return self.litert_artifact(cell).path
        return self.artifact(cell).card.onnx

    def _context(self, model: str) -> PassContext:
        card = self.source_card(model)
        trained = None if self.user_card(model) else self.trained(model)
        return PassContext(card, self.split_for(card, "calibration"), self.dataset.fingerprint, self.dataset, trained)

    def built_artifact(self, cell: Cell) -> Artifact | None:
        """The cell's artifact if it was built (for a record's provenance); never builds it."""
        built = self.memo.get(("artifact", cell.model, cell.recipe))
        return built if isinstance(built, Artifact) else None

    def layer_drift(self, cell: Cell, images: int = DRIFT_IMAGES, top: int = DRIFT_TOP) -> dict[str, Any]:
        """Where the cell's quantisation loses accuracy: its artifact layer by layer against the FP32 artifact's,
        over the first `images` of the evaluation split (measure/drift.py). A comparison Polygraphy cannot make is
        said in the figures, never a lost accuracy record."""
        def compare() -> dict[str, Any]:
            fp32, quantised = self.artifact(Cell(cell.model, REFERENCE_RECIPE, cell.platform)), self.artifact(cell)
            chosen = self.split_for(fp32.card, "evaluation").images[:images]
            batches = [preprocess.to_tensor(chosen[row:row + 1], fp32.card.input) for row in range(len(chosen))]
            started = time.perf_counter()
            try:
                report = layer_drift(fp32.card.onnx, quantised.card.onnx, batches)
            except Exception as exc:  # a third-party tool failed on this model: the drop still stands
                return {"error": f"Polygraphy could not compare the layers: {type(exc).__name__}: {str(exc)[:200]}"}
            return drift_figures(report, kept_in_float(quantised.manifest), len(batches),
                                 time.perf_counter() - started, top)
        return self.once(("layer-drift", cell.model, cell.recipe, str(images), str(top)), compare, heavy=True)

    def split_for(self, card: ModelCard, split: str) -> ImageSet:
        """A split with its labels renumbered into the card's class order (names must match); a detector
        takes the images only."""
        if card.output.kind == "detections":
            return getattr(self.dataset, split)
        missing = [name for name in self.dataset.classes if name not in card.classes]
        if missing:
            raise NcapError(f"dataset classes {missing} are not among {card.name}'s classes {list(card.classes)}; "
                            "rename the dataset folders or fix `classes` in the model card")
        images = getattr(self.dataset, split)
        order = np.array([card.classes.index(name) for name in self.dataset.classes])
        return ImageSet(images.images, order[images.labels])

    def timing_order(self, card: ModelCard) -> np.ndarray:
        """Which evaluation images are timed, in which order: a seeded random order of the whole split, cut to
        what fits TIMING_INPUTS_BYTES once preprocessed."""
        count = len(self.split_for(card, "evaluation").images)
        per_input = 4 * card.input.channels * card.input.size[0] * card.input.size[1]
        return np.random.default_rng(TIMING_ORDER_SEED).permutation(count)[:max(1, TIMING_INPUTS_BYTES // per_input)]

    def timing_inputs(self, card: ModelCard) -> np.ndarray:
        """The batch-1 inputs timed for latency, stacked in timing order: preprocessed once, held in memory."""
        def preprocessed() -> np.ndarray:
            images = self.split_for(card, "evaluation").images
            return preprocess.to_tensor([images[i] for i in self.timing_order(card)], card.input)
        return self.once(("timing-inputs", card.input.model_dump_json()), preprocessed)

    def once(self, key: tuple[str, ...], compute: Callable[[], Any], heavy: bool = False) -> Any:
        """Memoise a result or the error that prevented it, so a failed step is not retried per test. Any
        exception becomes an NcapError with its type, so it is recorded like the others and the run goes on.
        `heavy` work holds the machine's shared lock: no other worker times while it runs (measure.quiet)."""
        if key not in self.memo:
            try:
                with quiet.computing() if heavy else contextlib.nullcontext():
                    self.memo[key] = compute()
            except NcapError as exc:
                self.memo[key] = exc
            except Exception as exc:  # a defect or a third-party failure: an error record, never a lost figure
                detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "no message"
                self.memo[key] = NcapError(f"unexpected {type(exc).__name__}: {detail}")
                self.memo[key].__cause__ = exc
        if isinstance(self.memo[key], NcapError):
            raise self.memo[key]
        return self.memo[key]


def _resolve_card(spec: str) -> ModelCard | None:
    """None for a zoo name, the parsed card for a path; anything else is an NcapError."""
    if spec in zoo.ZOO:
        return None
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_card(path)
    raise NcapError(f"--model {spec!r} is neither a zoo model ({', '.join(zoo.ZOO)}) nor a model card file")
