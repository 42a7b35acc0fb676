"""Exact SLA deadlines through the engine (SPEC §4, §10.10): records created, updated and paused on the
simulator's virtual clock, the due time read back from the engine's clocks, to the second.

Calendars (tests/sla/conftest.py): ny-office Mon–Fri 09:00–18:00 New York with 19 January 2026 a
holiday; us-public the same with US public holidays; shanghai Mon–Fri 09:00–12:00 and 13:00–18:00;
24x7 and night-desk (01:00–03:00) calendars in New York and Berlin for the daylight-saving nights.
Targets: priority high → first_response 2h, resolution 8h; otherwise 8h and 40h.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

NY = ZoneInfo("America/New_York")
SH = ZoneInfo("Asia/Shanghai")
BER = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def at(zone: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=zone)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=UTC)


# (id, calendar, created at, priority, clock, target override, expected due)
CREATED_CASES: list[tuple[str, str, dt.datetime, str, str, str | None, dt.datetime]] = [
    ("friday-17:30-plus-2h-is-monday-10:30", "ny-office", at(NY, 2026, 1, 9, 17, 30), "high", "first_response",
     None, at(NY, 2026, 1, 12, 10, 30)),
    ("inside-hours", "ny-office", at(NY, 2026, 1, 12, 10), "high", "first_response", None, at(NY, 2026, 1, 12, 12)),
    ("before-opening-counts-from-09:00", "ny-office", at(NY, 2026, 1, 12, 7), "high", "first_response", None,
     at(NY, 2026, 1, 12, 11)),
    ("created-on-saturday", "ny-office", at(NY, 2026, 1, 10, 10), "high", "first_response", None,
     at(NY, 2026, 1, 12, 11)),
    ("a-full-day-is-due-at-closing-not-next-morning", "ny-office", at(NY, 2026, 1, 12, 9), "high", "resolution",
     "9h", at(NY, 2026, 1, 12, 18)),
    ("holiday-monday-in-between", "ny-office", at(NY, 2026, 1, 16, 17, 30), "high", "first_response", None,
     at(NY, 2026, 1, 20, 10, 30)),
    ("us-public-holiday-observed-friday", "us-public", at(NY, 2026, 7, 2, 17), "high", "first_response", None,
     at(NY, 2026, 7, 6, 10)),
    ("default-target-40h-spans-a-week", "ny-office", at(NY, 2026, 1, 5, 9), "normal", "resolution", None,
     at(NY, 2026, 1, 9, 13)),
    ("lunch-break-between-two-intervals", "shanghai", at(SH, 2026, 3, 2, 11), "high", "first_response", None,
     at(SH, 2026, 3, 2, 14)),
    ("created-during-lunch", "shanghai", at(SH, 2026, 3, 2, 12, 30), "high", "first_response", "1h",
     at(SH, 2026, 3, 2, 14)),
    ("friday-evening-shanghai", "shanghai", at(SH, 2026, 3, 6, 17, 30), "high", "first_response", None,
     at(SH, 2026, 3, 9, 10, 30)),
    ("spring-forward-new-york-24x7-is-23h-day", "ny-24x7", at(NY, 2026, 3, 7, 12), "high", "resolution", "24h",
     at(NY, 2026, 3, 8, 13)),
    ("fall-back-new-york-24x7-is-25h-day", "ny-24x7", at(NY, 2026, 10, 31, 12), "high", "resolution", "24h",
     at(NY, 2026, 11, 1, 11)),
    ("spring-forward-night-desk-has-one-hour", "ny-night", at(NY, 2026, 3, 7, 12), "high", "resolution", "3h",
     utc(2026, 3, 9, 7)),
    ("fall-back-night-desk-has-three-hours", "ny-night", at(NY, 2026, 10, 31, 12), "high", "resolution", "3h",
     utc(2026, 11, 1, 8)),
    ("fall-back-night-desk-1h-ends-in-the-repeated-hour", "ny-night", at(NY, 2026, 10, 31, 12), "high",
     "resolution", "1h", utc(2026, 11, 1, 6)),  # 01:00 EST, the second 01:00 of the night
    ("spring-forward-berlin-24x7", "berlin-24x7", at(BER, 2026, 3, 28, 12), "high", "resolution", "24h",
     at(BER, 2026, 3, 29, 13)),
    ("fall-back-berlin-24x7", "berlin-24x7", at(BER, 2026, 10, 24, 12), "high", "resolution", "24h",
     at(BER, 2026, 10, 25, 11)),
    ("berlin-office-over-the-dst-weekend", "berlin-office", at(BER, 2026, 3, 27, 16), "high", "first_response",
     None, utc(2026, 3, 30, 8)),
]


@pytest.mark.parametrize(("calendar", "created", "priority", "clock", "target", "due"),
                         [c[1:] for c in CREATED_CASES], ids=[c[0] for c in CREATED_CASES])
def test_due_time_of_a_new_case(sla_world: Callable[..., Any], make_policy: Callable[..., dict[str, Any]],
                                calendar: str, created: dt.datetime, priority: str, clock: str,
                                target: str | None, due: dt.datetime) -> None:
    targets = None
    if target is not None:
        targets = [{"when": {"field": "priority", "op": "in", "value": ["high"]}, clock: target},
                   {"default": True, clock: "40h"}]
    pol = make_policy(calendar, **({"targets": targets} if targets else {}))
    world = sla_world(pol, created)
    world.create("t-1", priority=priority)
    assert world.due("t-1", clock) == due
    [started] = [e for e in world.sla_trace("started") if e.detail["clock"] == clock]
    assert started.at == created.astimezone(UTC)
    # Run to one second before the due time: not breached; at the due time: breached, exactly then.
    world.run_until(due - dt.timedelta(seconds=1))
    assert world.clock("t-1", clock)["breached"] is False
    world.run_until(due)
    view = world.clock("t-1", clock)
    assert view["breached"] is True
    assert view["breached_at"] == due.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_pause_over_a_weekend_carries_the_remaining_time(sla_world: Callable[..., Any],
                                                         make_policy: Callable[..., dict[str, Any]]) -> None:
    world = sla_world(make_policy("ny-office"), at(NY, 2026, 1, 9, 10))
    world.create("t-1", priority="high")  # resolution 8h: due Friday 18:00
    assert world.due("t-1", "resolution") == at(NY, 2026, 1, 9, 18)
    world.at(at(NY, 2026, 1, 9, 15)).update("t-1", status="pending_customer")  # 5h elapsed, 3h left
    view = world.clock("t-1", "resolution")
    assert (view["status"], view["due_at"], view["elapsed_seconds"]) == ("paused", None, 5 * 3600)
    world.at(at(NY, 2026, 1, 10, 12)).update("t-1", status="in_progress")  # resumed on Saturday: closed
    assert world.due("t-1", "resolution") == at(NY, 2026, 1, 12, 12)
    world.run_until(at(NY, 2026, 1, 12, 11, 59))
    assert world.clock("t-1", "resolution")["breached"] is False
    assert [e.status for e in world.sla_trace() if e.detail["clock"] == "resolution"] == \
        ["started", "paused", "resumed"]


def test_pause_and_resume_within_a_day(sla_world: Callable[..., Any],
                                       make_policy: Callable[..., dict[str, Any]]) -> None:
    world = sla_world(make_policy("shanghai"), at(SH, 2026, 3, 2, 9))
    world.create("t-1", priority="high")  # 8h: due Monday 18:00
    world.at(at(SH, 2026, 3, 2, 10)).update("t-1", status="pending_customer")
    world.at(at(SH, 2026, 3, 2, 14, 30)).update("t-1", status="in_progress")  # 1h done, 7h left from 14:30
    # 14:30-18:00 is 3.5h, Tuesday 09:00-12:00 3h, and the last half hour after lunch.
    assert world.due("t-1", "resolution") == at(SH, 2026, 3, 3, 13, 30)


def test_priority_raised_midway_keeps_elapsed_and_moves_the_due_time(
        sla_world: Callable[..., Any], make_policy: Callable[..., dict[str, Any]]) -> None:
    world = sla_world(make_policy("ny-office", warn_before="30m"), at(NY, 2026, 1, 12, 9))
    world.create("t-1")
    assert world.due("t-1", "first_response") == at(NY, 2026, 1, 12, 17)
    world.at(at(NY, 2026, 1, 12, 10)).update("t-1", priority="high")
    view = world.clock("t-1", "first_response")
    assert view["target"] == "2h" and view["elapsed_seconds"] == 3600
    assert world.due("t-1", "first_response") == at(NY, 2026, 1, 12, 11)
    assert view["warn_at"] == "2026-01-12T15:30:00Z"  # re-armed for the new target: 10:30 New York
    world.run_until(at(NY, 2026, 1, 12, 12))
    view = world.clock("t-1", "first_response")
    assert (view["warned_at"], view["breached_at"]) == ("2026-01-12T15:30:00Z", "2026-01-12T16:00:00Z")
    [retargeted] = [e for e in world.sla_trace("retargeted") if e.detail["clock"] == "first_response"]
    assert (retargeted.detail["previous"], retargeted.detail["target"]) == ("8h", "2h")


def test_priority_raised_past_the_new_target_breaches_at_once(
        sla_world: Callable[..., Any], make_policy: Callable[..., dict[str, Any]]) -> None:
    on_breach = [{"action": "log", "message": "{{ sla.clock }} breached, {{ sla.elapsed }} elapsed"}]
    world = sla_world(make_policy("ny-office", warn_before="30m", on_breach=on_breach), at(NY, 2026, 1, 12, 9))
    world.create("t-1")
    world.at(at(NY, 2026, 1, 12, 12)).update("t-1", priority="high")  # 3h elapsed > 2h
    view = world.clock("t-1", "first_response")
    assert view["breached"] is True
    assert view["due_at"] == "2026-01-12T16:00:00Z"  # where 2h were reached: 11:00 New York
    assert view["breached_at"] == "2026-01-12T17:00:00Z"  # noticed at the change, 12:00 New York
    assert view["warned_at"] is None  # late for the new target: the breach says it all
    # resolution was re-targeted too (40h → 8h) but 3h < 8h: only first_response breached.
    assert world.due("t-1", "resolution") == at(NY, 2026, 1, 12, 17)
    assert [r.trigger["clock"] for r in world.runs("sla:support-sla:on_breach")] == ["first_response"]
    assert [e.at for e in world.sla_trace("breached")] == [at(NY, 2026, 1, 12, 12).astimezone(UTC)]
    assert "first_response breached, 3h elapsed" in world.timeline("t-1")


def test_priority_lowered_moves_the_due_time_later(sla_world: Callable[..., Any],
                                                   make_policy: Callable[..., dict[str, Any]]) -> None:
    world = sla_world(make_policy("ny-office", warn_before="30m"), at(NY, 2026, 1, 12, 9))
    world.create("t-1", priority="high")
    world.at(at(NY, 2026, 1, 12, 10)).update("t-1", priority="normal")
    assert world.due("t-1", "first_response") == at(NY, 2026, 1, 12, 17)
    assert world.clock("t-1", "first_response")["warn_at"] == "2026-01-12T21:30:00Z"


def test_warn_before_a_duration_across_the_lunch_break(sla_world: Callable[..., Any],
                                                       make_policy: Callable[..., dict[str, Any]]) -> None:
    world = sla_world(make_policy("shanghai", warn_before="30m"), at(SH, 2026, 3, 2, 10, 30))
    world.create("t-1", priority="high")  # 2h: 10:30-12:00 and 13:00-13:30
    assert world.due("t-1", "first_response") == at(SH, 2026, 3, 2, 13, 30)
    # 1h30m of business time is complete at 12:00, when the morning interval ends.
    assert world.clock("t-1", "first_response")["warn_at"] == "2026-03-02T04:00:00Z"


def test_warn_before_a_percentage(sla_world: Callable[..., Any], make_policy: Callable[..., dict[str, Any]]) -> None:
    targets = [{"default": True, "first_response": "10h"}]
    world = sla_world(make_policy("ny-office", targets=targets, clocks={}, warn_before="80%"),
                      at(NY, 2026, 1, 12, 9))
    world.create("t-1")
    assert world.due("t-1", "first_response") == at(NY, 2026, 1, 13, 10)
    assert world.clock("t-1", "first_response")["warn_at"] == "2026-01-12T22:00:00Z"  # 8h: Monday 17:00


def test_escalation_levels_after_the_breach(sla_world: Callable[..., Any],
                                            make_policy: Callable[..., dict[str, Any]]) -> None:
    escalations = [
        {"after": "2h", "actions": [{"action": "notify", "to": "support", "message": "L1 {{ sla.clock }}"}]},
        {"after": "1d", "actions": [{"action": "notify", "to": "wang.fang", "message": "L2 {{ sla.elapsed }}"}]},
    ]
    world = sla_world(make_policy("ny-office", escalations=escalations), at(NY, 2026, 1, 12, 9))
    world.create("t-1", priority="high")  # first_response breaches Monday 11:00
    world.run_until(at(NY, 2026, 1, 16, 18))
    sent = [(when, m.text, m.to) for when, m in world.sent() if m.text and m.text.startswith("L")]
    team = ["li.lei", "han.meimei"]
    assert sent == [
        # first_response breached Monday 11:00; resolution (8h) Monday 17:00.
        (at(NY, 2026, 1, 12, 13).astimezone(UTC), "L1 first_response", team),
        (at(NY, 2026, 1, 13, 10).astimezone(UTC), "L1 resolution", team),
        # Level 2 is 24 business hours after the breach: Wednesday 17:00 (26h elapsed), Thursday 14:00 (32h).
        (at(NY, 2026, 1, 14, 17).astimezone(UTC), "L2 26h", ["wang.fang"]),
        (at(NY, 2026, 1, 15, 14).astimezone(UTC), "L2 32h", ["wang.fang"]),
    ]
    assert world.clock("t-1", "first_response")["escalations"] == [1, 2]
