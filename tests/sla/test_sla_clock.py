"""SLA clock math with exact timestamps (SPEC §4, §10.10).

Calendar: Mon–Fri 09:00–17:00 America/New_York (8 business hours a day).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowctl.engine import sla_clock as sc
from flowctl.lang.calendars import BusinessCalendar
from flowctl.lang.conditions import evaluate, record_context
from flowctl.resources.models import Calendar, SlaPolicy

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
H = 3600
CAL = BusinessCalendar.from_model(
    Calendar.model_validate(
        {
            "kind": "calendar",
            "name": "ny-hours",
            "timezone": "America/New_York",
            "weekly": {"mon-fri": ["09:00-17:00"]},
        }
    )
)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, sec, tzinfo=NY)


def policy(targets: list[dict[str, Any]], **extra: Any) -> SlaPolicy:
    return SlaPolicy.model_validate(
        {
            "kind": "sla_policy",
            "name": "support-sla",
            "object": "case",
            "calendar": "ny-hours",
            "targets": targets,
            **extra,
        }
    )


SUPPORT = policy(
    [
        {
            "when": {"all": [{"field": "tier", "op": "eq", "value": "gold"}, {"field": "priority", "op": "eq", "value": "high"}]},
            "first_response": "1h",
            "resolution": "8h",
        },
        {"when": {"field": "priority", "op": "eq", "value": "high"}, "first_response": "2h", "resolution": "2d"},
        {"default": True, "first_response": "8h", "resolution": "5d"},
    ]
)  # fmt: skip


def matcher(record: dict[str, Any]) -> Any:
    ctx = record_context(record, now=dt.datetime(2026, 3, 2, tzinfo=UTC))
    return lambda condition: evaluate(condition, ctx)


def started(p: SlaPolicy, clock: str, record: dict[str, Any], at: dt.datetime) -> sc.ClockState:
    target = sc.select_target(p, matcher(record), clock)
    assert target is not None
    return sc.start(p, clock, "case/t-1", target, at, CAL)


# --------------------------------------------------------------------------- targets


@pytest.mark.parametrize(
    ("record", "index", "name", "seconds"),
    [
        ({"tier": "gold", "priority": "high"}, 0, "targets[0]", 1 * H),
        ({"tier": "silver", "priority": "high"}, 1, "targets[1]", 2 * H),
        ({"tier": "gold", "priority": "low"}, 2, "default", 8 * H),
        ({}, 2, "default", 8 * H),
    ],
)
def test_select_target_first_match_wins(record: dict[str, Any], index: int, name: str, seconds: int) -> None:
    state = started(SUPPORT, "first_response", record, ny(2026, 3, 2, 9))
    assert (state.target_index, state.target_name, state.target_seconds) == (index, name, seconds)


def test_default_only_when_nothing_matches_and_clock_filter() -> None:
    p = policy(
        [
            {"default": True, "resolution": "8h"},
            {"when": {"field": "priority", "op": "eq", "value": "high"}, "resolution": "2h"},
            {"when": {"field": "priority", "op": "eq", "value": "high"}, "first_response": "30m"},
        ]
    )
    hit = sc.select_target(p, matcher({"priority": "high"}))
    assert hit is not None and hit[0] == 1
    fr = sc.select_target(p, matcher({"priority": "high"}), "first_response")
    assert fr is not None and fr[0] == 2
    assert sc.select_target(p, matcher({"priority": "low"}), "first_response") is None


def test_days_are_24_business_hours() -> None:
    # 5d = 120 business hours = 15 days of 8 hours: Mon 2 March 09:00 → Fri 20 March 17:00.
    state = started(SUPPORT, "resolution", {}, ny(2026, 3, 2, 9))
    assert state.target_seconds == 120 * H
    assert state.due_at == ny(2026, 3, 20, 17)


def test_without_calendar_business_time_is_elapsed_time() -> None:
    p = SlaPolicy.model_validate(
        {
            "kind": "sla_policy",
            "name": "p",
            "object": "case",
            "targets": [{"default": True, "resolution": "1d"}],
        }
    )
    always = BusinessCalendar.always()
    target = sc.select_target(p, lambda c: False)
    assert target is not None
    state = sc.start(p, "resolution", "case/t-1", target, dt.datetime(2026, 3, 7, 12, tzinfo=UTC), always)
    assert state.calendar is None
    assert state.due_at == dt.datetime(2026, 3, 8, 12, tzinfo=UTC)


# --------------------------------------------------------------------------- pause / resume


@pytest.mark.parametrize(
    ("resume_at", "due"),
    [
        (ny(2026, 3, 9, 9), ny(2026, 3, 9, 12, 30)),  # only Friday 16:30–17:00 was lost
        (ny(2026, 3, 9, 10), ny(2026, 3, 9, 13, 30)),  # and Monday 09:00–10:00
        (ny(2026, 3, 7, 11), ny(2026, 3, 9, 12, 30)),  # resumed on Saturday: nothing counts until Monday
    ],
)
def test_pause_over_a_weekend(resume_at: dt.datetime, due: dt.datetime) -> None:
    p = policy([{"default": True, "resolution": "4h"}])
    state = started(p, "resolution", {}, ny(2026, 3, 6, 16))  # Friday 16:00 EST
    assert state.due_at == ny(2026, 3, 9, 12)  # 1h Friday + 3h Monday (EDT by then)

    state = sc.pause(state, ny(2026, 3, 6, 16, 30), CAL)
    assert state.status == "paused" and state.since is None
    assert state.elapsed_seconds == 1800
    assert state.due_at is None  # unknown until resumed
    assert sc.elapsed_at(state, ny(2026, 3, 9, 11), CAL) == 1800
    assert sc.next_wakeup(state, CAL) is None
    assert sc.pause(state, ny(2026, 3, 6, 16, 45), CAL) == state  # already paused

    state = sc.resume(state, resume_at, CAL)
    assert state.status == "running"
    assert state.due_at == due
    assert [(s.start, s.end, s.seconds) for s in state.segments] == [
        (ny(2026, 3, 6, 16), ny(2026, 3, 6, 16, 30), 1800)
    ]
    assert sc.elapsed_at(state, due, CAL) == 4 * H


# --------------------------------------------------------------------------- target changes


def test_priority_raised_midway_moves_the_due_time() -> None:
    p = policy(
        [
            {"when": {"field": "priority", "op": "eq", "value": "high"}, "resolution": "4h"},
            {"default": True, "resolution": "8h"},
        ],
        warn_before="30m",
    )
    state = started(p, "resolution", {"priority": "normal"}, ny(2026, 3, 2, 9))
    assert (state.due_at, state.warn_at) == (ny(2026, 3, 2, 17), ny(2026, 3, 2, 16, 30))

    at = ny(2026, 3, 2, 11)
    state, events = sc.advance(state, at, CAL)
    assert events == []
    target = sc.select_target(p, matcher({"priority": "high"}), "resolution")
    assert target is not None
    state = sc.retarget(state, target, at, CAL)
    assert state.elapsed_seconds == 0 and sc.elapsed_at(state, at, CAL) == 2 * H  # kept
    assert (state.target_name, state.due_at, state.warn_at) == (
        "targets[0]",
        ny(2026, 3, 2, 13),
        ny(2026, 3, 2, 12, 30),
    )
    assert sc.next_wakeup(state, CAL) == ny(2026, 3, 2, 12, 30)

    state, events = sc.advance(state, ny(2026, 3, 2, 13), CAL)
    assert [(e.kind, e.at, e.late) for e in events] == [
        ("warning", ny(2026, 3, 2, 12, 30), True),
        ("breach", ny(2026, 3, 2, 13), False),
    ]


def test_retarget_past_the_new_target_breaches_at_once() -> None:
    p = policy(
        [
            {"when": {"field": "priority", "op": "eq", "value": "urgent"}, "resolution": "1h"},
            {"default": True, "resolution": "8h"},
        ],
        warn_before="80%",
    )
    state = started(p, "resolution", {}, ny(2026, 3, 2, 9))
    at = ny(2026, 3, 2, 11)
    state, _ = sc.advance(state, at, CAL)
    urgent = sc.select_target(p, matcher({"priority": "urgent"}))
    assert urgent is not None
    state = sc.retarget(state, urgent, at, CAL)
    assert state.due_at == ny(2026, 3, 2, 10)  # the instant the new target was reached
    state, events = sc.advance(state, at, CAL)
    assert [(e.kind, e.at, e.late) for e in events] == [("breach", at, False)]  # no warning for a late target
    assert state.breached and state.breached_at == at
    assert state.overdue_seconds == 1 * H

    # Lowered again: warning and breach are re-armed against the 8h target.
    default = sc.select_target(p, matcher({}))
    assert default is not None
    state = sc.retarget(state, default, ny(2026, 3, 2, 12), CAL)
    assert not state.breached and not state.warned and state.breached_at is None
    assert state.due_at == ny(2026, 3, 2, 17) and state.warn_at == ny(2026, 3, 2, 15, 24)
    assert state.overdue_seconds == 0


# --------------------------------------------------------------------------- warnings


def test_warn_at_80_percent_lands_on_closing_time() -> None:
    p = policy([{"default": True, "resolution": "10h"}], warn_before="80%")
    state = started(p, "resolution", {}, ny(2026, 3, 2, 9))
    assert sc.warn_threshold(state) == 8 * H
    assert state.warn_at == ny(2026, 3, 2, 17)  # the 8th business hour completes at closing time
    assert state.due_at == ny(2026, 3, 3, 11)
    assert sc.next_wakeup(state, CAL) == ny(2026, 3, 2, 17)

    state, events = sc.advance(state, ny(2026, 3, 2, 16, 59, 59), CAL)
    assert events == []
    state, events = sc.advance(state, ny(2026, 3, 2, 17), CAL)
    assert [(e.kind, e.at, e.late) for e in events] == [("warning", ny(2026, 3, 2, 17), False)]
    assert state.warned and state.warned_at == ny(2026, 3, 2, 17)
    assert sc.next_wakeup(state, CAL) == ny(2026, 3, 3, 11)
    _, again = sc.advance(state, ny(2026, 3, 2, 17, 30), CAL)
    assert again == []


def test_warn_before_duration_is_business_minutes_before_due() -> None:
    p = policy([{"default": True, "resolution": "2h"}], warn_before="30m")
    state = started(p, "resolution", {}, ny(2026, 3, 2, 16))
    assert state.due_at == ny(2026, 3, 3, 10)
    assert state.warn_at == ny(2026, 3, 3, 9, 30)  # not Monday 16:30 + nothing: business minutes


def test_fractional_percentage_rounds_up() -> None:
    p = policy([{"default": True, "resolution": "1h"}], warn_before="82.5%")
    state = started(p, "resolution", {}, ny(2026, 3, 2, 9))
    assert sc.warn_threshold(state) == 2970
    assert state.warn_at == ny(2026, 3, 2, 9, 49, 30)


def test_thresholds_crossed_in_closed_segments_keep_exact_instants() -> None:
    p = policy([{"default": True, "resolution": "2h"}], warn_before="80%")  # warn at 96 minutes
    state = started(p, "resolution", {}, ny(2026, 3, 2, 9))
    state = sc.pause(state, ny(2026, 3, 2, 10), CAL)
    state = sc.resume(state, ny(2026, 3, 2, 11), CAL)
    state = sc.pause(state, ny(2026, 3, 2, 12, 15), CAL)  # 135 business minutes, no advance in between
    assert state.due_at == ny(2026, 3, 2, 12) and state.warn_at == ny(2026, 3, 2, 11, 36)
    state, events = sc.advance(state, ny(2026, 3, 2, 12, 30), CAL)
    assert [(e.kind, e.at, e.late) for e in events] == [
        ("warning", ny(2026, 3, 2, 11, 36), True),
        ("breach", ny(2026, 3, 2, 12), True),
    ]
    assert state.overdue_seconds == 15 * 60


# --------------------------------------------------------------------------- breach and overdue


ESCALATING = policy(
    [{"default": True, "first_response": "2h"}],
    escalations=[
        {"after": "2h", "actions": [{"action": "notify", "to": "wang.fang", "message": "still late"}]},
        {"after": "1d", "actions": [{"action": "notify", "to": "boss", "message": "very late"}]},
    ],
)


def test_breach_then_overdue_counting() -> None:
    state = started(ESCALATING, "first_response", {}, ny(2026, 3, 2, 16))
    assert state.due_at == ny(2026, 3, 3, 10)
    assert state.escalations_after == [2 * H, 24 * H]

    state, events = sc.advance(state, ny(2026, 3, 3, 10), CAL)
    assert [(e.kind, e.at, e.late) for e in events] == [("breach", ny(2026, 3, 3, 10), False)]
    assert state.breached and state.breached_at == ny(2026, 3, 3, 10) and state.overdue_seconds == 0
    state, events = sc.advance(state, ny(2026, 3, 3, 10), CAL)
    assert events == []  # once

    assert sc.next_wakeup(state, CAL) == ny(2026, 3, 3, 12)  # first escalation: 2 business hours later
    assert sc.overdue_at(state, ny(2026, 3, 3, 15), CAL) == 5 * H
    assert sc.overdue_at(state, ny(2026, 3, 4, 10), CAL) == 8 * H  # Tue 10–17 + Wed 9–10
    assert sc.overdue_at(state, ny(2026, 3, 7, 12), CAL) == 7 * H + 3 * 8 * H  # Saturday counts nothing

    state, events = sc.advance(state, ny(2026, 3, 3, 12), CAL)
    assert [(e.kind, e.level, e.at) for e in events] == [("escalation", 0, ny(2026, 3, 3, 12))]
    assert sc.next_wakeup(state, CAL) == ny(2026, 3, 6, 10)  # 24 business hours after the breach

    state = sc.stop(state, ny(2026, 3, 4, 10), CAL)
    assert state.status == "stopped" and state.overdue_seconds == 8 * H
    state, events = sc.advance(state, ny(2026, 3, 9, 12), CAL)
    assert events == [] and state.overdue_seconds == 8 * H and state.due_at == ny(2026, 3, 3, 10)
    assert sc.next_wakeup(state, CAL) is None
    assert sc.resume(state, ny(2026, 3, 9, 12), CAL) == state  # a stopped clock stays stopped


def test_late_timer_fires_everything_once_in_order() -> None:
    state = started(ESCALATING, "first_response", {}, ny(2026, 3, 2, 16))
    state, events = sc.advance(state, ny(2026, 3, 3, 15), CAL)  # the runner was down all morning
    assert [(e.kind, e.at, e.late) for e in events] == [
        ("breach", ny(2026, 3, 3, 10), True),
        ("escalation", ny(2026, 3, 3, 12), True),
    ]
    assert state.overdue_seconds == 5 * H


def test_stop_before_due_never_breaches() -> None:
    state = started(ESCALATING, "first_response", {}, ny(2026, 3, 2, 16))
    state = sc.stop(state, ny(2026, 3, 3, 9, 30), CAL)
    assert state.elapsed_seconds == 90 * 60
    assert state.due_at == ny(2026, 3, 3, 10)  # what it was when stopped
    state, events = sc.advance(state, ny(2026, 3, 10), CAL)
    assert events == [] and not state.breached


def test_stopped_after_an_unnoticed_breach_still_reports_it() -> None:
    state = started(ESCALATING, "first_response", {}, ny(2026, 3, 2, 16))
    state = sc.stop(state, ny(2026, 3, 3, 11), CAL)
    state, events = sc.advance(state, ny(2026, 3, 3, 11), CAL)
    assert [(e.kind, e.at, e.late) for e in events] == [("breach", ny(2026, 3, 3, 10), True)]


def test_cancelled_clock_fires_nothing() -> None:
    state = started(ESCALATING, "first_response", {}, ny(2026, 3, 2, 16))
    state = sc.cancel(state, ny(2026, 3, 3, 9), CAL)
    state, events = sc.advance(state, ny(2026, 3, 5), CAL)
    assert events == [] and state.status == "cancelled" and state.stopped_at == ny(2026, 3, 3, 9)
    assert sc.stop(state, ny(2026, 3, 5), CAL) == state


def test_state_round_trips_through_json() -> None:
    state = started(ESCALATING, "first_response", {}, ny(2026, 3, 2, 16))
    state = sc.pause(state, ny(2026, 3, 2, 16, 30), CAL)
    again = sc.ClockState.model_validate_json(state.model_dump_json())
    assert again == state
    assert sc.resume(again, ny(2026, 3, 3, 9), CAL).due_at == ny(2026, 3, 3, 10, 30)


def test_template_view() -> None:
    state = started(SUPPORT, "first_response", {"priority": "high"}, ny(2026, 3, 2, 9))
    view = sc.template_view(state, ny(2026, 3, 2, 10), CAL)
    assert view == {
        "policy": "support-sla",
        "clock": "first_response",
        "target": "2h",
        "target_name": "targets[1]",
        "status": "running",
        "due_at": "2026-03-02T16:00:00+00:00",
        "elapsed": 3600,
        "overdue": 0,
        "breached": False,
    }
