"""One engine, two shells: the simulator's MemoryStore and the runner's SqliteStore behave identically.

Every flow test of the example repository runs three times: on the
MemoryStore (what `flowctl test` uses), on a SqliteStore with one transaction
per engine call, and on a SqliteStore with the whole test inside one
transaction, every engine call in its own savepoint: the runner's group
commit, where the store's write buffers and read caches live across calls.
Each must pass and end in the same observable state.

The property test drives a small flow set (waits, condition waits, retries
with injected faults, approvals, compensation, merges, an SLA policy) with
random record events, task completions and clock jumps, batched at random
the way the runner's writer batches jobs, and compares the stores after
every batch.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from flowctl.errors import FlowctlError
from flowctl.lang.durations import Duration
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import Fault
from flowctl.resources.project import Project, load_project
from flowctl.sim.flowtest import TestResult, run_flow_test
from flowctl.sim.simulator import Simulator, as_utc, narrow
from flowctl.store.memory import MemoryStore
from flowctl.store.sqlite import SqliteStore

from .world import USERS, first_difference, property_bundle, state_dump

ROOT = Path(__file__).resolve().parents[2]
PROJECT: Project = load_project(ROOT)
BUNDLE = TypedBundle.from_project(PROJECT)
TESTS = {source.file: (test, source) for test, source in zip(PROJECT.tests, PROJECT.test_sources, strict=True)}


def test_the_example_repository_has_flow_tests_to_compare() -> None:
    assert len(TESTS) >= 15, sorted(TESTS)


def _run(file: str, store: MemoryStore | SqliteStore, *, batched: bool = False) -> tuple[TestResult, dict[str, Any]]:
    test, source = TESTS[file]
    if batched:
        assert isinstance(store, SqliteStore)
        with store.transaction():
            result = run_flow_test(PROJECT, BUNDLE, test, source, store=store)
    else:
        result = run_flow_test(PROJECT, BUNDLE, test, source, store=store)
    end = as_utc(test.start_at) + Duration.parse(test.run_for).as_timedelta()
    return result, state_dump(store, narrow(BUNDLE, test.flows), end)


def _explain(result: TestResult) -> str:
    problems = [f"{c.path}: {c.problem}" for c in result.failures]
    return "; ".join([result.error or "", *problems])


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore.open(tmp_path / "runner.db")
    yield store
    store.close()


@pytest.mark.parametrize("batched", [False, True], ids=["call-per-transaction", "group-commit"])
@pytest.mark.parametrize("file", sorted(TESTS))
def test_every_flow_test_passes_on_sqlite_and_ends_in_the_same_state(
    file: str, batched: bool, sqlite_store: SqliteStore
) -> None:
    memory_result, memory = _run(file, MemoryStore())
    sqlite_result, sqlite = _run(file, sqlite_store, batched=batched)
    assert memory_result.passed, f"in memory: {_explain(memory_result)}"
    assert sqlite_result.passed, f"on SQLite: {_explain(sqlite_result)}"
    assert memory["records"] and (memory["runs"] or memory["sla"]), "no run, no clock: nothing was compared"
    assert (sqlite_result.runs, sqlite_result.messages) == (memory_result.runs, memory_result.messages)
    difference = first_difference(memory, sqlite)
    assert difference is None, f"the stores diverge at {difference}"


# --------------------------------------------------------------------------- the property

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
IDS = ("c-1", "c-2")
EMAILS = ("a@example.com", "b@example.com", None)

field_values = st.fixed_dictionaries(
    {},
    optional={
        "first_name": st.sampled_from(["Ana", "Bo", "Chen"]),
        "email": st.sampled_from(EMAILS),
        "stage": st.sampled_from(["lead", "customer", "churned"]),
        "tier": st.sampled_from(["standard", "premium", "gold"]),
        "status": st.sampled_from(["new", "open", "paused", "vip", "done"]),
        "score": st.integers(min_value=0, max_value=10),
    },
)
# A created record usually has an email, often the same one as another record: duplicates to merge.
created_values = st.builds(lambda email, rest: {**rest, "email": email},
                           st.sampled_from(["a@example.com", "a@example.com", "b@example.com", None]), field_values)
operations = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(IDS), created_values),
    st.tuples(st.just("create"), st.sampled_from(IDS), created_values),
    st.tuples(st.just("update"), st.sampled_from(IDS), field_values),
    st.tuples(st.just("delete"), st.sampled_from(IDS), st.just({})),
    st.tuples(st.just("complete"), st.integers(0, 5), st.sampled_from(["approved", "rejected", "done"])),
    st.tuples(st.just("complete_any"), st.integers(0, 12), st.sampled_from(["approved", "done"])),
    st.tuples(st.just("wait"), st.sampled_from([1, 5, 30, 61, 125, 180, 360, 1500]), st.just(None)),
)
scenarios = st.lists(st.tuples(operations, st.booleans()), min_size=1, max_size=24)
faults = st.fixed_dictionaries(
    {"hello": st.integers(0, 3), "push": st.integers(0, 4), "touch": st.integers(0, 1)}
)


def _faults(counts: dict[str, int]) -> list[Fault]:
    flows = {"hello": "welcome", "push": "scored", "touch": "fold"}
    return [Fault(flow=flows[step], step=step, error="HTTP 503", times=n) for step, n in counts.items() if n]


def _apply(sim: Simulator, op: tuple[str, Any, Any]) -> str:
    """One operation; returns what happened (compared between the stores too)."""
    kind, target, value = op
    try:
        if kind == "wait":
            sim.advance_to(sim.now + dt.timedelta(minutes=target))
            return f"now {sim.now.isoformat()}"
        if kind in ("create", "update", "delete"):
            event_type = {"create": "record_created", "update": "record_updated", "delete": "record_deleted"}[kind]
            result = sim.ingest({"type": event_type, "object": "contact", "record": {"id": target, **value}})
            return f"{result.event_id} runs={result.runs} suppressed={result.suppressed}"
        open_tasks = sim.store.list_tasks(open_only=True)
        if kind == "complete":
            # Blocking tasks (approvals, compensation): the scenario's people at work.
            blocking = [t for t in open_tasks if t.kind in ("approval", "compensation")]
            if not blocking:
                return "no task"
            task = blocking[target % len(blocking)]
            if task.kind == "approval":
                decision = "approved" if value == "done" else value
            else:  # compensation: done or rejected
                decision = "done" if value == "approved" else value
            done = sim.complete_task(task.id, decision, by="wang.fang", comment="parity")
            return f"{done.id} {done.status} {done.decision}"
        # Any task id, open or not: a completed one must be refused the same way by both shells.
        done = sim.complete_task(f"task-{target}", value, by="li.lei")
        return f"{done.id} {done.status} {done.decision}"
    except FlowctlError as exc:
        return f"error: {type(exc).__name__}: {exc.message}"


def _simulator(bundle: TypedBundle, store: MemoryStore | SqliteStore, fault_counts: dict[str, int]) -> Simulator:
    sim = Simulator(bundle, start_at=T0, faults=_faults(fault_counts), store=store)
    sim.load(USERS)
    sim.activate()
    return sim


def _label_coverage(store: SqliteStore) -> None:
    """Tell hypothesis' statistics (`--hypothesis-show-statistics`) which behaviours the examples reached."""
    trace = store.trace()
    labels = {
        "a step retried": any(e.kind == "step" and e.status == "retrying" for e in trace),
        "a condition wait resumed": any(e.kind == "step" and e.detail.get("condition") for e in trace),
        "a task was completed": any(e.kind == "task" and e.status == "completed" for e in trace),
        "a compensation task": any(t.kind == "compensation" for t in store.list_tasks()),
        "a duplicate merged": any(e.kind == "record" and "merged_into" in e.detail.get("changes", {}) for e in trace),
        "an SLA clock breached": any(e.kind == "sla" and e.status == "breached" for e in trace),
        "a run was suppressed": any(e.kind == "suppressed" for e in trace),
    }
    for label, reached in labels.items():
        if reached:
            event(label)


