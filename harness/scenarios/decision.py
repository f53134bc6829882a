"""The DMS decision layer: per-frame driver states in, warnings out (long distraction, VATS, microsleep, sleep,
drowsiness, unresponsive driver).

The layer sees the frames the network finished, each with its capture time (timers run on it) and the time its
output was ready (a warning raised by that frame is issued then). Between two outputs the last state holds.
Written here because the rules are the protocol's own (protocol.yaml); no library implements them.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from harness.scenarios.protocol import Decision

AWAY = frozenset({"looking_away", "phone_use"})  # eyes off the forward road
CLOSED = "eyes_closed"


@dataclass(frozen=True)
class Alert:
    kind: str  # one of protocol.ALERTS
    at_s: float  # when the warning is issued: the triggering frame's output time


@dataclass(frozen=True)
class Output:
    """One frame the network finished: its capture time, when its output was ready, and the state it gave."""

    capture_s: float
    done_s: float
    state: str


class DecisionLayer:
    def __init__(self, thresholds: Decision) -> None:
        self.t = thresholds
        self.alerts: list[Alert] = []
        self._last: Output | None = None
        self._away_since: float | None = None
        self._closed_since: float | None = None
        self._away_gap: float | None = None  # when the current glance was interrupted (the filter's grace)
        self._closed_gap: float | None = None
        self._road_since: float | None = None
        self._back_from_glance: float | None = None  # when the eyes came back to the road from a glance away
        self._raised: set[str] = set()  # alerts already raised for the current glance or closure
        self._away: deque[tuple[float, float]] = deque()  # VATS: away intervals inside the window
        self._closed: deque[tuple[float, float]] = deque()  # PERCLOS: closed intervals inside the window
        self._first_s: float | None = None
        self._warned_at: float | None = None  # a distraction or sleep warning waiting for the driver to return

    def run(self, outputs: Iterable[Output]) -> list[Alert]:
        for output in outputs:
            self.update(output)
        return self.alerts

    def update(self, out: Output) -> None:
        t = out.capture_s
        if self._first_s is None:
            self._first_s = t
        if self._last is not None:  # the previous state held from its frame until this one
            self._account(self._last.state, self._last.capture_s, t)
        self._runs(out.state, t)
        self._check(out, t)
        self._last = out

    def _account(self, state: str, start: float, end: float) -> None:
        if state in AWAY:
            _extend(self._away, start, end)
        elif self._back_from_glance is not None and start - self._back_from_glance < self.t.vats_adaptation_s:
            # AttenD's adaptation: the first moments back on the road after a glance still count as away
            _extend(self._away, start, min(end, self._back_from_glance + self.t.vats_adaptation_s))
        if state == CLOSED:
            _extend(self._closed, start, end)

    def _runs(self, state: str, t: float) -> None:
        """Start or end the current glance away, eye closure and time back on the road."""
        if state in AWAY:
            if self._away_since is None:
                self._away_since = t
                self._raised -= {"distraction", "unresponsive"}
            self._away_gap = None
        elif self._away_since is not None:  # the glance ends once the interruption outlasts the filter's grace
            self._away_gap = t if self._away_gap is None else self._away_gap
            if t - self._away_gap >= self.t.state_gap_s:
                self._away_since = self._away_gap = None
        if state == CLOSED:
            if self._closed_since is None:
                self._closed_since = t
                self._raised -= {"microsleep", "sleep", "unresponsive"}
            self._closed_gap = None
        elif self._closed_since is not None:
            self._closed_gap = t if self._closed_gap is None else self._closed_gap
            if t - self._closed_gap >= self.t.state_gap_s:
                self._closed_since = self._closed_gap = None
        if state in AWAY or state == CLOSED:
            self._road_since = None
        elif self._road_since is None:
            self._road_since = t
            self._back_from_glance = t if self._last is not None and self._last.state in AWAY else None
            self._warned_at = None  # the driver came back
        if self._road_since is not None and t - self._road_since >= self.t.vats_reset_s:
            self._away.clear()  # >= 2 s back on the road resets the VATS count

    def _check(self, out: Output, t: float) -> None:
        th = self.t
        if self._away_since is not None:
            away_for = t - self._away_since
            if away_for >= th.long_distraction_s:
                self._raise("distraction", out)
            if away_for >= th.unresponsive_away_s:
                self._raise("unresponsive", out)
        if self._closed_since is not None:
            closed_for = t - self._closed_since
            if closed_for >= th.microsleep_s:
                self._raise("microsleep", out)
            if closed_for >= th.sleep_s:
                self._raise("sleep", out)
            if closed_for >= th.unresponsive_closed_s:
                self._raise("unresponsive", out)
        if self._warned_at is not None and out.done_s - self._warned_at >= th.unresponsive_after_warning_s:
            self._raise("unresponsive", out)
        _trim(self._away, t - th.vats_window_s)
        if _total(self._away) >= th.vats_limit_s:
            self.alerts.append(Alert("vats", out.done_s))
            self._away.clear()  # warned: the count starts again
        _trim(self._closed, t - th.perclos_window_s)
        if t - self._first_s >= th.perclos_window_s and _total(self._closed) >= th.perclos_limit * th.perclos_window_s:
            self.alerts.append(Alert("drowsiness", out.done_s))
            self._closed.clear()

    def _raise(self, kind: str, out: Output) -> None:
        """One warning of each kind per glance or closure."""
        if kind in self._raised:
            return
        self._raised.add(kind)
        self.alerts.append(Alert(kind, out.done_s))
        if kind in ("distraction", "microsleep", "sleep") and self._warned_at is None:
            self._warned_at = out.done_s


def _extend(intervals: deque[tuple[float, float]], start: float, end: float) -> None:
    if end <= start:
        return
    if intervals and intervals[-1][1] >= start:
        intervals[-1] = (intervals[-1][0], max(end, intervals[-1][1]))
    else:
        intervals.append((start, end))


def _trim(intervals: deque[tuple[float, float]], since: float) -> None:
    """Keep only what lies after `since`."""
    while intervals and intervals[0][1] <= since:
        intervals.popleft()
    if intervals and intervals[0][0] < since:
        intervals[0] = (since, intervals[0][1])


def _total(intervals: deque[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals)
