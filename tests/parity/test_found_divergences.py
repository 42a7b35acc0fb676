"""Regressions for what the parity work found, each run on both stores where the engine is involved.

- The memory store handed out and kept the engine's own kv lists (no copy), so an engine bug in the
  condition-wait index only showed on SQLite: a run resumed by a record change dropped the other
  runs waiting on that record from the index, and they never woke on their condition.
- merge_duplicates on a record with an empty match field crashed the whole engine call (a trace
  keyword collision), on both stores.
- The SQLite store's per-transaction read cache must follow writes, flushes and savepoint rollbacks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from flowctl.engine.state import Record
from flowctl.sim.simulator import Simulator
from flowctl.store.memory import MemoryStore
from flowctl.store.sqlite import SqliteStore

from .world import USERS, property_bundle

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
BUNDLE = property_bundle()


@pytest.fixture(params=["memory", "sqlite", "sqlite-group-commit"])
def shell(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Simulator, AbstractContextManager[None]]]:
    """A simulator on each store; with group commit every step below runs inside one open transaction."""
    store: MemoryStore | SqliteStore = MemoryStore() if request.param == "memory" else SqliteStore.open(
        tmp_path / "runner.db"
    )
    sim = Simulator(BUNDLE, start_at=T0, store=store)
    sim.load(USERS)
    sim.activate()
    batch: AbstractContextManager[None] = (
        store.transaction() if request.param == "sqlite-group-commit" else nullcontext()
    )
    yield sim, batch
    if isinstance(store, SqliteStore):
        store.close()


def _update(sim: Simulator, **fields: object) -> None:
    sim.ingest({"type": "record_updated", "object": "contact", "record": {"id": "c-1", **fields}})


def test_a_run_resumed_by_a_record_change_leaves_the_other_condition_waits_indexed(
    shell: tuple[Simulator, AbstractContextManager[None]],
) -> None:
    sim, batch = shell
    with batch:
        sim.ingest({"type": "record_created", "object": "contact",
                    "record": {"id": "c-1", "stage": "lead", "tier": "standard"}})
        _update(sim, stage="customer")  # await-score waits for score >= 8
        _update(sim, tier="gold")  # await-vip waits for status vip, then for score < 3
        _update(sim, score=9)  # await-score goes on; await-vip must stay in the index
        _update(sim, status="vip")  # await-vip goes on to its second wait (and is indexed again)
        _update(sim, score=1)  # ...which holds now
    runs = {run.flow: run for run in sim.store.list_runs(record=("contact", "c-1"))}
    assert runs["await-score"].status == "succeeded"
    vip = runs["await-vip"]
    assert (vip.status, vip.path) == ("succeeded", ["vip", "again", "done"])
    attempts = {a.step: a for a in sim.store.step_attempts(vip.id)}
    assert attempts["vip"].ended_at == attempts["again"].ended_at == T0, "woken by the record changes, not timeouts"
    assert any(e.text == "vip wait over for c-1" for e in sim.store.timeline("contact", "c-1"))
    assert sim.store.kv_get("condition_waits", "contact:c-1") is None


def test_merging_a_record_whose_match_fields_are_empty_is_a_step_not_a_crash(
    shell: tuple[Simulator, AbstractContextManager[None]],
) -> None:
    sim, batch = shell
    with batch:
        result = sim.ingest({"type": "record_created", "object": "contact", "record": {"id": "c-1"}})
    fold = next(run for run in sim.store.list_runs() if run.flow == "fold")
    assert fold.id in result.runs and fold.status == "succeeded"
    merge = next(a for a in sim.store.step_attempts(fold.id) if a.step == "merge")
    assert (merge.status, merge.reason, merge.output) == ("succeeded", "match fields empty", "c-1")


# --------------------------------------------------------------------------- the stores themselves


def test_the_memory_store_keeps_kv_values_apart_from_the_callers_objects() -> None:
    store = MemoryStore()
    waiting = ["run-1"]
    store.kv_put("condition_waits", "contact:c-1", waiting)
    waiting.append("run-2")  # the engine goes on using its list after the put
    read = store.kv_get("condition_waits", "contact:c-1")
    assert read == ["run-1"]
    read.append("run-3")
    assert store.kv_get("condition_waits", "contact:c-1") == ["run-1"]
    assert dict(store.kv_items("condition_waits")) == {"contact:c-1": ["run-1"]}


def _record(record_id: str) -> Record:
    return Record(object="contact", id=record_id, fields={"email": "a@example.com"}, created_at=T0, updated_at=T0)


def test_sqlite_sees_a_record_created_earlier_in_the_transaction_after_a_flush(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "runner.db")
    with store.transaction():
        assert store.get_record("contact", "c-1") is None  # cached as absent
        store.put_record(_record("c-1"))
        assert [r.id for r in store.records_of("contact")] == ["c-1"]  # flushes the write buffer
        found = store.get_record("contact", "c-1")
        assert found is not None and found.fields == {"email": "a@example.com"}
    assert store.get_record("contact", "c-1") is not None
    store.close()


def test_sqlite_forgets_what_a_rolled_back_savepoint_wrote_cached_reads_included(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "runner.db")
    with store.transaction():  # the writer's batch
        with store.transaction():  # job 1 commits
            store.put_record(_record("c-1"))
            store.kv_put("dedupe", "k", "2026-03-02T09:00:00+00:00")
        with pytest.raises(RuntimeError), store.transaction():  # job 2 fails after reading and writing
            assert store.get_record("contact", "c-2") is None
            store.put_record(_record("c-2"))
            store.records_of("contact")  # a flush inside the savepoint
            store.kv_put("dedupe", "k", "changed")
            store.kv_delete("dedupe", "other")
            raise RuntimeError("job 2 failed")
        assert store.get_record("contact", "c-2") is None
        assert store.get_record("contact", "c-1") is not None
        assert store.kv_get("dedupe", "k") == "2026-03-02T09:00:00+00:00"
        assert [r.id for r in store.records_of("contact")] == ["c-1"]
    assert [r.id for r in store.records_of("contact")] == ["c-1"]
    assert store.kv_get("dedupe", "k") == "2026-03-02T09:00:00+00:00"
    store.close()
