"""The `Store` protocol: the only way the engine reads and writes state.

Two implementations: `flowctl.store.memory.MemoryStore` (dicts; the
simulator) and `flowctl.store.sqlite` (the runner). The engine calls these
methods and nothing else; it never holds state between calls, so a runner
restart loses nothing that went through the store.

Rules every implementation follows:
- `get_*` return a model the caller may mutate; nothing changes in the store
  until the matching `put_*`/`add_*` is called with it (the memory store
  copies on read and write for exactly this reason).
- Listing methods return items in insertion (creation) order unless stated.
- `transaction()` groups the writes of one engine call: the runner commits
  them together (or rolls all back when the call raises); the memory store
  applies them immediately. Engine calls do not nest transactions.
- `next_id(prefix)` returns `<prefix>-<n>` with n = 1, 2, ... per prefix,
  never reused (persisted by the runner), so ids are deterministic in the
  simulator. `next_seq(name)` is the same counter as a number.

`BundleSource` is how the engine finds the bundle version a run is pinned to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from flowctl.engine.state import (
    Message,
    ProcessedEvent,
    Record,
    Run,
    StepAttempt,
    Task,
    TimelineEntry,
    Timer,
    TraceEntry,
)
from flowctl.resources.bundle import TypedBundle


@runtime_checkable
class Store(Protocol):
    # ------------------------------------------------------------- bookkeeping
    def transaction(self) -> AbstractContextManager[None]:
        """One engine call's writes, committed together."""
        ...

    def next_id(self, prefix: str) -> str:
        """A new id `<prefix>-<n>` (n counts per prefix from 1)."""
        ...

    def next_seq(self, name: str) -> int:
        """The next number (1, 2, ...) of counter `name` (trace, timeline and timer ordering)."""
        ...

    def kv_get(self, namespace: str, key: str) -> Any:
        """A JSON value the engine keeps for itself, or None.

        Namespaces the engine uses: `dedupe` (window starts per trigger
        identity), `reentry` (last run start per flow and record), `round_robin`
        (cursor per team), `date_plan` (planned date-trigger timer per flow and
        record), `assigned` (records assigned per user, for least_loaded),
        `engine` (the bundle version last activated), `condition_waits` and
        `condition_reads` (runs waiting `until_condition`, by the records their
        condition reads; see flowctl.engine.condition_waits), `faults`... (shell use).
        """
        ...

    def kv_put(self, namespace: str, key: str, value: Any) -> None: ...

    def kv_delete(self, namespace: str, key: str) -> None: ...

    # ------------------------------------------------------------- records
    def get_record(self, object: str, record_id: str) -> Record | None:
        """The record, deleted ones included (check `deleted`)."""
        ...

    def put_record(self, record: Record) -> None:
        """Insert or replace by (object, id)."""
        ...

    def records_of(self, object: str) -> Iterator[Record]:
        """Every record of `object` that is not deleted, in insertion order."""
        ...

    def add_timeline(self, entry: TimelineEntry) -> None: ...

    def timeline(self, object: str, record_id: str) -> list[TimelineEntry]:
        """The record's timeline, oldest first."""
        ...

    # ------------------------------------------------------------- runs and steps
    def get_run(self, run_id: str) -> Run | None: ...

    def put_run(self, run: Run) -> None:
        """Insert or replace by id."""
        ...

    def list_runs(
        self,
        *,
        flow: str | None = None,
        record: tuple[str, str] | None = None,
        statuses: Iterable[str] | None = None,
        parent_run_id: str | None = None,
    ) -> list[Run]:
        """Runs matching every given filter, oldest first. `record` is (object, id)."""
        ...

    def put_step_attempt(self, attempt: StepAttempt) -> None:
        """Insert or replace by (run_id, step, attempt)."""
        ...

    def step_attempts(self, run_id: str) -> list[StepAttempt]:
        """A run's step attempts in the order they were first written."""
        ...

    # ------------------------------------------------------------- tasks
    def get_task(self, task_id: str) -> Task | None: ...

    def put_task(self, task: Task) -> None: ...

    def list_tasks(
        self,
        *,
        run_id: str | None = None,
        step: str | None = None,
        assignee: str | None = None,
        open_only: bool = False,
    ) -> list[Task]:
        """Tasks matching every given filter, oldest first. `open_only`: status not_started or in_progress."""
        ...

    # ------------------------------------------------------------- outbox
    def get_message(self, message_id: str) -> Message | None: ...

    def put_message(self, message: Message) -> None:
        """Insert or replace by id (idempotency_key is unique)."""
        ...

    def pending_messages(self, limit: int | None = None) -> list[Message]:
        """Messages with status pending, oldest first."""
        ...

    def list_messages(self, *, run_id: str | None = None) -> list[Message]:
        """Every message (any status), oldest first."""
        ...

    # ------------------------------------------------------------- timers
    def add_timer(self, timer: Timer) -> None: ...

    def put_timer(self, timer: Timer) -> None:
        """Replace by id (the engine marks timers fired or cancelled)."""
        ...

    def get_timer(self, timer_id: str) -> Timer | None: ...

    def cancel_timers(self, owner: str, kind: str | None = None) -> int:
        """Set every pending timer of `owner` (and `kind`, when given) to cancelled; return how many."""
        ...

    def due_timers(self, now: dt.datetime, limit: int | None = None) -> list[Timer]:
        """Pending timers with due_at <= now, ordered by (due_at, seq)."""
        ...

    def next_due(self) -> dt.datetime | None:
        """The earliest due_at of a pending timer, or None."""
        ...

    # ------------------------------------------------------------- events and trace
    def get_processed(self, idempotency_key: str) -> ProcessedEvent | None: ...

    def put_processed(self, processed: ProcessedEvent) -> None: ...

    def append_trace(self, entry: TraceEntry) -> None: ...

    def trace(self, *, run_id: str | None = None, since_seq: int = 0) -> list[TraceEntry]:
        """Trace entries with seq > since_seq (optionally of one run), in seq order."""
        ...


@runtime_checkable
class BundleSource(Protocol):
    """The bundle versions the engine can run.

    `live_version()` is the version new triggers start on (None before the
    first apply); `bundle(version)` returns that version's models (a run is
    pinned to the version that started it, SPEC §10.9) and raises KeyError for
    an unknown version. Implementations should cache the parsed TypedBundle:
    the engine asks for it on every call.
    """

    def live_version(self) -> int | None: ...

    def bundle(self, version: int) -> TypedBundle: ...


class StaticBundles:
    """A BundleSource over bundles held in memory (the simulator, tests, the runner's cache)."""

    def __init__(self, bundles: dict[int, TypedBundle] | None = None, live: int | None = None) -> None:
        self._bundles: dict[int, TypedBundle] = dict(bundles or {})
        self._live = live if live is not None else (max(self._bundles) if self._bundles else None)

    def add(self, version: int, bundle: TypedBundle, *, live: bool = True) -> None:
        self._bundles[version] = bundle
        if live:
            self._live = version

    def set_live(self, version: int) -> None:
        if version not in self._bundles:
            raise KeyError(version)
        self._live = version

    def live_version(self) -> int | None:
        return self._live

    def bundle(self, version: int) -> TypedBundle:
        return self._bundles[version]
