"""A target with no board attached: the cell's artifact projected onto the chip's roofline. Its figures can pass
or fail, but they are provisional and never homologation evidence (--ncap-strict fails their passes)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.cell import Cell
from harness.measure.audit import SelfAudit
from harness.models.train import class_names, reference_model
from harness.optimize.passes import PassContext
from harness.optimize.recipe import build_artifact, parse_recipe
from harness.platform import ArticleBaseline
from harness.project.calibration import CalibratedRoofline, calibrated_roofline
from harness.project.kernels import network_kernels
from harness.project.predictor import Predictor, load_predictor, predictor_path
from harness.project.projection import Projection, project
from harness.sources.base import Evidence
from harness.sources.numerics import target_numerics
from harness.workspace import Workspace

GRADE = "projected"
CAVEAT = "projected, provisional: a projection is not homologation evidence"
# The method's error where it can be checked: benchmarks/projection_error.py on the host. No chip here
# to check a target projection against, so its error on a target is unknown.
KNOWN_ERROR = ("unknown on the target; on the host the same method's error is measured by "
               "benchmarks/projection_error.py (docs/targets.md)")
FALLBACK = "roofline, the fallback: {platform} has no latency predictor ({path})"
NOT_PROJECTED = ("{metric} on {platform} is not projected: accuracy depends on the chip's toolchain and the "
                 "regression gate compares measurements; run on the device (--device ssh://...)")


class ProjectionSource:
    def __init__(self, run: Workspace) -> None:
        self.run, self.platform = run, run.options.platform
        self.numerics = target_numerics(run)

    def latency(self, cell: Cell) -> Evidence:
        calibrated = self._roofline(cell.precision)
        projection = self._projection(cell)
        predictor = self._predictor()
        if predictor is not None:
            return self._predicted_latency(cell, predictor, projection)
        what, figures = "projected latency", {"projected_ms": projection.latency_ms, "known_error": KNOWN_ERROR}
        if self._is_calibration_point(cell, calibrated.baseline):
            what = "projected latency (the calibration point: the article's own figure, not a prediction)"
            figures["calibration_point"] = True
        figures |= self._beside(cell, "latency")
        fallback = FALLBACK.format(platform=self.platform.name, path=predictor_path(self.platform.name))
        # an uncalibrated roofline assumes the datasheet peak is reached: the time is at least this
        return Evidence(projection.latency_ms, what, GRADE, f"{fallback}: {projection.latency_method}; {CAVEAT}",
                        figures, caveat=CAVEAT, lower_bound=calibrated.baseline is None)

    def _predicted_latency(self, cell: Cell, predictor: Predictor, projection: Projection) -> Evidence:
        """The platform's kernel predictor on the artifact's kernels. It predicts the quiet run (the fastest fifth
        of runs, as it was fitted and its held-out error measured), below the p99 a measured latency asserts: a
        lower bound, so it can fail a limit and never meet one, and its error never loosens a verdict."""
        prediction = self.run.once(("prediction", cell.id), lambda: predictor.predict(
            network_kernels(self.run.artifact(cell).card.onnx, predictor.record.threads,
                            predictor.disabled_optimizers())))
        record = predictor.record
        unknown = (f"; {len(prediction.unknown_kinds)} kernel type(s) it has too few samples of "
                   f"({', '.join(prediction.unknown_kinds)}) predicted by its pooled regressor"
                   if prediction.unknown_kinds else "")
        method = (f"{predictor.describe()}; the artifact's {prediction.kernels} kernels from ONNX Runtime's "
                  f"optimised graph, each predicted by its type's regressor, plus the measured per-call and "
                  f"per-kernel overhead{unknown}; the quiet run it predicts (the fastest fifth of runs) is judged as a "
                  f"lower bound on the p99 a measured latency asserts; the roofline's {projection.latency_ms:.3g} ms "
                  f"recorded beside; {CAVEAT}")
        figures = {"projected_ms": prediction.ms, "known_error": record.held_out or "not measured",
                   "predictor": str(predictor_path(self.platform.name)), "predictor_fitted": record.fitted,
                   "unknown_kernel_types": prediction.unknown_kinds, "roofline_ms": projection.latency_ms}
        return Evidence(prediction.ms, "projected latency (kernel predictor)", GRADE, method,
                        figures | self._beside(cell, "latency"), caveat=CAVEAT, lower_bound=True)

    def _predictor(self) -> Predictor | None:
        """The platform's predictor file when there is one (a damaged one is an error, not a silent fallback)."""
        path = predictor_path(self.platform.name)
        return self.run.once(("predictor", self.platform.name),
                             lambda: load_predictor(path) if path.is_file() else None)

    def latency_samples(self, cell: Cell) -> None:
        return None  # nothing is timed

    def memory(self, cell: Cell) -> Evidence:
        projection = self._projection(cell)
        return Evidence(projection.memory_mb, "projected memory", GRADE, f"{projection.memory_method}; {CAVEAT}",
                        {"peak_mb": projection.memory_mb, "known_error": KNOWN_ERROR, **self._beside(cell, "memory")},
                        caveat=CAVEAT, lower_bound=True)

    def power(self, cell: Cell) -> Evidence:
        envelope = self.platform.power.envelope_w if self.platform.power else None
        if envelope is None:
            return Evidence(None, "projected power", None, None, reason=(
                f"{cell.platform}'s profile gives no power envelope to project from; measure on the device"))
        return Evidence(envelope.value, "projected power (the chip's rated envelope, an upper bound)", GRADE,
                        f"the chip's power envelope ({envelope.source}); {CAVEAT}",
                        {"watts": envelope.value, "known_error": KNOWN_ERROR}, caveat=CAVEAT)

    def top1(self, cell: Cell) -> Evidence:
        if self.numerics is not None:
            return self.numerics.top1(cell)
        return Evidence(None, "top-1", None, None, reason=NOT_PROJECTED.format(metric="accuracy",
                                                                              platform=cell.platform))

    def audit(self, cell: Cell) -> SelfAudit:
        return SelfAudit(reason="nothing is timed on a projection, so there is no timing to audit")

    def paired_timing(self, cell: Cell, stored: dict[str, Any]) -> None:
        return None

    def second_look(self, cell: Cell, stored: dict[str, Any]) -> None:
        return None  # a projection is not gated: NOT_PROJECTED says why

    def _beside(self, cell: Cell, metric: str) -> dict[str, Any]:
        """What the target's toolchain measured on the host for `metric`, recorded and never judged."""
        return self.numerics.beside(cell, metric) if self.numerics is not None else {}

    def _projection(self, cell: Cell) -> Projection:
        return self.run.once(("projection", cell.id), lambda: project(
            self.run.artifact(cell).card.onnx, self._roofline(cell.precision).roofline))

    def _roofline(self, precision: str) -> CalibratedRoofline:
        """The target's roofline for `precision`, calibrated on the article's baseline where the profile has one."""
        def reference(baseline: ArticleBaseline) -> Path:
            dataset = self.run.dataset
            card = reference_model(baseline.zoo_model, baseline.input_size, class_names(baseline.zoo_model, dataset))
            context = PassContext(card, self.run.split_for(card, "calibration"), dataset.fingerprint)
            self.run.progress(f"calibrating {self.platform.name} {precision} on {baseline.model} "
                              f"({baseline.after_ms:g} ms in the article)")
            return build_artifact(card, parse_recipe(precision), context).card.onnx
        return self.run.once(("roofline", precision), lambda: calibrated_roofline(self.platform, precision, reference))

    def _is_calibration_point(self, cell: Cell, baseline: ArticleBaseline | None) -> bool:
        return (baseline is not None and cell.model == baseline.zoo_model and cell.recipe == cell.precision
                and self.run.source_card(cell.model).input.size == baseline.input_size)
