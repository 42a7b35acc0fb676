"""Time semantics that must be exact (SPEC §3, §10.5): calendar days vs hours, date triggers, late timers."""

from __future__ import annotations

import datetime as dt

from flowctl.engine.api import Engine
from flowctl.engine.store import StaticBundles
from flowctl.store.memory import MemoryStore

from .harness import T0, Harness, flow, make_bundle

UTC = dt.UTC
LOG = [{"id": "note", "action": "log", "message": "ran"}]


def _wait_end(wait: dict[str, str], tz: str, start: dt.datetime) -> dt.datetime:
    h = Harness(flow("f", [{"id": "w", "wait": wait}, {"id": "after", "action": "log", "message": "done"}],
                     timezone=tz), start=start)
    h.create("c-1")
    h.run("3d")
    run = h.run_of("f")
    assert run.status == "succeeded"
    return run.ended_at  # type: ignore[return-value]


def test_one_day_is_a_calendar_day_across_spring_forward() -> None:
    # 12:00 in Berlin on 28 March 2026 (UTC+1); clocks go forward that night.
    start = dt.datetime(2026, 3, 28, 11, 0, tzinfo=UTC)
    assert _wait_end({"for": "1d"}, "Europe/Berlin", start) == dt.datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    assert _wait_end({"for": "24h"}, "Europe/Berlin", start) == dt.datetime(2026, 3, 29, 11, 0, tzinfo=UTC)


def test_one_day_is_a_calendar_day_across_fall_back() -> None:
    start = dt.datetime(2026, 10, 24, 10, 0, tzinfo=UTC)  # 12:00 in Berlin (UTC+2)
    assert _wait_end({"for": "1d"}, "Europe/Berlin", start) == dt.datetime(2026, 10, 25, 11, 0, tzinfo=UTC)


def test_wait_until_a_templated_local_time() -> None:
    h = Harness(flow("f", [{"id": "w", "wait": {"until": "{{ record.birthday }}T09:00"}}, *LOG],
                     timezone="America/New_York"))
    h.create("c-1", birthday="2026-01-07")
    h.run("3d")
    assert h.run_of("f").ended_at == dt.datetime(2026, 1, 7, 14, 0, tzinfo=UTC)


def test_wait_calendar_until_the_next_business_hour() -> None:
    calendar = {"kind": "calendar", "name": "office", "timezone": "Europe/Berlin",
                "weekly": {"mon-fri": ["09:00-17:00"]}}
    friday_evening = dt.datetime(2026, 1, 9, 18, 0, tzinfo=UTC)  # 19:00 in Berlin
    h = Harness(calendar, flow("f", [{"id": "w", "wait": {"calendar": "office"}}, *LOG]), start=friday_evening)
    h.create("c-1")
    h.run("4d")
    assert h.run_of("f").ended_at == dt.datetime(2026, 1, 12, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin


def _date_flow(**trigger: object) -> dict[str, object]:
    return flow("birthday", [{"id": "greet", "action": "log", "message": "happy birthday"}],
                trigger={"type": "date", "field": "birthday", **trigger})


def test_date_trigger_with_offset_at_and_time_zone() -> None:
    h = Harness(_date_flow(offset="-1d", at="09:00", timezone="Europe/Berlin"))
    h.create("c-1", birthday="2026-01-10")
    h.run("10d")
    assert h.run_of("birthday").started_at == dt.datetime(2026, 1, 9, 8, 0, tzinfo=UTC)


def test_moving_the_date_moves_the_pending_start_exactly_once() -> None:
    h = Harness(_date_flow(at="10:00"))
    h.create("c-1", birthday="2026-01-08")
    h.at("1d").update("c-1", birthday="2026-01-12")
    h.run("20d")
    runs = [r for r in h.runs if r.flow == "birthday"]
    assert [r.started_at for r in runs] == [dt.datetime(2026, 1, 12, 10, 0, tzinfo=UTC)]
    assert [e.status for e in h.trace("date_plan")] == ["planned", "moved"]


def test_a_past_occurrence_is_skipped_and_clearing_the_date_drops_the_start() -> None:
    h = Harness(_date_flow())
    h.create("c-1", birthday="2026-01-01")  # already past at 2026-01-05
    h.create("c-2", birthday="2026-01-20")
    h.update("c-2", birthday=None)
    h.run("30d")
    assert not [r for r in h.runs if r.flow == "birthday"]


def test_yearly_29_february_fires_on_28_february_in_other_years() -> None:
    start = dt.datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    h = Harness(_date_flow(repeat="yearly", offset="-1d"), start=start)
    h.create("c-1", birthday="2000-02-29")
    h.run("800d")
    starts = [r.started_at for r in h.runs if r.flow == "birthday"]
    # 28 Feb 2027 minus one day; 29 Feb 2028 (a leap year) minus one day.
    assert starts == [dt.datetime(2027, 2, 27, tzinfo=UTC), dt.datetime(2028, 2, 28, tzinfo=UTC)]


def test_a_datetime_field_ignores_at() -> None:
    h = Harness(flow("renewal", LOG, trigger={"type": "date", "field": "renewal_at", "offset": "-2h", "at": "09:00"}))
    h.create("c-1", renewal_at="2026-01-06T15:30:00Z")
    h.run("3d")
    assert h.run_of("renewal").started_at == dt.datetime(2026, 1, 6, 13, 30, tzinfo=UTC)


def test_a_record_that_no_longer_matches_at_the_date_does_not_run() -> None:
    h = Harness(_date_flow() | {"conditions": {"field": "stage", "op": "eq", "value": "customer"}})
    h.create("c-1", birthday="2026-01-10", stage="customer")
    h.at("1d").update("c-1", stage="churned")
    h.run("10d")
    assert not [r for r in h.runs if r.flow == "birthday"]
    assert [e.detail["reason"] for e in h.trace("suppressed")] == ["conditions"]


def test_activating_a_bundle_plans_starts_for_stored_records() -> None:
    h = Harness(_date_flow(at="08:00"), records=[{"object": "contact", "id": "c-9", "birthday": "2026-01-07"}])
    h.run("5d")
    assert h.run_of("birthday").started_at == dt.datetime(2026, 1, 7, 8, 0, tzinfo=UTC)


def test_a_timer_that_fell_due_while_down_fires_once_marked_late() -> None:
    store = MemoryStore()
    engine = Engine(store, StaticBundles({1: make_bundle(flow("f", [{"id": "w", "wait": {"for": "1h"}}, *LOG]))}))
    engine.activate(1, T0)
    engine.ingest({"type": "record_created", "object": "contact", "record": {"id": "c-1"}}, T0)
    later = T0 + dt.timedelta(hours=5)  # "the runner was down" for four hours past the due time
    assert engine.fire_due(later) == 1
    assert engine.fire_due(later) == 0
    run = store.list_runs()[0]
    assert run.status == "succeeded" and run.late
    assert [e.status for e in store.trace() if e.kind == "timer"] == ["set", "late"]
