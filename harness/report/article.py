"""The source article's three tables, each with this run's figures beside the article's."""
from __future__ import annotations

from typing import Any

import pandas as pd

from harness.catalog import REFERENCE_RECIPE
from harness.errors import NcapError
from harness.platform import Platform, known_platforms, load_platform

SOURCE = "source article (DMS边缘部署优化, DMS edge deployment optimisation)"
TYPICAL = "typical_ms"  # p50 where measured, the projection where projected
# 量化类型 table: expected speed-up over FP32 (low, high) and accuracy loss
PRECISIONS = {"fp16": ((1.5, 1.5), "< 1 %"), "int8": ((2.0, 4.0), "1-3 %"), "int4": ((4.0, 8.0), "5-10 %")}
# 部署优化清单 table: what each optimisation is expected to bring (预期收益)
CHECKLIST = {"int8": "quantisation: 2-4x faster", "fp16": "quantisation: 2-4x faster",
             "prune": "pruning: 30-50 % smaller", "distill": "distillation: keeps accuracy",
             "fuse": "BN+Conv fusion: 10-20 % faster"}
# Euro NCAP要求 table: requirement, limit, "after optimisation" figure, and the figure that shows it here
BUDGET = [("latency", "detection latency", "<= 50 ms", 15.0, "ms"),
          ("power", "power", "<= 5 W", 2.0, "W"),
          ("memory", "memory", "<= 1 GB", 200.0, "MB")]


def precision_rows(records: pd.DataFrame) -> list[dict[str, Any]]:
    """Per precision of the article and per measured (platform, model): speed-up of p50 and top-1 drop."""
    p50 = _pivot(records, "latency", TYPICAL)
    drops = _pivot(records, "accuracy", "drop_pt")
    rows = []
    for precision, ((low, high), loss) in PRECISIONS.items():
        claim = f"{low:g}x" if low == high else f"{low:g}-{high:g}x"
        measured = [(key, row) for key, row in p50.iterrows() if _has(row, REFERENCE_RECIPE) and _has(row, precision)]
        for (platform, model), row in measured or [((None, None), None)]:
            speedup = row[REFERENCE_RECIPE] / row[precision] if row is not None else None
            drop = drops.loc[(platform, model), precision] if (platform, model) in drops.index and \
                precision in drops.columns else None
            rows.append({"precision": precision, "claim": claim, "loss": loss, "platform": platform, "model": model,
                         "speedup": speedup, "meets_claim": speedup is not None and speedup >= low,
                         "drop_pt": None if drop is None or pd.isna(drop) else float(drop)})
    return rows


def before_after_rows(records: pd.DataFrame) -> list[dict[str, Any]]:
    """The article's before/after latencies per model and platform, then ours: FP32 (or FP16) latency against
    the fastest optimised recipe's."""
    rows = [{"source": "article", "model": b.model, "platform": profile.name, "before_ms": b.before_ms,
             "after_ms": b.after_ms, "before_precision": "", "after_precision": "", "speedup": b.before_ms / b.after_ms,
             "grade": b.source}
            for profile in _profiles() for b in profile.baselines]
    latency = records[records["metric"] == "latency"]
    grades = latency.groupby(["platform", "model"])["grade"].agg(lambda g: " / ".join(sorted(set(g.dropna()))))
    for (platform, model), row in _pivot(records, "latency", TYPICAL).iterrows():
        # "before" is FP32, or FP16 on a chip whose toolchain has no FP32 (QCS8255's NPU)
        before = next((precision for precision in (REFERENCE_RECIPE, "fp16") if _has(row, precision)), None)
        optimised = row.drop(before, errors="ignore").dropna() if before else row.iloc[0:0]
        if before and not optimised.empty:
            rows.append({"source": "this run", "model": model, "platform": platform, "before_ms": row[before],
                         "before_precision": before, "after_ms": optimised.min(), "after_precision": optimised.idxmin(),
                         "speedup": row[before] / optimised.min(), "grade": grades.get((platform, model))})
    return rows


