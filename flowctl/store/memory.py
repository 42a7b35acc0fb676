"""The in-memory Store: what `flowctl simulate` and `flowctl test` run on.

Models (and kv values) are copied on the way in and out (`isolate=True`, the default), so an
engine path that mutates a model and forgets to write it back behaves here
exactly as it would on SQLite: the change is lost. That keeps "works in the
simulator, breaks in the runner" bugs out. Benchmarks may turn isolation off.
"""

from __future__ import annotations

import bisect
import datetime as dt
import types
import typing
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel

from flowctl.engine.state import (
    OPEN_TASK_STATUSES,
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

M = TypeVar("M", bound=BaseModel)

_IMMUTABLE_TYPES = (str, int, float, bool, type(None), dt.datetime, dt.date)
_MUTABLE_FIELDS: dict[type, tuple[str, ...]] = {}


def _immutable(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return all(_immutable(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return True
    return annotation in _IMMUTABLE_TYPES


def _mutable_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    names = _MUTABLE_FIELDS.get(cls)
    if names is None:
        names = _MUTABLE_FIELDS[cls] = tuple(n for n, f in cls.model_fields.items() if not _immutable(f.annotation))
    return names


def _clone_value(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _clone_value(v) for k, v in value.items()}
    if kind is list:
        return [_clone_value(v) for v in value]
    if isinstance(value, BaseModel):
        return clone(value)
    # str, numbers, datetimes, None, tuples of those: immutable, shared safely.
    return value


def clone(model: M) -> M:
    """A deep copy of a state model, several times faster than `model_copy(deep=True)`.

    State models hold only JSON-like values, datetimes and nested state models;
    only the fields whose type can hold a dict, list or model are copied, and
    the copy is assembled the way pydantic's own `__copy__` does (no validation).
    """
    cls = type(model)
    data = model.__dict__.copy()
    for name in _mutable_fields(cls):
        value = data[name]
        if value is not None:
            data[name] = _clone_value(value)
    copied = cls.__new__(cls)
    object.__setattr__(copied, "__dict__", data)
    object.__setattr__(copied, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))
    extra = model.__pydantic_extra__
    object.__setattr__(copied, "__pydantic_extra__", None if extra is None else _clone_value(extra))
    object.__setattr__(copied, "__pydantic_private__", None)
    return copied


class MemoryStore:
    """Implements `flowctl.engine.store.Store` with dicts."""

    def __init__(self, *, isolate: bool = True) -> None:
        self.isolate = isolate
        self._counters: dict[str, int] = defaultdict(int)
        self._kv: dict[tuple[str, str], Any] = {}
        self._records: dict[tuple[str, str], Record] = {}
        self._records_by_object: dict[str, dict[str, Record]] = defaultdict(dict)
        self._timeline: dict[tuple[str, str], list[TimelineEntry]] = defaultdict(list)
        self._runs: dict[str, Run] = {}
        self._runs_by_record: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._attempts: dict[str, dict[tuple[str, int], StepAttempt]] = defaultdict(dict)
        self._tasks: dict[str, Task] = {}
        self._messages: dict[str, Message] = {}
        self._pending: dict[str, None] = {}  # ordered set of pending message ids
        self._timers: dict[str, Timer] = {}
        # Pending timers sorted by (due_at, seq); cancelled/fired ones are
        # dropped lazily when they reach the front.
        self._timer_heap: list[tuple[dt.datetime, int, str]] = []
        self._timers_by_owner: dict[str, list[str]] = defaultdict(list)
        self._processed: dict[str, ProcessedEvent] = {}
        self._trace: list[TraceEntry] = []
        self._trace_seqs: list[int] = []

    def _in(self, model: M) -> M:
        return clone(model) if self.isolate else model

    def _out(self, model: M | None) -> M | None:
        if model is None:
            return None
        return clone(model) if self.isolate else model

    # ------------------------------------------------------------- bookkeeping
    @contextmanager
    def transaction(self) -> Iterator[None]:
        # Writes apply immediately; the simulator has no concurrent reader and
        # an engine call that raises is a bug the simulator reports, not hides.
        yield

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{self.next_seq(prefix)}"

    def next_seq(self, name: str) -> int:
        self._counters[name] += 1
        return self._counters[name]

    def kv_get(self, namespace: str, key: str) -> Any:
        value = self._kv.get((namespace, key))
        return _clone_value(value) if self.isolate else value

    def kv_put(self, namespace: str, key: str, value: Any) -> None:
        # Copied like the models: a list the engine keeps appending to after the put must not
        # change the stored value behind its back (SQLite stores the JSON of the moment).
        self._kv[(namespace, key)] = _clone_value(value) if self.isolate else value

    def kv_delete(self, namespace: str, key: str) -> None:
        self._kv.pop((namespace, key), None)

    def kv_items(self, namespace: str) -> Iterator[tuple[str, Any]]:
        """Every (key, value) of a namespace, by key (reports read the SLA clocks this way)."""
        for (ns, key), value in sorted(self._kv.items(), key=lambda kv: kv[0][1]):
            if ns == namespace:
                yield key, _clone_value(value) if self.isolate else value

    # ------------------------------------------------------------- records
    def get_record(self, object: str, record_id: str) -> Record | None:
        return self._out(self._records.get((object, record_id)))

    def put_record(self, record: Record) -> None:
        stored = self._in(record)
        self._records[record.key] = stored
        self._records_by_object[record.object][record.id] = stored

    def records_of(self, object: str) -> Iterator[Record]:
        for record in list(self._records_by_object.get(object, {}).values()):
            if not record.deleted:
                yield self._out(record)  # type: ignore[misc]

    def add_timeline(self, entry: TimelineEntry) -> None:
        self._timeline[(entry.object, entry.record_id)].append(self._in(entry))

    def timeline(self, object: str, record_id: str) -> list[TimelineEntry]:
        return [self._in(e) for e in self._timeline.get((object, record_id), [])]

    # ------------------------------------------------------------- runs and steps
    def get_run(self, run_id: str) -> Run | None:
        return self._out(self._runs.get(run_id))

    def put_run(self, run: Run) -> None:
        if run.id not in self._runs and run.record_key is not None:
            self._runs_by_record[run.record_key].append(run.id)
        self._runs[run.id] = self._in(run)

    def list_runs(
        self,
        *,
        flow: str | None = None,
        record: tuple[str, str] | None = None,
        statuses: Iterable[str] | None = None,
        parent_run_id: str | None = None,
    ) -> list[Run]:
        wanted = set(statuses) if statuses is not None else None
        ids: Iterable[str] = self._runs_by_record.get(record, []) if record is not None else self._runs
        out: list[Run] = []
        for run_id in ids:
            run = self._runs[run_id]
            if flow is not None and run.flow != flow:
                continue
            if wanted is not None and run.status not in wanted:
                continue
            if parent_run_id is not None and run.parent_run_id != parent_run_id:
                continue
            out.append(self._in(run))
        return out

    def put_step_attempt(self, attempt: StepAttempt) -> None:
        self._attempts[attempt.run_id][(attempt.step, attempt.attempt)] = self._in(attempt)

    def step_attempts(self, run_id: str) -> list[StepAttempt]:
        return [self._in(a) for a in self._attempts.get(run_id, {}).values()]

    # ------------------------------------------------------------- tasks
    def get_task(self, task_id: str) -> Task | None:
        return self._out(self._tasks.get(task_id))

    def put_task(self, task: Task) -> None:
        self._tasks[task.id] = self._in(task)

    def list_tasks(
        self,
        *,
        run_id: str | None = None,
        step: str | None = None,
        assignee: str | None = None,
        open_only: bool = False,
    ) -> list[Task]:
        out: list[Task] = []
        for task in self._tasks.values():
            if run_id is not None and task.run_id != run_id:
                continue
            if step is not None and task.step != step:
                continue
            if assignee is not None and task.assignee != assignee:
                continue
            if open_only and task.status not in OPEN_TASK_STATUSES:
                continue
            out.append(self._in(task))
        return out

    # ------------------------------------------------------------- outbox
    def get_message(self, message_id: str) -> Message | None:
        return self._out(self._messages.get(message_id))

    def put_message(self, message: Message) -> None:
        self._messages[message.id] = self._in(message)
        if message.status == "pending":
            self._pending[message.id] = None
        else:
            self._pending.pop(message.id, None)

    def pending_messages(self, limit: int | None = None) -> list[Message]:
        ids = list(self._pending)
        if limit is not None:
            ids = ids[:limit]
        return [self._in(self._messages[i]) for i in ids]

    def list_messages(self, *, run_id: str | None = None) -> list[Message]:
        return [self._in(m) for m in self._messages.values() if run_id is None or m.run_id == run_id]

    # ------------------------------------------------------------- timers
    def add_timer(self, timer: Timer) -> None:
        self._timers[timer.id] = self._in(timer)
        self._timers_by_owner[timer.owner].append(timer.id)
        if timer.status == "pending":
            bisect.insort(self._timer_heap, (timer.due_at, timer.seq, timer.id))

    def put_timer(self, timer: Timer) -> None:
        previous = self._timers.get(timer.id)
        self._timers[timer.id] = self._in(timer)
        if timer.status == "pending" and (previous is None or previous.status != "pending"
                                          or previous.due_at != timer.due_at):
            bisect.insort(self._timer_heap, (timer.due_at, timer.seq, timer.id))

    def get_timer(self, timer_id: str) -> Timer | None:
        return self._out(self._timers.get(timer_id))

    def cancel_timers(self, owner: str, kind: str | None = None) -> int:
        count = 0
        for timer_id in self._timers_by_owner.get(owner, []):
            timer = self._timers[timer_id]
            if timer.status == "pending" and (kind is None or timer.kind == kind):
                timer.status = "cancelled"
                count += 1
        return count

    def _live_front(self) -> None:
        heap = self._timer_heap
        i = 0
        while i < len(heap):
            due, _, timer_id = heap[i]
            timer = self._timers[timer_id]
            if timer.status == "pending" and timer.due_at == due:
                break
            i += 1
        if i:
            del heap[:i]

    def due_timers(self, now: dt.datetime, limit: int | None = None) -> list[Timer]:
        self._live_front()
        out: list[Timer] = []
        seen: set[str] = set()
        for due, _, timer_id in self._timer_heap:
            if due > now or (limit is not None and len(out) >= limit):
                break
            timer = self._timers[timer_id]
            if timer.status == "pending" and timer.due_at == due and timer_id not in seen:
                seen.add(timer_id)
                out.append(self._in(timer))
        return out

    def next_due(self) -> dt.datetime | None:
        self._live_front()
        return self._timer_heap[0][0] if self._timer_heap else None

    # ------------------------------------------------------------- events and trace
    def get_processed(self, idempotency_key: str) -> ProcessedEvent | None:
        return self._out(self._processed.get(idempotency_key))

    def put_processed(self, processed: ProcessedEvent) -> None:
        self._processed[processed.idempotency_key] = self._in(processed)

    def append_trace(self, entry: TraceEntry) -> None:
        # Trace entries are append-only: nobody mutates one after writing it, so no copy is needed.
        self._trace.append(entry)
        self._trace_seqs.append(entry.seq)

    def trace(self, *, run_id: str | None = None, since_seq: int = 0) -> list[TraceEntry]:
        entries = self._trace
        if since_seq:
            # seq is increasing, so skip ahead with a binary search.
            start = bisect.bisect_right(self._trace_seqs, since_seq)
            entries = entries[start:]
        return [e for e in entries if run_id is None or e.run_id == run_id]