PROPERTY_BUNDLE = property_bundle()
_db_numbers = itertools.count()


@example(  # two condition waits on one record; the first resumes, the second must stay indexed
    scenario=[(("create", "c-1", {"stage": "lead", "tier": "standard", "email": None}), False),
              (("update", "c-1", {"stage": "customer"}), False), (("update", "c-1", {"tier": "gold"}), True),
              (("update", "c-1", {"score": 9}), True), (("update", "c-1", {"status": "vip"}), False),
              (("wait", 30, None), False), (("update", "c-1", {"score": 1}), True)],
    fault_counts={"hello": 0, "push": 0, "touch": 0},
)
@example(  # duplicates merged while the call that created them is still open; a webhook compensated
    scenario=[(("create", "c-1", {"email": "a@example.com"}), False),
              (("create", "c-2", {"email": "a@example.com", "score": 2}), False),
              (("update", "c-2", {"score": 7}), True), (("complete", 0, "approved"), False),
              (("wait", 61, None), False), (("wait", 180, None), True), (("complete", 0, "done"), True),
              (("complete_any", 3, "done"), False), (("delete", "c-1", {}), True)],
    fault_counts={"hello": 1, "push": 4, "touch": 1},
)
@settings(max_examples=int(os.environ.get("PARITY_EXAMPLES", "100")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios, fault_counts=faults)
def test_random_record_events_leave_both_stores_in_the_same_state(
    tmp_path: Path, scenario: list[tuple[tuple[str, Any, Any], bool]], fault_counts: dict[str, int]
) -> None:
    sqlite_store = SqliteStore.open(tmp_path / f"prop-{next(_db_numbers)}.db")
    try:
        memory = _simulator(PROPERTY_BUNDLE, MemoryStore(), fault_counts)
        sqlite = _simulator(PROPERTY_BUNDLE, sqlite_store, fault_counts)
        # Batches end where the scenario says so, like the runner's writer committing the jobs it has queued.
        batches: list[list[tuple[str, Any, Any]]] = [[]]
        for op, commit_after in scenario:
            batches[-1].append(op)
            if commit_after:
                batches.append([])
        for number, batch in enumerate(b for b in batches if b):
            memory_said = [_apply(memory, op) for op in batch]
            with sqlite_store.transaction():
                sqlite_said = [_apply(sqlite, op) for op in batch]
            assert sqlite_said == memory_said, f"batch {number}: {batch}"
            difference = first_difference(
                state_dump(memory.store, PROPERTY_BUNDLE, memory.now),  # type: ignore[arg-type]
                state_dump(sqlite_store, PROPERTY_BUNDLE, sqlite.now),
            )
            assert difference is None, f"after batch {number} ({batch}) the stores diverge at {difference}"
        # Let every timer run out (retries, waits, timeouts, SLA deadlines) and compare once more.
        end = memory.now + dt.timedelta(days=3)
        memory.run_until(end)
        with sqlite_store.transaction():
            sqlite.run_until(end)
        difference = first_difference(
            state_dump(memory.store, PROPERTY_BUNDLE, end),  # type: ignore[arg-type]
            state_dump(sqlite_store, PROPERTY_BUNDLE, end),
        )
        assert difference is None, f"at the end the stores diverge at {difference}"
        _label_coverage(sqlite_store)
    finally:
        sqlite_store.close()