def optimisation_rows(records: pd.DataFrame) -> list[dict[str, Any]]:
    """The article's 部署优化清单 (deployment checklist) beside each measured recipe: speed-up of p50,
    parameter and size reduction, and top-1 drop, all against the FP32 cell of the same model."""
    p50, drops = _pivot(records, "latency", TYPICAL), _pivot(records, "accuracy", "drop_pt")
    params, size = _pivot(records, "latency", "params_after"), _pivot(records, "latency", "size_bytes")
    rows = []
    for (platform, model), row in p50.iterrows():
        if not _has(row, REFERENCE_RECIPE):
            continue
        for recipe in row.drop(REFERENCE_RECIPE).dropna().index:
            steps = [step.split(":")[0] for step in recipe.split(",")]
            rows.append({
                "platform": platform, "model": model, "recipe": recipe,
                "claims": "; ".join(claim for step, claim in CHECKLIST.items() if step in steps) or "—",
                "speedup": row[REFERENCE_RECIPE] / row[recipe],
                "params_ratio": _ratio(params, platform, model, recipe),
                "size_ratio": _ratio(size, platform, model, recipe),
                "drop_pt": _cell(drops, platform, model, recipe)})
    return rows


def budget_rows(records: pd.DataFrame) -> list[dict[str, Any]]:
    """The Euro NCAP budget with the article's "after optimisation" figures and our worst cell."""
    rows = []
    figure = "figure"  # what each metric's test asserts
    for metric, wording, limit, after, unit in BUDGET:
        measured = records[(records["metric"] == metric)]
        measured = measured[measured[figure].notna()] if figure in measured else measured.iloc[0:0]
        worst = measured.loc[measured[figure].idxmax()] if not measured.empty else None
        rows.append({"requirement": wording, "limit": limit, "article_after": f"<= {after:g} {unit}", "unit": unit,
                     "ours": None if worst is None else float(worst[figure]),
                     "cell": None if worst is None else worst["cell"],
                     "grade": None if worst is None else worst["grade"],
                     "meets_after": worst is not None and float(worst[figure]) <= after})
    return rows


def _profiles() -> list[Platform]:
    """Every profile that loads; one being edited must not stop the report."""
    profiles = []
    for name in known_platforms():
        try:
            profiles.append(load_platform(name))
        except NcapError:
            continue
    return profiles


def _pivot(records: pd.DataFrame, metric: str, figure: str) -> pd.DataFrame:
    if figure == TYPICAL:
        records = _with_typical_latency(records)
    if figure not in records:
        return pd.DataFrame()
    chosen = records[(records["metric"] == metric) & records[figure].notna()]
    # one column per recipe: "int8" is plain PTQ, "fuse,prune:0.3,int8" another column, never averaged in
    return chosen.pivot_table(index=["platform", "model"], columns="recipe", values=figure)


def _with_typical_latency(records: pd.DataFrame) -> pd.DataFrame:
    """The latency the article's tables compare: the measured p50 where there is one, else the projection."""
    missing = pd.Series(float("nan"), index=records.index)
    typical = records.get("p50_ms", missing).fillna(records.get("projected_ms", missing))
    return records.assign(**{TYPICAL: typical})


def _cell(table: pd.DataFrame, platform: str, model: str, recipe: str) -> float | None:
    if (platform, model) not in table.index or recipe not in table.columns:
        return None
    value = table.loc[(platform, model), recipe]
    return None if pd.isna(value) else float(value)


def _ratio(table: pd.DataFrame, platform: str, model: str, recipe: str) -> float | None:
    """The recipe's figure as a share of the FP32 cell's."""
    after, before = _cell(table, platform, model, recipe), _cell(table, platform, model, REFERENCE_RECIPE)
    return after / before if after is not None and before else None


def _has(row: pd.Series, precision: str) -> bool:
    return precision in row and not pd.isna(row[precision])
