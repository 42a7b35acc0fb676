"""SLA clock life cycle through the engine: start, stop, cancel, breach actions once, overdue time,
late timers, revert, the `sla` template context, new bundle versions (SPEC §4, §10.3, §10.10)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowctl.engine.runs import EngineError
from flowctl.engine.sla_clocks import format_seconds, sla_figures, stored_clocks
from flowctl.engine.store import StaticBundles
from flowctl.lang.calendars import BusinessCalendar
from flowctl.resources.models import Calendar, SlaPolicy

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
MON_9 = dt.datetime(2026, 1, 12, 9, tzinfo=NY)  # a Monday


def ny(d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(2026, 1, d, h, mi, tzinfo=NY)


BREACH_ACTIONS: list[dict[str, Any]] = [
    {"action": "update_record", "set": {"status": "pending_manager_review"}},
    {"action": "assign_record", "strategy": "fixed", "user": "{{ team('support').manager }}", "field": "assignee"},
    {"action": "notify", "to": "{{ team('support').manager }}",
     "message": "{{ sla.clock }} of {{ record.id }} missed {{ sla.target }} (due {{ sla.due_at }}, "
                "{{ sla.elapsed }} elapsed)"},
]


@pytest.fixture
def world(sla_world: Callable[..., Any], make_policy: Callable[..., dict[str, Any]]) -> Any:
    return sla_world(make_policy("ny-office", warn_before="30m", on_breach=BREACH_ACTIONS,
                                 on_warning=[{"action": "notify", "to": "{{ record.assignee.id }}",
                                              "message": "{{ sla.clock }} due {{ sla.due_at }}"}]), MON_9)


def test_breach_actions_run_once_with_the_sla_context_and_record_reason_and_handler(world: Any) -> None:
    world.create("t-1", priority="high", status="in_progress")
    world.run_until(ny(12, 15))
    warn, breach = [(when, m.to, m.text) for when, m in world.sent() if m.channel == "notification"]
    assert warn == (ny(12, 10, 30).astimezone(UTC), ["li.lei"], "first_response due 2026-01-12 11:00 -05:00")
    assert breach == (ny(12, 11).astimezone(UTC), ["wang.fang"],
                      "first_response of t-1 missed 2h (due 2026-01-12 11:00 -05:00, 2h elapsed)")
    assert world.fields("t-1")["status"] == "pending_manager_review"
    assert world.fields("t-1")["assignee"] == "wang.fang"
    lines = world.timeline("t-1")
    assert ("SLA breach: first_response (support-sla, targets[0]) missed its 2h target, "
            "due 2026-01-12 11:00 -05:00; handled by wang.fang") in lines
    [entry] = [e for e in world.clock("t-1", "first_response")["log"] if e["kind"] == "breach"]
    assert entry["handler"] == "wang.fang" and entry["reason"].startswith("first_response (support-sla")
    # The breach changed the record; the clocks saw that change and ran nothing twice.
    world.update("t-1", subject="still broken")
    world.run_until(ny(12, 16))
    assert len(world.runs("sla:support-sla:on_breach")) == 1
    # The clock keeps counting past the breach: 5 business hours overdue at 16:00.
    view = world.clock("t-1", "first_response")
    assert (view["status"], view["breached"], view["overdue_seconds"]) == ("running", True, 5 * 3600)


def test_stop_before_the_due_time_means_met_and_nothing_fires(world: Any) -> None:
    world.create("t-1", priority="high")
    world.at(ny(12, 10)).update("t-1", first_response_at="2026-01-12T15:00:00Z")
    world.run_until(ny(13, 18))
    view = world.clock("t-1", "first_response")
    assert (view["status"], view["breached"], view["elapsed_seconds"]) == ("stopped", False, 3600)
    assert view["due_at"] == "2026-01-12T16:00:00Z"  # the due time it had, kept for reports
    assert [r.trigger["clock"] for r in world.runs("sla:support-sla:on_breach")] == ["resolution"]


def test_a_stopped_clock_stays_stopped(world: Any) -> None:
    world.create("t-1", priority="high")
    world.at(ny(12, 10)).update("t-1", status="resolved")
    world.at(ny(12, 11)).update("t-1", status="in_progress")  # reopened
    world.run_until(ny(14, 18))
    view = world.clock("t-1", "resolution")
    assert (view["status"], view["breached"], view["elapsed_seconds"]) == ("stopped", False, 3600)


def test_applies_when_turning_false_cancels_the_clocks(world: Any) -> None:
    world.create("t-1", priority="high")
    world.at(ny(12, 10)).update("t-1", type="spam")
    world.at(ny(12, 10, 30)).update("t-1", type="incident")  # a cancelled clock does not come back
    world.run_until(ny(16, 18))
    assert {world.clock("t-1", c)["status"] for c in ("first_response", "resolution")} == {"cancelled"}
    assert world.runs("sla:support-sla:on_breach") == [] and world.runs("sla:support-sla:on_warning") == []


def test_clocks_start_when_applies_when_first_holds(world: Any) -> None:
    world.create("t-1", priority="high", type="spam")
    assert world.rt.sla.clock_view(world.rt, "t-1", "first_response") is None
    world.at(ny(12, 10)).update("t-1", type="incident")
    assert world.due("t-1", "first_response") == ny(12, 12)


def test_start_when_starts_a_named_clock(sla_world: Callable[..., Any],
                                         make_policy: Callable[..., dict[str, Any]]) -> None:
    pol = make_policy("ny-office", targets=[{"default": True, "handling": "4h"}],
                      clocks={"handling": {"start_when": {"field": "status", "op": "eq", "value": "in_progress"},
                                           "stop_when": {"field": "status", "op": "eq", "value": "resolved"}}})
    world = sla_world(pol, MON_9)
    world.create("t-1")
    assert world.rt.sla.clock_view(world.rt, "t-1", "handling") is None
    world.at(ny(12, 16)).update("t-1", status="in_progress")
    assert world.due("t-1", "handling") == ny(13, 11)  # 16:00-18:00, then 09:00-11:00


def test_deleting_the_record_cancels_its_clocks(world: Any) -> None:
    world.create("t-1", priority="high")
    world.at(ny(12, 10)).sim.ingest({"type": "record_deleted", "object": "case", "record": {"id": "t-1"}})
    world.run_until(ny(14, 9))
    assert world.clock("t-1", "first_response")["status"] == "cancelled"
    assert world.runs("sla:support-sla:on_breach") == []


def test_a_case_event_that_arrives_late_counts_from_the_records_creation(world: Any) -> None:
    # SPEC §4: clocks start when the record is created. The CRM created the case at 09:00 New York and the
    # event reached us at 12:00: the 2h first-response target was missed at 11:00 and breaches on arrival.
    world.at(ny(12, 12))
    world.sim.ingest({"type": "record_created", "object": "case", "occurred_at": "2026-01-12T14:00:00Z",
                      "record": {"id": "t-1", "priority": "high", "type": "incident", "assignee": "li.lei"}})
    view = world.clock("t-1", "first_response")
    assert view["started_at"] == "2026-01-12T14:00:00Z"
    assert (view["due_at"], view["breached"]) == ("2026-01-12T16:00:00Z", True)
    assert len(world.sla_trace("breached")) == 1


def test_a_create_event_from_the_future_starts_the_clock_now(world: Any) -> None:
    world.at(ny(12, 12))
    world.sim.ingest({"type": "record_created", "object": "case", "occurred_at": "2026-01-12T20:00:00Z",
                      "record": {"id": "t-2", "priority": "high", "type": "incident", "assignee": "li.lei"}})
    view = world.clock("t-2", "first_response")
    assert view["started_at"] == "2026-01-12T17:00:00Z"
    assert view["breached"] is False


def test_timers_that_fell_due_while_the_runner_was_down_fire_once_marked_late(world: Any) -> None:
    world.create("t-1", priority="high", status="in_progress")
    engine = world.sim.engine
    # Nobody called fire_due for six hours (the runner was down); it now fires what is overdue.
    fired = engine.fire_due(ny(12, 15).astimezone(UTC))
    world.sim.now = ny(12, 15).astimezone(UTC)
    world.sim.deliver()
    assert fired == 1  # one timer: advancing the clock to 15:00 yields the warning and the breach together
    assert engine.fire_due(ny(12, 15).astimezone(UTC)) == 0
    statuses = [(e.status, e.detail.get("at"), e.detail.get("late")) for e in world.sla_trace()
                if e.detail["clock"] == "first_response" and e.status in ("warned", "breached")]
    assert statuses == [("warned", "2026-01-12T15:30:00Z", True), ("breached", "2026-01-12T16:00:00Z", True)]
    [run] = world.runs("sla:support-sla:on_breach")
    assert run.late is True and run.status == "succeeded"
    assert any(line.endswith("(noticed late)") and line.startswith("SLA breach") for line in world.timeline("t-1"))
    assert [e.status for e in world.sim.store.trace() if e.kind == "timer"] == ["late"]


def test_revert_restores_what_the_breach_changed_and_says_who(world: Any) -> None:
    world.create("t-1", priority="high", status="in_progress")
    world.run_until(ny(12, 12))
    assert (world.fields("t-1")["status"], world.fields("t-1")["assignee"]) == ("pending_manager_review",
                                                                                "wang.fang")
    result = world.sim.engine.revert_sla("case", "t-1", "first_response", ny(12, 12, 5).astimezone(UTC),
                                         by="ops.alice")
    assert result["restored"] == {"status": "in_progress", "assignee": "li.lei"}
    assert (world.fields("t-1")["status"], world.fields("t-1")["assignee"]) == ("in_progress", "li.lei")
    assert any("reverted by ops.alice: status → in_progress, assignee → li.lei" in line
               for line in world.timeline("t-1"))
    view = world.clock("t-1", "first_response")
    assert (view["reverted_by"], view["breached"]) == ("ops.alice", True)
    with pytest.raises(EngineError, match=r"already reverted by ops\.alice"):
        world.sim.engine.revert_sla("case", "t-1", "first_response", ny(12, 12, 6).astimezone(UTC), by="bob")
    with pytest.raises(EngineError, match="has not breached"):
        world.sim.engine.revert_sla("case", "t-1", "resolution", ny(12, 12, 6).astimezone(UTC), by="bob")
    with pytest.raises(EngineError, match="no SLA clock 'handling'"):
        world.sim.engine.revert_sla("case", "t-1", "handling", ny(12, 12, 6).astimezone(UTC), by="bob")


def test_revert_leaves_alone_a_field_someone_changed_since(world: Any) -> None:
    world.create("t-1", priority="high", status="in_progress")
    world.run_until(ny(12, 12))
    world.update("t-1", assignee="han.meimei")
    result = world.sim.engine.revert_sla("case", "t-1", "first_response", ny(12, 12).astimezone(UTC), by="ops")
    assert result["restored"] == {"status": "in_progress"}
    assert result["kept"] == {"assignee": "han.meimei"}
    assert world.fields("t-1")["assignee"] == "han.meimei"


def test_a_new_version_retargets_running_clocks_and_cancels_removed_policies(
        sla_world: Callable[..., Any], make_policy: Callable[..., dict[str, Any]]) -> None:
    world = sla_world(make_policy("ny-office"), MON_9)
    world.create("t-1", priority="high")
    world.at(ny(12, 10))
    engine, bundles = world.sim.engine, world.sim.engine.bundles
    assert isinstance(bundles, StaticBundles)

    def apply(version: int, policy: dict[str, Any] | None) -> None:
        current = bundles.bundle(bundles.live_version() or 1)
        policies = {policy["name"]: SlaPolicy.model_validate(policy)} if policy is not None else {}
        bundles.add(version, dataclasses.replace(current, sla_policies=policies))
        engine.activate(version, world.sim.now)

    faster = make_policy("ny-office", targets=[{"when": {"field": "priority", "op": "eq", "value": "high"},
                                                "first_response": "4h", "resolution": "8h"},
                                               {"default": True, "first_response": "8h", "resolution": "40h"}])
    apply(2, faster)
    assert world.due("t-1", "first_response") == ny(12, 13)  # 1h elapsed kept, 4h target
    apply(3, None)
    assert world.clock("t-1", "first_response")["status"] == "cancelled"
    assert [e.detail["reason"] for e in world.sla_trace("cancelled")] == ["its SLA policy is no longer live"] * 2


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0, 30, 2700, 5400, 21600, 90061)] == ["0s", "30s", "45m", "1h30m", "6h",
                                                                               "25h1m1s"]


OFFICE = BusinessCalendar.from_model(Calendar.model_validate(
    {"kind": "calendar", "name": "ny-office", "timezone": "America/New_York", "weekly": {"mon-fri": ["09:00-18:00"]},
     "holidays": ["2026-01-19"]}))


# The fixtures are factories without state, so sharing them across examples is safe.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pauses=st.lists(st.tuples(st.integers(1, 60 * 24 * 9), st.integers(1, 60 * 24 * 3)), max_size=3))
def test_pauses_never_count_and_the_rest_always_does(sla_world: Callable[..., Any],
                                                     make_policy: Callable[..., dict[str, Any]],
                                                     pauses: list[tuple[int, int]]) -> None:
    """Property: with pauses anywhere (nights, weekends, a holiday), due = the instant the unpaused business
    time reaches the 40h target, computed independently with the calendar."""
    world = sla_world(make_policy("ny-office"), MON_9)
    world.create("t-1")
    now = MON_9.astimezone(UTC)
    running: list[tuple[dt.datetime, dt.datetime]] = []
    since = now
    for gap, length in pauses:
        start = now + dt.timedelta(minutes=gap)
        end = start + dt.timedelta(minutes=length)
        world.at(start).update("t-1", status="pending_customer")
        world.at(end).update("t-1", status="in_progress")
        running.append((since, start))
        since, now = end, end
    view = world.clock("t-1", "resolution")
    counted = sum(OFFICE.between(a, b) for a, b in running)
    if counted >= 40 * 3600:
        assert view["breached"] is True
        return
    expected = OFFICE.add(since, 40 * 3600 - counted)
    assert world.due("t-1", "resolution") == expected


def test_sla_figures_count_met_breached_and_overdue(world: Any) -> None:
    world.create("t-1", priority="high", status="in_progress")  # first_response due 11:00, never answered
    world.create("t-2", priority="high", status="in_progress")
    world.at(ny(12, 10)).update("t-2", first_response_at="2026-01-12T15:00:00Z")  # met
    world.at(ny(12, 13)).update("t-2", status="resolved")  # resolution met (4h of 8h)
    world.run_until(ny(12, 14))
    bundle = world.rt.bundle(1)
    figures = sla_figures(stored_clocks(world.sim.store.kv_items("sla")), bundle, ny(12, 14).astimezone(UTC))
    [first, resolution] = figures["by_clock"]
    assert (first["clock"], first["clocks"], first["met"], first["breached"]) == ("first_response", 2, 1, 1)
    assert (first["achievement_rate"], first["avg_overdue_seconds"]) == (0.5, 3 * 3600)  # t-1: 11:00 → 14:00
    assert (resolution["clocks"], resolution["met"], resolution["breached"], resolution["running"]) == (2, 1, 0, 1)
    assert (figures["clocks"], figures["met"], figures["breached"]) == (4, 2, 1)
    assert figures["achievement_rate"] == round(2 / 3, 4)
    later = sla_figures(stored_clocks(world.sim.store.kv_items("sla")), bundle, ny(12, 14).astimezone(UTC),
                        since=ny(12, 9, 30).astimezone(UTC))
    assert later["clocks"] == 0
