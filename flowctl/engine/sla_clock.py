"""SLA clock math (SPEC §4, §10.10): pure functions over a `ClockState`, no store, no engine.

The model
---------
One `ClockState` per (policy, clock, record). A clock measures *business time*
in its policy's calendar (`BusinessCalendar.always()` when the policy has none,
where business time is elapsed time).

- **Segments.** A clock runs in segments: `start`/`resume` open one at
  `since`, `pause`/`stop`/`cancel` close it into `segments` (start, end,
  business seconds). `elapsed_seconds` is the business time of the closed
  segments, i.e. accumulated up to `since`; `elapsed_at(state, now, cal)`
  adds the open segment. Keeping the segments lets every threshold instant be
  exact, even one crossed before a pause.
- **Target.** `select_target` picks the first target whose `when` holds for
  the record (a `default: true` target only when none does). `target_seconds`
  are business seconds: with a calendar `1h` is 3600 business seconds and `1d`
  is 24 business hours (§10.10); without one they are elapsed seconds.
- **Thresholds.** A threshold is an amount of elapsed business time: the
  breach at `target_seconds`; the warning at `target - warn_before`
  (`warn_before: 30m`, i.e. due minus 30 business minutes) or at
  `ceil(target × p / 100)` (`warn_before: 80%`); escalation level *i* at
  `target + after_i` (`escalations: [{after: 2h}]`: business time after the
  breach). The *instant* of a threshold is where the elapsed business time
  reaches it: `due_at` and `warn_at`. While a clock is paused a threshold it
  has not reached has no instant (None); once reached it keeps its instant
  whatever the status.
- **Firing.** `advance(state, now, cal)` returns the state as of `now` and the
  warning / breach / escalation events that became due, each at most once per
  target (`at` is the threshold instant; `late` when that is before `now`,
  e.g. after a runner outage). The engine calls it when the clock's timer
  (`next_wakeup`) fires and before every transition. A breached clock keeps
  counting; `overdue_seconds` is the business time past the target.
- **Transitions.** `pause`, `resume`, `stop`, `cancel`, `retarget`. A stopped
  or cancelled clock stays so (further transitions are no-ops). A cancelled
  clock fires nothing; a stopped one may still fire a breach it reached
  before stopping (a late timer). `retarget` keeps the elapsed time, computes
  the new due time, and re-arms warning and breach; when the clock is already
  past the new target the breach fires at once (its instant is the retarget
  time) and no warning is sent for that target.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowctl.lang.calendars import BusinessCalendar
from flowctl.lang.durations import Duration
from flowctl.resources.models import SlaPolicy, SlaTarget

__all__ = [
    "ClockEvent",
    "ClockSegment",
    "ClockState",
    "ClockStatus",
    "advance",
    "cancel",
    "due_at",
    "elapsed_at",
    "next_wakeup",
    "overdue_at",
    "pause",
    "resume",
    "retarget",
    "select_target",
    "start",
    "stop",
    "target_label",
    "target_seconds",
    "template_view",
    "threshold_at",
    "warn_at",
    "warn_threshold",
]

ClockStatus = Literal["running", "paused", "stopped", "cancelled"]


class ClockSegment(BaseModel):
    """A closed running segment `[start, end)` and the business seconds in it."""

    model_config = ConfigDict(extra="forbid")

    start: dt.datetime
    end: dt.datetime
    seconds: int


class ClockState(BaseModel):
    """The durable state of one SLA clock for one record."""

    model_config = ConfigDict(extra="forbid")

    policy: str
    clock: str
    record: str = Field(description="the record key the engine uses, e.g. case/t-1")
    calendar: str | None = Field(None, description="the policy's calendar name; None for 24x7")
    status: ClockStatus = "running"
    started_at: dt.datetime
    since: dt.datetime | None = Field(description="start of the running segment; None unless running")
    elapsed_seconds: int = Field(0, description="business seconds of the closed segments (up to `since`)")
    segments: list[ClockSegment] = Field(default_factory=list)
    target_index: int = Field(description="index of the selected target in the policy's `targets`")
    target_name: str = Field(description="targets[i], or `default`")
    target_duration: str = Field(description="the target as written, e.g. 2h")
    target_seconds: int = Field(description="business seconds until the breach")
    warn_before: str | None = Field(None, description="the policy's warn_before: a duration or a percentage")
    escalations_after: list[int] = Field(
        default_factory=list, description="business seconds after the breach"
    )
    retargeted_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    warn_at: dt.datetime | None = None
    warned: bool = False
    warned_at: dt.datetime | None = None
    breached: bool = False
    breached_at: dt.datetime | None = None
    escalated: list[int] = Field(default_factory=list, description="escalation levels already fired")
    overdue_seconds: int = 0
    stopped_at: dt.datetime | None = None
    updated_at: dt.datetime


class ClockEvent(BaseModel):
    """Something the engine must act on: run `on_warning`, `on_breach` or an escalation level."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["warning", "breach", "escalation"]
    at: dt.datetime = Field(description="the threshold instant (the retarget time for an immediate breach)")
    late: bool = Field(description="the threshold was reached before the instant it was noticed")
    level: int | None = Field(None, description="the escalation level (index in `escalations`)")


