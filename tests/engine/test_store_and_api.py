"""The MemoryStore contract and the Engine API edges both shells rely on."""

from __future__ import annotations

import datetime as dt

import pytest

from flowctl.engine.api import Engine, EngineError
from flowctl.engine.program import compile_steps
from flowctl.engine.state import DeliveryResult, Record, Timer
from flowctl.engine.store import StaticBundles, Store
from flowctl.resources.models import Flow
from flowctl.store.memory import MemoryStore

from .harness import T0, flow, make_bundle


def _timer(store: MemoryStore, due: dt.datetime, owner: str = "o") -> Timer:
    seq = store.next_seq("timer")
    timer = Timer(id=f"timer-{seq}", seq=seq, kind="wake", due_at=due, owner=owner, created_at=T0)
    store.add_timer(timer)
    return timer


def test_memory_store_implements_the_protocol_and_isolates_models() -> None:
    store = MemoryStore()
    assert isinstance(store, Store)
    store.put_record(Record(object="contact", id="c-1", fields={"a": 1}, created_at=T0, updated_at=T0))
    copy = store.get_record("contact", "c-1")
    assert copy is not None
    copy.fields["a"] = 2  # not written back: the store keeps what was put
    assert store.get_record("contact", "c-1").fields == {"a": 1}  # type: ignore[union-attr]
    assert store.next_id("run") == "run-1" and store.next_id("run") == "run-2" and store.next_id("msg") == "msg-1"


def test_due_timers_order_by_due_then_creation_and_skip_cancelled() -> None:
    store = MemoryStore()
    late = _timer(store, T0 + dt.timedelta(hours=2))
    first = _timer(store, T0 + dt.timedelta(hours=1), owner="x")
    tie = _timer(store, T0 + dt.timedelta(hours=1))
    assert [t.id for t in store.due_timers(T0 + dt.timedelta(hours=3))] == [first.id, tie.id, late.id]
    assert store.cancel_timers("x") == 1
    assert [t.id for t in store.due_timers(T0 + dt.timedelta(hours=3))] == [tie.id, late.id]
    assert store.next_due() == T0 + dt.timedelta(hours=1)
    assert store.due_timers(T0) == []


def _engine() -> tuple[Engine, MemoryStore]:
    store = MemoryStore()
    bundle = make_bundle(flow("f", [{"id": "hi", "action": "send_email", "to": "a@example.com", "subject": "Hi",
                                     "text": "x"}]))
    engine = Engine(store, StaticBundles({1: bundle}))
    engine.activate(1, T0)
    return engine, store


def test_a_repeated_idempotency_key_is_accepted_and_starts_nothing() -> None:
    engine, store = _engine()
    event = {"type": "record_created", "object": "contact", "record": {"id": "c-1"}, "idempotency_key": "crm-1"}
    first = engine.ingest(event, T0)
    again = engine.ingest(event, T0 + dt.timedelta(minutes=1))
    assert not first.duplicate and again.duplicate
    assert again.event_id == first.event_id and again.runs == first.runs == ["run-1"]
    assert len(store.list_runs()) == 1


def test_a_message_step_waits_in_sending_until_delivered() -> None:
    engine, store = _engine()
    engine.ingest({"type": "record_created", "object": "contact", "record": {"id": "c-1"}}, T0)
    (run,) = store.list_runs()
    assert run.status == "running" and run.waiting is not None and run.waiting.kind == "message"
    (message,) = store.pending_messages()
    assert message.idempotency_key == "run-1:hi:1"
    engine.delivered(message.id, DeliveryResult(ok=True, provider_id="p-1"), T0)
    engine.delivered(message.id, DeliveryResult(ok=False, error_class="timeout"), T0)  # a repeated report: ignored
    assert store.get_run(run.id).status == "succeeded"  # type: ignore[union-attr]
    assert store.get_message(message.id).status == "sent"  # type: ignore[union-attr]


def test_engine_errors_are_clear() -> None:
    engine, _ = _engine()
    with pytest.raises(EngineError, match="no task 'task-9'"):
        engine.complete_task("task-9", "done", T0)
    with pytest.raises(EngineError, match="no flow named 'nope'"):
        engine.start_manual("nope", "c-1", T0)
    with pytest.raises(EngineError, match="is not known"):
        engine.start_manual("f", "c-404", T0)
    with pytest.raises(EngineError, match=r"needs `object` and `record\.id`"):
        engine.ingest({"type": "record_created", "record": {}}, T0)
    with pytest.raises(ValueError, match="aware"):
        engine.fire_due(dt.datetime(2026, 1, 1))


def test_program_links_branch_ends_to_the_continuation() -> None:
    model = Flow.model_validate(flow("f", [
        {"id": "a", "if": {"field": "x", "op": "is_set"}, "then": [{"id": "t", "action": "log", "message": "t"}],
         "else": []},
        {"id": "b", "action": "approval", "title": "ok", "approvers": ["u"],
         "on_reject": [{"id": "r", "action": "log", "message": "r"}]},
        {"id": "c", "action": "send_whatsapp", "to": "x", "template": "w",
         "fallback": {"id": "s", "action": "send_sms", "to": "x", "body": "b"}},
    ]))
    program = compile_steps(model.name, model.steps)
    assert program.order == ["a", "t", "b", "r", "c", "s"]
    assert program.node("t").next == "b" and program.node("a").branches == {"then": "t", "else": "b"}
    assert program.node("r").next == "c" and program.node("s").next is None
