"""The one schema of a stored record: what every line of results.jsonl holds, written by the session and
`ncap merge`, read by merge, the baseline, the gate's notes and the report.

The common fields are typed; a metric's own figures (latency statistics, peak memory, top-1, the gate's
ratios...) ride beside them as extra fields. Files written before the schema had a version still read:
they are version 1, and a record without a recipe ran its precision as the recipe.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from harness.errors import NcapError

SCHEMA_VERSION = 2
Metric = Literal["latency", "memory", "power", "accuracy", "placement", "regression", "audit",
                 "scenario"]  # scenario: `state` says which
Status = Literal["pass", "fail", "skip", "error"]


class StoredRecord(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: int = 1  # absent in files written before the schema had a version
    run_id: str
    timestamp: str
    cell: str
    model: str
    precision: str
    platform: str
    recipe: str
    metric: Metric
    verdict: Status
    message: str
    grade: str | None = None
    method: str | None = None
    limit: float | None = None
    limit_source: str | None = None
    artifact_sha256: str | None = None
    dataset: str | None = None
    dataset_sha256: str | None = None
    test_id: str | None = None
    board: str | None = None  # with --device: the board that ran the cell (ssh://user@host:port)
    lab_place: str | None = None  # with --device labgrid://: the labgrid place that board is
    lab_acquired_at: str | None = None  # and when this run acquired it (UTC)

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """Version 1 records (before the schema) may lack a recipe: they ran their precision."""
        if isinstance(data, dict) and "recipe" not in data and "precision" in data:
            data = {**data, "recipe": data["precision"]}
        return data


def stored(fields: dict[str, Any]) -> StoredRecord:
    """A new record at the current schema version; an NcapError naming the field when `fields` do not fit."""
    return parse({**fields, "schema_version": SCHEMA_VERSION}, "a new record")


def parse(fields: dict[str, Any], where: str) -> StoredRecord:
    try:
        return StoredRecord.model_validate(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "record"
        raise NcapError(f"{where} is not a dms-ncap result record: field {field}: {problem['msg']}") from exc