# --------------------------------------------------------------------------- targets


def select_target(
    policy: SlaPolicy, matches: Callable[[Any], bool], clock: str | None = None
) -> tuple[int, SlaTarget] | None:
    """The first target whose `when` holds (`matches(condition)`), else the `default: true` target.

    With `clock`, targets that give no duration for that clock are passed over,
    so every clock gets the first matching target that speaks about it.
    None when nothing applies (the clock does not run).
    """
    default: tuple[int, SlaTarget] | None = None
    for index, target in enumerate(policy.targets):
        if clock is not None and clock not in target.durations:
            continue
        if target.when is None:
            if target.default and default is None:
                default = (index, target)
            continue
        if matches(target.when):
            return index, target
    return default


def target_label(index: int, target: SlaTarget) -> str:
    return "default" if target.default else f"targets[{index}]"


def target_seconds(target: SlaTarget, clock: str) -> int:
    """Business seconds of `clock` in `target` (`1d` = 24 business hours, §10.10)."""
    return Duration.parse(target.durations[clock]).nominal_seconds()


def warn_threshold(state: ClockState) -> int | None:
    """Elapsed business seconds at which the warning fires; None without `warn_before`."""
    spec = state.warn_before
    if spec is None:
        return None
    if spec.endswith("%"):
        return max(0, math.ceil(Decimal(spec[:-1]) * state.target_seconds / 100))
    return max(0, state.target_seconds - Duration.parse(spec).nominal_seconds())


# --------------------------------------------------------------------------- measuring


