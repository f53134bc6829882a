"""The scenario protocol: each driver state's criterion and clause, the decision thresholds and the judging rule,
read from protocol.yaml with an OEM's file put over it."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import NcapError
from harness.files import read_text
from harness.platform import describe_validation_error

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
ALERTS = ("distraction", "vats", "microsleep", "sleep", "drowsiness", "unresponsive")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class State(_Strict):
    clause: str
    onset: str | None = None  # what the warning time is measured from; None for a state that must not warn
    alerts: tuple[str, ...]  # the alerts that answer it; empty: any alert is a false one
    warn_within_s: Seconds | None = None

    @property
    def must_warn(self) -> bool:
        return bool(self.alerts)


class Decision(_Strict):
    long_distraction_s: Seconds
    vats_limit_s: Seconds
    vats_window_s: Seconds
    vats_reset_s: Seconds
    vats_adaptation_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    microsleep_s: Seconds
    sleep_s: Seconds
    perclos_window_s: Seconds
    perclos_limit: Share
    unresponsive_away_s: Seconds
    unresponsive_closed_s: Seconds
    unresponsive_after_warning_s: Seconds
    state_gap_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Judging(_Strict):
    on_time_share: Share
    confidence: Share
    false_alerts_per_hour: Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Protocol(_Strict):
    states: dict[str, State]
    decision: Decision
    ground_truth: dict[str, float]  # the criteria's own values, where the decision's differ (see the YAML)
    judge: Judging
    source: str = "harness/scenarios/protocol.yaml"

    @property
    def criteria(self) -> Decision:
        """The decision rules with the protocol's criteria: run on the ground truth, they give a window
        state's onset."""
        return Decision.model_validate(self.decision.model_dump() | self.ground_truth)


def load_protocol(override: Path | None = None) -> Protocol:
    """The built-in protocol, with `override`'s values (any subset of the same keys) put over it."""
    data = yaml.safe_load(files("harness.scenarios").joinpath("protocol.yaml").read_text())
    source = "harness/scenarios/protocol.yaml"
    if override is not None:
        text = read_text(override, "scenario protocol", "--ncap-scenario-protocol")
        try:
            mine = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise NcapError(f"{override}: not valid YAML ({exc.__class__.__name__}); fix the syntax") from exc
        if not isinstance(mine, dict):
            raise NcapError(f"{override}: a scenario protocol is a mapping (states, decision, judge); fix the file")
        data, source = _merged(data, mine, str(override)), f"{source} with {override} over it"
    try:
        protocol = Protocol.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise NcapError(f"{override or source}: {describe_validation_error(exc)}") from exc
    for name, state in protocol.states.items():
        unknown = [alert for alert in state.alerts if alert not in ALERTS]
        if unknown:
            raise NcapError(f"{source}: state {name} names unknown alert {', '.join(unknown)}; "
                            f"known: {', '.join(ALERTS)}")
        if state.must_warn and (state.warn_within_s is None or state.onset is None):
            raise NcapError(f"{source}: state {name} must warn but gives no warn_within_s or onset; add both")
    return protocol


def _merged(base: dict[str, Any], mine: dict[str, Any], where: str) -> dict[str, Any]:
    """`base` with `mine` put over it key by key; a key the protocol does not have is a mistake, not an addition."""
    merged = dict(base)
    for key, value in mine.items():
        if key not in base:
            raise NcapError(f"{where}: unknown key {key!r}; known: {', '.join(base)}")
        merged[key] = _merged(base[key], value, where) if isinstance(value, dict) and isinstance(base[key], dict) \
            else value
    return merged
