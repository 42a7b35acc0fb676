"""SqliteStore: the engine's Store protocol on SQLite, plus the runner's own tables.

The strongest check is the first: the same engine, driven through the same
events and clock on the in-memory store and on SQLite, ends in identical state.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowctl.engine.api import Engine
from flowctl.engine.state import DeliveryResult, Message, Record, Run, StepAttempt, Timer
from flowctl.engine.store import StaticBundles, Store
from flowctl.store.memory import MemoryStore
from flowctl.store.sqlite import SCHEMA_VERSION, SqliteStore, StoreError, VersionConflict, migrate

from .world import contact_created, custom, standard_bundle

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "runner.db")
    yield s
    s.close()


def _drive(store: Any) -> dict[str, Any]:
    """A scripted day of events, timers, deliveries (some failing) and task completions."""
    typed = standard_bundle("http://erp.example/push").typed()
    engine = Engine(store, StaticBundles({1: typed}, live=1), secrets={})
    engine.activate(1, T0)
    now = T0

    def deliver_all(fail_webhooks: bool) -> None:
        for message in store.pending_messages():
            ok = not (fail_webhooks and message.channel == "webhook")
            result = (
                DeliveryResult(ok=True, provider_id=f"p-{message.id}")
                if ok
                else DeliveryResult(ok=False, error_class="HTTP 503", error="HTTP 503", status=503)
            )
            engine.delivered(message.id, result, now)

    for i in range(1, 4):
        engine.ingest(contact_created(f"c-{i}", key=f"k-{i}"), now)
    engine.ingest(contact_created("c-1", key="k-1"), now)  # duplicate key: ignored
    deliver_all(False)
    now += dt.timedelta(seconds=1)
    engine.ingest(
        {"type": "record_updated", "object": "contact", "record": {"id": "c-1", "stage": "customer"}}, now
    )
    engine.ingest(custom("touch", "c-2"), now)
    engine.ingest(custom("discount.requested", "c-3"), now)
    engine.ingest(custom("erp.sync", "c-2"), now)
    for _ in range(6):
        deliver_all(True)
        now += dt.timedelta(seconds=1)
        engine.fire_due(now)
    deliver_all(False)
    for task in store.list_tasks(open_only=True):
        if task.kind == "approval":
            engine.complete_task(task.id, "approved", now, by="wang.fang")
        elif task.kind == "compensation":
            engine.complete_task(task.id, "done", now, by="ops", comment="pushed by hand")
    now += dt.timedelta(seconds=5)
    engine.fire_due(now)
    deliver_all(False)
    return {
        "runs": [r.model_dump(mode="json") for r in store.list_runs()],
        "attempts": [a.model_dump(mode="json") for r in store.list_runs() for a in store.step_attempts(r.id)],
        "tasks": [t.model_dump(mode="json") for t in store.list_tasks()],
        "messages": [m.model_dump(mode="json") for m in store.list_messages()],
        "timeline": [
            e.model_dump(mode="json") for i in range(1, 4) for e in store.timeline("contact", f"c-{i}")
        ],
        "records": [r.model_dump(mode="json") for r in store.records_of("contact")],
        "trace": [e.model_dump(mode="json") for e in store.trace()],
        "next_due": store.next_due(),
    }


def test_the_engine_ends_in_the_same_state_on_sqlite_as_in_memory(store: SqliteStore) -> None:
    memory = _drive(MemoryStore())
    sqlite = _drive(store)
    assert sqlite == memory
    statuses = {r["flow"]: r["status"] for r in sqlite["runs"]}
    assert statuses["erp-sync"] == "succeeded_compensated"
    assert statuses["discount-approval"] == "succeeded"
    assert statuses["follow-up"] == "succeeded"
    assert len([r for r in sqlite["runs"] if r["flow"] == "welcome"]) == 3


def test_it_implements_the_store_protocol(store: SqliteStore) -> None:
    assert isinstance(store, Store)


def _run(run_id: str, status: str = "running", **kw: Any) -> Run:
    return Run(
        id=run_id, flow=kw.pop("flow", "f"), version=1, status=status, started_at=T0, updated_at=T0, **kw
    )


def test_listing_keeps_insertion_order_after_replacing_rows(store: SqliteStore) -> None:
    with store.transaction():
        for i in (3, 1, 2):
            store.put_run(_run(f"run-{i}", object="contact", record_id="c-1"))
        store.put_run(_run("run-3", status="succeeded", object="contact", record_id="c-1"))
        store.put_step_attempt(
            StepAttempt(run_id="run-1", flow="f", step="b", status="running", started_at=T0)
        )
        store.put_step_attempt(
            StepAttempt(run_id="run-1", flow="f", step="a", status="running", started_at=T0)
        )
        store.put_step_attempt(
            StepAttempt(run_id="run-1", flow="f", step="b", status="succeeded", started_at=T0)
        )
    assert [r.id for r in store.list_runs()] == ["run-3", "run-1", "run-2"]
    assert [r.id for r in store.list_runs(statuses=["running"], record=("contact", "c-1"))] == [
        "run-1",
        "run-2",
    ]
    assert store.list_runs(statuses=[]) == []
    assert [(a.step, a.status) for a in store.step_attempts("run-1")] == [
        ("b", "succeeded"),
        ("a", "running"),
    ]


def test_timers_come_due_in_due_then_creation_order_and_cancel_by_owner(store: SqliteStore) -> None:
    def timer(seq: int, due: dt.datetime, owner: str = "run:r", kind: str = "wake") -> Timer:
        return Timer(id=f"timer-{seq}", seq=seq, kind=kind, due_at=due, owner=owner, created_at=T0)

    later = T0 + dt.timedelta(minutes=5)
    with store.transaction():
        store.add_timer(timer(1, later))
        store.add_timer(timer(2, T0))
        store.add_timer(timer(3, later, owner="date:x", kind="date_trigger"))
        store.add_timer(timer(4, T0, kind="retry"))
    assert store.next_due() == T0
    assert [t.id for t in store.due_timers(later)] == ["timer-2", "timer-4", "timer-1", "timer-3"]
    assert [t.id for t in store.due_timers(later, limit=1)] == ["timer-2"]
    assert store.cancel_timers("run:r", kind="retry") == 1
    assert store.cancel_timers("run:r") == 2
    assert store.get_timer("timer-1").status == "cancelled"  # type: ignore[union-attr]
    assert [t.id for t in store.due_timers(later)] == ["timer-3"]
    assert store.next_due() == later


def test_records_of_skips_deleted_and_kv_round_trips(store: SqliteStore) -> None:
    with store.transaction():
        for rid in ("b", "a"):
            store.put_record(
                Record(object="contact", id=rid, fields={"n": rid}, created_at=T0, updated_at=T0)
            )
        store.put_record(
            Record(object="contact", id="b", fields={"n": "b2"}, created_at=T0, updated_at=T0, deleted=True)
        )
        store.kv_put("dedupe", "k", {"at": "x", "n": [1, 2]})
    assert [r.id for r in store.records_of("contact")] == ["a"]
    assert store.get_record("contact", "b").deleted  # type: ignore[union-attr]
    assert store.kv_get("dedupe", "k") == {"at": "x", "n": [1, 2]}
    store.kv_delete("dedupe", "k")
    assert store.kv_get("dedupe", "k") is None


def test_a_failed_savepoint_rolls_back_alone_and_a_failed_transaction_entirely(store: SqliteStore) -> None:
    with store.transaction():
        store.put_run(_run("run-1"))
        with pytest.raises(RuntimeError), store.transaction():
            store.put_run(_run("run-2"))
            raise RuntimeError("engine call failed")
        store.put_run(_run("run-3"))
    assert [r.id for r in store.list_runs()] == ["run-1", "run-3"]
    with pytest.raises(RuntimeError), store.transaction():
        store.put_run(_run("run-4"))
        raise RuntimeError("commit never happens")
    assert store.get_run("run-4") is None


def test_ids_are_never_reused_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    first = SqliteStore.open(path)
    with first.transaction():
        assert [first.next_id("run") for _ in range(3)] == ["run-1", "run-2", "run-3"]
    with pytest.raises(RuntimeError), first.transaction():
        first.next_id("run")  # burnt by a rolled-back call: fine to skip, never to hand out twice
        raise RuntimeError
    first.close()
    second = SqliteStore.open(path)
    assert second.next_id("run") in ("run-4", "run-5")
    second.close()


def test_a_database_from_a_newer_flowctl_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    SqliteStore.open(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer flowctl"):
        SqliteStore.open(path)


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "r.db")
    assert migrate(store.conn) == SCHEMA_VERSION
    store.close()


def test_concurrent_applies_with_the_same_expected_version_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    SqliteStore.open(path).close()
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def apply(i: int) -> None:
        s = SqliteStore.open(path)
        barrier.wait()
        try:
            s.add_bundle({"i": i}, f"h{i}", expected_version=0, meta={}, now=T0)
            outcomes.append("won")
        except VersionConflict as exc:
            assert exc.live == 1
            outcomes.append("conflict")
        finally:
            s.close()

    threads = [threading.Thread(target=apply, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
    check = SqliteStore.open(path)
    assert [v.version for v in check.bundle_versions()] == [1]
    check.close()


def test_claiming_moves_pending_messages_to_sending_once(store: SqliteStore) -> None:
    with store.transaction():
        for i in range(3):
            store.put_message(
                Message(id=f"msg-{i}", idempotency_key=f"r:s:{i}", channel="email", created_at=T0)
            )
    claimed = store.claim_messages(2)
    assert [m.id for m in claimed] == ["msg-0", "msg-1"] and {m.status for m in claimed} == {"sending"}
    assert [m.id for m in store.claim_messages(5)] == ["msg-2"]
    assert store.claim_messages(5) == []
    assert [m.id for m in store.messages_in_status("sending")] == ["msg-0", "msg-1", "msg-2"]


def test_purge_deletes_old_execution_logs_and_keeps_business_data(store: SqliteStore) -> None:
    old, recent = T0 - dt.timedelta(days=100), T0 - dt.timedelta(days=1)
    with store.transaction():
        for rid, ended in (("run-old", old), ("run-new", recent)):
            store.put_run(
                Run(
                    id=rid,
                    flow="f",
                    version=1,
                    status="succeeded",
                    started_at=ended,
                    updated_at=ended,
                    ended_at=ended,
                    object="contact",
                    record_id="c-1",
                )
            )
            store.put_step_attempt(
                StepAttempt(
                    run_id=rid, flow="f", step="s", status="succeeded", started_at=ended, ended_at=ended
                )
            )
        store.put_run(
            Run(id="run-open", flow="f", version=1, status="waiting", started_at=old, updated_at=old)
        )
        store.put_message(
            Message(id="m1", idempotency_key="run-old:s:1", channel="email", status="sent", created_at=old)
        )
        store.put_message(
            Message(
                id="m2", idempotency_key="run-open:s:1", channel="email", status="pending", created_at=old
            )
        )
        store.put_record(Record(object="contact", id="c-1", created_at=old, updated_at=old))
    counts = store.purge(T0 - dt.timedelta(days=90))
    assert counts["runs"] == 1 and counts["step_attempts"] == 1 and counts["messages"] == 1
    assert {r.id for r in store.list_runs()} == {"run-new", "run-open"}
    assert store.get_message("m2") is not None and store.get_record("contact", "c-1") is not None