def elapsed_at(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> int:
    """Business seconds counted by the clock up to `now`."""
    if state.status == "running" and state.since is not None and now > state.since:
        return state.elapsed_seconds + calendar.between(state.since, now)
    return state.elapsed_seconds


def overdue_at(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> int:
    """Business seconds past the target at `now` (0 before the breach)."""
    return max(0, elapsed_at(state, now, calendar) - state.target_seconds)


def threshold_at(state: ClockState, threshold: int, calendar: BusinessCalendar) -> dt.datetime | None:
    """The instant the clock's elapsed business time reaches `threshold` seconds.

    Exact for a threshold reached in a closed segment (it is found inside that
    segment) or ahead in the running one; None when the clock is not running
    and has not reached it.
    """
    if threshold <= 0:
        return calendar.next_open(state.started_at)
    counted = 0
    for seg in state.segments:
        if counted + seg.seconds >= threshold:
            return calendar.add(seg.start, threshold - counted)
        counted += seg.seconds
    if state.status == "running" and state.since is not None:
        return calendar.add(state.since, threshold - state.elapsed_seconds)
    return None


def due_at(state: ClockState, calendar: BusinessCalendar) -> dt.datetime | None:
    return threshold_at(state, state.target_seconds, calendar)


def warn_at(state: ClockState, calendar: BusinessCalendar) -> dt.datetime | None:
    threshold = warn_threshold(state)
    return None if threshold is None else threshold_at(state, threshold, calendar)


def next_wakeup(state: ClockState, calendar: BusinessCalendar) -> dt.datetime | None:
    """When the engine should next call `advance` for this clock (a timer); None when nothing is pending."""
    if state.status != "running":
        return None
    pending: list[int] = []
    threshold = warn_threshold(state)
    if threshold is not None and not state.warned:
        pending.append(threshold)
    if not state.breached:
        pending.append(state.target_seconds)
    else:
        pending += [
            state.target_seconds + after
            for level, after in enumerate(state.escalations_after)
            if level not in state.escalated
        ]
    instants = [i for i in (threshold_at(state, t, calendar) for t in pending) if i is not None]
    return min(instants, default=None)


def _refresh(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> ClockState:
    """Recompute the derived instants; keep a known instant when the new one is unknown (stopped clocks)."""
    due = due_at(state, calendar)
    warn = warn_at(state, calendar)
    if state.status in ("stopped", "cancelled"):
        due = due or state.due_at
        warn = warn or state.warn_at
    return state.model_copy(
        update={
            "due_at": due,
            "warn_at": warn,
            "overdue_seconds": overdue_at(state, now, calendar),
            "updated_at": now,
        }
    )


def _close_segment(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> dict[str, Any]:
    if state.status != "running" or state.since is None:
        return {}
    end = max(now, state.since)
    seconds = calendar.between(state.since, end)
    return {
        "segments": [*state.segments, ClockSegment(start=state.since, end=end, seconds=seconds)],
        "elapsed_seconds": state.elapsed_seconds + seconds,
        "since": None,
    }


# --------------------------------------------------------------------------- transitions


def start(
    policy: SlaPolicy,
    clock: str,
    record: str,
    target: tuple[int, SlaTarget],
    now: dt.datetime,
    calendar: BusinessCalendar,
) -> ClockState:
    """A running clock from `now` with the given (index, target)."""
    index, chosen = target
    state = ClockState(
        policy=policy.name,
        clock=clock,
        record=record,
        calendar=policy.calendar,
        status="running",
        started_at=now,
        since=now,
        target_index=index,
        target_name=target_label(index, chosen),
        target_duration=chosen.durations[clock],
        target_seconds=target_seconds(chosen, clock),
        warn_before=policy.warn_before,
        escalations_after=[Duration.parse(e.after).nominal_seconds() for e in policy.escalations],
        updated_at=now,
    )
    return _refresh(state, now, calendar)


def pause(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> ClockState:
    if state.status != "running":
        return state
    paused = state.model_copy(update={**_close_segment(state, now, calendar), "status": "paused"})
    return _refresh(paused, now, calendar)


def resume(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> ClockState:
    if state.status != "paused":
        return state
    return _refresh(state.model_copy(update={"status": "running", "since": now}), now, calendar)


def stop(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> ClockState:
    """Stop for good (the response was given, the case resolved). Call `advance` first."""
    if state.status in ("stopped", "cancelled"):
        return state
    closed = state.model_copy(
        update={**_close_segment(state, now, calendar), "status": "stopped", "stopped_at": now}
    )
    return _refresh(closed, now, calendar)


def cancel(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> ClockState:
    """`applies_when` turned false: the clock ends and fires nothing more."""
    if state.status in ("stopped", "cancelled"):
        return state
    closed = state.model_copy(
        update={**_close_segment(state, now, calendar), "status": "cancelled", "stopped_at": now}
    )
    return _refresh(closed, now, calendar)


def retarget(
    state: ClockState,
    target: tuple[int, SlaTarget],
    now: dt.datetime,
    calendar: BusinessCalendar,
) -> ClockState:
    """Switch to another target, keeping the elapsed time; re-arms warning and breach (§10.10).

    Call `advance` first (so a breach of the old target is not lost); call it
    again after: when the clock is already past the new target it reports the
    breach at once.
    """
    index, chosen = target
    if state.status in ("stopped", "cancelled") or index == state.target_index:
        return state
    new_seconds = target_seconds(chosen, state.clock)
    elapsed = elapsed_at(state, now, calendar)
    past_target = elapsed >= new_seconds
    moved = state.model_copy(
        update={
            "target_index": index,
            "target_name": target_label(index, chosen),
            "target_duration": chosen.durations[state.clock],
            "target_seconds": new_seconds,
            "retargeted_at": now,
            # Already late for the new target: the breach says it all, a warning would only be noise.
            "warned": past_target,
            "warned_at": None,
            "breached": False,
            "breached_at": None,
            "escalated": [],
        }
    )
    return _refresh(moved, now, calendar)


def advance(
    state: ClockState, now: dt.datetime, calendar: BusinessCalendar
) -> tuple[ClockState, list[ClockEvent]]:
    """The state as of `now` and the events that became due since the last call, in order."""
    state = _refresh(state, now, calendar)
    if state.status == "cancelled":
        return state, []
    elapsed = elapsed_at(state, now, calendar)
    events: list[ClockEvent] = []
    update: dict[str, Any] = {}
    floor = state.retargeted_at

    def instant(threshold: int) -> dt.datetime:
        at = threshold_at(state, threshold, calendar) or now
        # A threshold crossed before a target change is noticed at the change ("breaches at once").
        return max(at, floor) if floor is not None else at

    threshold = warn_threshold(state)
    if threshold is not None and not state.warned and elapsed >= threshold:
        at = instant(threshold)
        update |= {"warned": True, "warned_at": at}
        events.append(ClockEvent(kind="warning", at=at, late=at < now))
    breached = state.breached
    if not breached and elapsed >= state.target_seconds:
        at = instant(state.target_seconds)
        update |= {"breached": True, "breached_at": at}
        events.append(ClockEvent(kind="breach", at=at, late=at < now))
        breached = True
    if breached:
        fired = list(state.escalated)
        for level, after in enumerate(state.escalations_after):
            if level not in fired and elapsed >= state.target_seconds + after:
                at = instant(state.target_seconds + after)
                fired.append(level)
                events.append(ClockEvent(kind="escalation", at=at, late=at < now, level=level))
        if fired != state.escalated:
            update["escalated"] = fired
    return (state.model_copy(update=update) if update else state), events


def template_view(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> dict[str, Any]:
    """The `sla` variable of SLA actions (§10.3): clock, target, due_at, elapsed, and a few more."""
    return {
        "policy": state.policy,
        "clock": state.clock,
        "target": state.target_duration,
        "target_name": state.target_name,
        "status": state.status,
        "due_at": state.due_at.isoformat() if state.due_at else None,
        "elapsed": elapsed_at(state, now, calendar),
        "overdue": overdue_at(state, now, calendar),
        "breached": state.breached,
    }
