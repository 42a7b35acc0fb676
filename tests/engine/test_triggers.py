"""Triggers and entry (SPEC §3 Triggers, §10.4, §10.5): what starts a run and what does not."""

from __future__ import annotations

import datetime as dt

from .harness import T0, Harness, flow

LOG = [{"id": "note", "action": "log", "message": "ran"}]


def started(h: Harness, name: str = "f") -> int:
    return sum(1 for r in h.runs if r.flow == name)


def suppressed(h: Harness) -> list[str]:
    return [e.detail["reason"] for e in h.trace("suppressed")]


def test_record_created_starts_one_run_with_the_record() -> None:
    h = Harness(flow("f", LOG))
    result = h.create("c-1", email="a@example.com")
    assert len(result.runs) == 1
    run = h.run_of("f")
    assert (run.object, run.record_id, run.status) == ("contact", "c-1", "succeeded")
    assert run.trigger["type"] == "record_created"
    assert h.timeline("c-1") == ["ran"]


def test_record_updated_fires_only_when_a_listed_field_changed() -> None:
    h = Harness(flow("f", LOG, trigger={"type": "record_updated", "fields": ["stage"]}))
    h.create("c-1", stage="lead", email="a@example.com")
    h.update("c-1", email="b@example.com")
    assert started(h) == 0
    h.update("c-1", stage="customer")
    assert started(h) == 1
    h.update("c-1", stage="customer")  # no change: no update happened
    assert started(h) == 1
    run = h.run_of("f")
    assert run.trigger["changed"] == ["stage"]
    assert run.trigger["before"] == {"stage": "lead"}


def test_when_conditions_become_true_fires_on_the_transition_only() -> None:
    h = Harness(flow("f", LOG, trigger={"type": "record_updated", "when_conditions_become_true": True},
                     conditions={"field": "score", "op": "gte", "value": 50}))
    h.create("c-1", score=10)
    assert started(h) == 0
    h.update("c-1", score=60)  # 10 → 60: becomes true
    assert started(h) == 1
    h.update("c-1", score=70)  # already held before: no new run
    assert started(h) == 1
    h.update("c-1", score=20)
    h.update("c-1", score=55)  # false → true again
    assert started(h) == 2


def test_when_conditions_become_true_counts_a_matching_create() -> None:
    h = Harness(flow("f", LOG, trigger={"type": "record_updated", "when_conditions_become_true": True},
                     conditions={"field": "score", "op": "gte", "value": 50}))
    h.create("c-1", score=80)
    assert started(h) == 1
    h.create("c-2", score=5)
    assert started(h) == 1


def test_field_changed_from_to_fires_only_on_that_transition() -> None:
    h = Harness(flow("f", LOG, trigger={"type": "field_changed", "field": "stage", "from": "lead", "to": "customer"}))
    h.create("c-1", stage="lead")
    h.update("c-1", stage="prospect")
    assert started(h) == 0
    h.update("c-1", stage="lead")
    h.update("c-1", stage="customer")
    assert started(h) == 1
    h.update("c-1", email="x@example.com")  # still customer, another field: no new run
    assert started(h) == 1
    run = h.run_of("f")
    assert (run.trigger["from"], run.trigger["to"]) == ("lead", "customer")


def test_field_changed_without_from_fires_on_any_change_into_to() -> None:
    h = Harness(flow("f", LOG, trigger={"type": "field_changed", "field": "stage", "to": "churned"}))
    h.create("c-1", stage="customer")
    h.update("c-1", stage="churned")
    h.update("c-1", stage="customer")
    assert started(h) == 1


def test_record_deleted_runs_on_the_deleted_record() -> None:
    h = Harness(flow("f", [{"id": "bye", "action": "log", "message": "bye {{ record.email }}"}],
                     trigger={"type": "record_deleted"}))
    h.create("c-1", email="a@example.com")
    h.delete("c-1")
    assert h.run_of("f").status == "succeeded"
    assert h.timeline("c-1") == ["bye a@example.com"]
    assert h.record("c-1").deleted


def test_event_trigger_matches_by_name_and_passes_data() -> None:
    h = Harness(flow("f", [{"id": "note", "action": "log", "message": "score {{ trigger.data.score }}"}],
                     trigger={"type": "event", "name": "survey.submitted"}))
    h.create("c-1")
    h.event("survey.other", "c-1", score=1)
    h.event("survey.submitted", "c-1", score=4)
    assert started(h) == 1
    assert h.timeline("c-1") == ["score 4"]


