"""A run waiting `until_condition` on a path through a ref (`account.status`) wakes when the related record changes.

Each test runs on the memory store and on the SQLite store: the index lives in the store's kv.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowctl.engine.state import Run
from flowctl.lang.durations import Duration
from flowctl.sim.simulator import Simulator
from flowctl.store.memory import MemoryStore
from flowctl.store.sqlite import SqliteStore

from .harness import ACCOUNT, T0, USERS, flow, make_bundle

ACCOUNT_WITH_STATUS: dict[str, Any] = {**ACCOUNT, "fields": {**ACCOUNT["fields"], "status": {"type": "string"}}}


def _bundle(condition: dict[str, Any]) -> Any:
    steps: list[dict[str, Any]] = [
        {"id": "active", "wait": {"until_condition": condition, "timeout": "3d"}, "on_failure": {"goto": "chase"}},
        {"id": "welcome", "action": "log", "message": "account active"},
        {"id": "done", "stop": {"status": "succeeded", "reason": "active"}},
        {"id": "chase", "action": "log", "message": "account still inactive"},
    ]
    return make_bundle(ACCOUNT_WITH_STATUS, flow("await-account", steps))


LEAF = {"field": "account.status", "op": "eq", "value": "active"}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore | SqliteStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sqlite = SqliteStore.open(tmp_path / "runner.db")
    yield sqlite
    sqlite.close()


def _sim(store: MemoryStore | SqliteStore, condition: dict[str, Any] = LEAF) -> Simulator:
    sim = Simulator(_bundle(condition), start_at=T0, store=store)
    sim.load(USERS)
    sim.activate()
    for account in ("a-1", "a-2", "a-3"):
        _ingest(sim, "record_created", "account", account, status="trial")
    _ingest(sim, "record_created", "contact", "c-1", account="a-1")
    return sim


def _ingest(sim: Simulator, kind: str, object_name: str, record_id: str, **fields: Any) -> None:
    sim.ingest({"type": kind, "object": object_name, "record": {"id": record_id, **fields}})


def _at(sim: Simulator, offset: str) -> None:
    sim.advance_to(T0 + Duration.parse(offset).as_timedelta())


def _run(sim: Simulator) -> Run:
    (run,) = [r for r in sim.store.list_runs() if r.flow == "await-account"]
    return run


def _timeline(sim: Simulator) -> list[str]:
    return [e.text for e in sim.store.timeline("contact", "c-1")]


def _index(sim: Simulator) -> dict[str, dict[str, Any]]:
    return {ns: dict(sim.store.kv_items(ns)) for ns in ("condition_waits", "condition_reads")}  # type: ignore[attr-defined]


def test_the_wait_wakes_when_the_account_is_updated_and_not_before(store: MemoryStore | SqliteStore) -> None:
    sim = _sim(store)
    run = _run(sim)
    assert run.status == "waiting"
    assert _index(sim) == {
        "condition_waits": {"contact:c-1": [run.id], "account:a-1": [run.id]},
        "condition_reads": {run.id: ["contact:c-1", "account:a-1"]},
    }
    _at(sim, "1h")
    _ingest(sim, "record_updated", "account", "a-1", status="suspended")  # the account changes, condition false
    _ingest(sim, "record_updated", "account", "a-2", status="active")  # another account: not this contact's
    _ingest(sim, "record_updated", "contact", "c-1", first_name="Ann")  # its own record, still false
    assert _run(sim).status == "waiting" and _timeline(sim) == []
    _at(sim, "2h")
    _ingest(sim, "record_updated", "account", "a-1", status="active")
    run = _run(sim)
    assert (run.status, run.path) == ("succeeded", ["active", "welcome", "done"])
    woke = next(a for a in sim.store.step_attempts(run.id) if a.step == "active")
    assert (woke.status, woke.ended_at) == ("succeeded", T0 + Duration.parse("2h").as_timedelta())
    assert _timeline(sim) == ["account active"]
    assert _index(sim) == {"condition_waits": {}, "condition_reads": {}}, "the registrations end with the wait"
    sim.run_until(T0 + Duration.parse("5d").as_timedelta())
    assert _timeline(sim) == ["account active"], "the cancelled timeout does not fire"


def test_the_timeout_still_applies(store: MemoryStore | SqliteStore) -> None:
    sim = _sim(store)
    _at(sim, "1d")
    _ingest(sim, "record_updated", "account", "a-1", status="suspended")
    sim.run_until(T0 + Duration.parse("5d").as_timedelta())
    run = _run(sim)
    assert (run.status, run.path) == ("succeeded", ["active", "chase"])
    failed = next(a for a in sim.store.step_attempts(run.id) if a.step == "active")
    assert (failed.status, failed.error_class) == ("failed", "timeout")
    assert failed.ended_at == T0 + Duration.parse("3d").as_timedelta()
    assert _timeline(sim) == ["account still inactive"]
    assert _index(sim) == {"condition_waits": {}, "condition_reads": {}}
    _ingest(sim, "record_updated", "account", "a-1", status="active")  # too late: the run has moved on
    assert _timeline(sim) == ["account still inactive"]


def test_a_run_whose_ref_now_points_elsewhere_follows_the_new_record(store: MemoryStore | SqliteStore) -> None:
    sim = _sim(store)
    run_id = _run(sim).id
    _at(sim, "1h")
    _ingest(sim, "record_updated", "contact", "c-1", account="a-2")
    assert _index(sim) == {
        "condition_waits": {"contact:c-1": [run_id], "account:a-2": [run_id]},
        "condition_reads": {run_id: ["contact:c-1", "account:a-2"]},
    }
    _ingest(sim, "record_updated", "account", "a-1", status="active")  # the old account no longer counts
    assert _run(sim).status == "waiting"
    _at(sim, "2h")
    _ingest(sim, "record_updated", "account", "a-2", status="active")
    assert (_run(sim).status, _timeline(sim)) == ("succeeded", ["account active"])


def test_moving_the_ref_to_an_account_that_already_matches_wakes_the_run(store: MemoryStore | SqliteStore) -> None:
    sim = _sim(store)
    _ingest(sim, "record_updated", "account", "a-3", status="active")
    assert _run(sim).status == "waiting"
    _ingest(sim, "record_updated", "contact", "c-1", account="a-3")  # the own-record path still wakes it
    assert (_run(sim).status, _timeline(sim)) == ("succeeded", ["account active"])


def test_an_account_created_after_the_wait_began_wakes_the_run(store: MemoryStore | SqliteStore) -> None:
    sim = _sim(store)
    _ingest(sim, "record_updated", "contact", "c-1", account="a-9")  # a ref to a record not known yet
    assert _run(sim).status == "waiting"
    _ingest(sim, "record_created", "account", "a-9", status="active")
    assert _run(sim).status == "succeeded"


def test_an_expression_condition_reading_the_account_wakes_too(store: MemoryStore | SqliteStore) -> None:
    sim = _sim(store, {"expr": "record.account.status == 'active'"})
    _ingest(sim, "record_updated", "account", "a-1", status="active")
    assert (_run(sim).status, _timeline(sim)) == ("succeeded", ["account active"])


def test_cancelling_a_waiting_run_removes_its_registrations(store: MemoryStore | SqliteStore) -> None:
    sim = _sim(store)
    sim.engine.cancel_run(_run(sim).id, sim.now)
    assert _run(sim).status == "cancelled"
    assert _index(sim) == {"condition_waits": {}, "condition_reads": {}}