def test_manual_trigger_starts_through_the_api_only() -> None:
    h = Harness(flow("f", LOG, trigger={"type": "manual"}))
    h.create("c-1")
    assert started(h) == 0
    result = h.sim.start_manual("f", "c-1")
    assert result.runs and h.run_of("f").trigger["type"] == "manual"


def test_disabled_flows_process_no_triggers() -> None:
    h = Harness(flow("f", LOG, enabled=False))
    h.create("c-1")
    assert started(h) == 0


def test_entry_conditions_suppress_with_a_trace_entry() -> None:
    h = Harness(flow("f", LOG, conditions={"field": "tier", "op": "in", "value": ["gold"]}))
    h.create("c-1", tier="standard")
    h.create("c-2", tier="gold")
    assert [r.record_id for r in h.runs] == ["c-2"]
    assert suppressed(h) == ["conditions"]


def test_dedupe_window_starts_at_the_first_accepted_trigger() -> None:
    h = Harness(flow("f", LOG, trigger={"type": "record_updated"}, dedupe="10m"))
    h.create("c-1", stage="lead")
    h.at("1m").update("c-1", stage="won")
    h.at("2m").update("c-1", stage="lead")
    h.at("3m").update("c-1", stage="won")  # identical to the first (same changed values) inside 10m
    assert started(h) == 2
    assert suppressed(h) == ["dedupe"]
    h.at("11m").update("c-1", stage="lead")  # the "lead" window (from 2m) is still open
    h.at("11m").update("c-1", stage="won")  # the "won" window (from 1m) has ended
    assert started(h) == 3
    assert suppressed(h) == ["dedupe", "dedupe"]


def test_reentry_never_and_duration() -> None:
    never = Harness(flow("f", LOG, trigger={"type": "record_updated"}, reentry="never"))
    never.create("c-1", stage="a")
    never.update("c-1", stage="b")
    never.update("c-1", stage="c")
    assert started(never) == 1
    assert suppressed(never) == ["reentry"]

    spaced = Harness(flow("f", LOG, trigger={"type": "record_updated"}, reentry="1h"))
    spaced.create("c-1", stage="a")
    spaced.update("c-1", stage="b")
    spaced.at("30m").update("c-1", stage="c")
    spaced.at("61m").update("c-1", stage="d")
    assert started(spaced) == 2


def test_a_chain_of_flows_stops_at_the_loop_guard_depth() -> None:
    # Each run bumps the score, which triggers the same flow again: an endless chain without the guard.
    bump = flow("f", [{"id": "bump", "action": "update_record", "set": {"score": "{{ record.score + 1 }}"}}],
                trigger={"type": "record_updated", "fields": ["score"]})
    h = Harness(bump)
    h.create("c-1", score=0)
    h.update("c-1", score=1)
    assert started(h) == 9  # depth 0 … 8
    assert h.record("c-1").fields["score"] == 10
    guards = h.trace("loop_guard")
    assert len(guards) == 1 and guards[0].detail["depth"] == 9
    deepest = max(h.runs, key=lambda r: r.depth)
    assert deepest.depth == 8 and deepest.error_class == "loop_guard"


def test_schedule_starts_one_run_per_matching_record_in_its_time_zone() -> None:
    h = Harness(flow("f", LOG, trigger={"type": "schedule", "cron": "0 9 * * *", "timezone": "Asia/Shanghai",
                                        "conditions": {"field": "tier", "op": "eq", "value": "gold"}}))
    h.create("c-1", tier="gold")
    h.create("c-2", tier="standard")
    h.run("1d")
    runs = [r for r in h.runs if r.flow == "f"]
    assert [r.record_id for r in runs] == ["c-1"]
    # 09:00 in Shanghai is 01:00 UTC; the first tick after Monday 09:00 UTC is Tuesday 01:00 UTC.
    assert runs[0].started_at == dt.datetime(2026, 1, 6, 1, 0, tzinfo=dt.UTC)


def test_schedule_without_an_object_starts_one_run_per_tick() -> None:
    nightly = flow("nightly", [{"id": "note", "action": "log", "message": "tick"}],
                   trigger={"type": "schedule", "cron": "30 2 * * *"})
    nightly.pop("object")
    h = Harness(nightly)
    h.run("3d")
    starts = [r.started_at for r in h.runs]
    assert starts == [T0.replace(day=d, hour=2, minute=30) for d in (6, 7, 8)]
    assert all(r.record_id is None for r in h.runs)
