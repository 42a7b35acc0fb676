"""What one engine call works with: the store, the bundles, `now`, the trace and the change queue.

The engine is pure: everything it knows comes through here, and everything
it does goes to the store. `Runtime` lives as long as the `Engine`; `now` and
the per-call lists are reset at the start of every public call.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, Unpack

from flowctl.engine.sla import SlaHook, installed_hook
from flowctl.engine.state import Run, Task, TaskKind, TimelineEntry, Timer, TraceEntry
from flowctl.engine.store import BundleSource, Store
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import FieldDef, Flow, ObjectSchema

# A chain of flows changing records that trigger flows stops beyond this depth (loop guard across flows).
MAX_DEPTH = 8
# A run that enters one step more often than this fails (loop guard inside a flow, SPEC §3 goto).
MAX_VISITS = 100
# A timer fired more than this after its due time is marked late (the runner was down or behind).
LATE_AFTER = dt.timedelta(seconds=60)

ChangeType = Literal["record_created", "record_updated", "record_deleted"]

# (flow, step, run_id, attempt) -> error class to inject, or None. Simulator only.
StepFaults = Callable[[str, str, str, int], str | None]


@dataclass
class RecordChange:
    """A record change waiting to be matched against triggers, date plans and waiting runs."""

    type: ChangeType
    object: str
    record_id: str
    before: dict[str, Any] = field(default_factory=dict)  # previous values of the changed fields
    changed: frozenset[str] = frozenset()
    depth: int = 0  # 0 for changes from outside; a flow's change has its run's depth + 1
    cause_run_id: str | None = None
    event_id: str | None = None


class RuntimeOptions(TypedDict, total=False):
    """The keyword options of `Engine(store, bundles, ...)`, handed on to `Runtime` (meanings: `Engine`)."""

    secrets: Mapping[str, str] | None
    any_secret: bool
    step_faults: StepFaults | None
    sla: SlaHook | None


class Runtime:
    def __init__(self, store: Store, bundles: BundleSource, **options: Unpack[RuntimeOptions]) -> None:
        self.store = store
        self.bundles = bundles
        self.secret_names = frozenset(options.get("secrets") or {})
        self.any_secret = options.get("any_secret", False)
        sla = options.get("sla")
        self.sla: SlaHook = sla if sla is not None else installed_hook()
        self.step_faults = options.get("step_faults")
        self.now: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        self.collected: list[TraceEntry] = []
        self.queue: deque[RecordChange] = deque()
        self._fields_cache: dict[tuple[int, str], dict[str, FieldDef] | None] = {}
        self._objects_cache: dict[int, dict[str, ObjectSchema]] = {}

    def begin(self, now: dt.datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("engine calls need an aware datetime for `now`")
        self.now = now.astimezone(dt.UTC)
        self.collected = []

    # ------------------------------------------------------------- bundles
    def bundle(self, version: int) -> TypedBundle:
        return self.bundles.bundle(version)

    def live(self) -> tuple[int, TypedBundle] | None:
        version = self.bundles.live_version()
        if version is None:
            return None
        return version, self.bundles.bundle(version)

    def flow_of(self, run: Run) -> Flow:
        return self.bundle(run.version).flows[run.flow]

    def fields_of(self, bundle: TypedBundle, object_name: str | None) -> dict[str, FieldDef] | None:
        if object_name is None:
            return None
        key = (id(bundle), object_name)
        if key not in self._fields_cache:
            # merged_objects rebuilds the merged schema on every call; cache it per bundle.
            if len(self._fields_cache) > 2048:
                self._fields_cache.clear()
            self._fields_cache[key] = bundle.object_fields(object_name)
        return self._fields_cache[key]

    def object_schema(self, bundle: TypedBundle, object_name: str) -> ObjectSchema | None:
        key = id(bundle)
        objects = self._objects_cache.get(key)
        if objects is None:
            if len(self._objects_cache) > 256:
                self._objects_cache.clear()
            objects = self._objects_cache[key] = bundle.objects
        return objects.get(object_name)

    # ------------------------------------------------------------- writing
    def trace(
        self,
        kind: str,
        *,
        run: Run | None = None,
        flow: str | None = None,
        step: str | None = None,
        status: str | None = None,
        attempt: int | None = None,
        **detail: Any,
    ) -> TraceEntry:
        entry = TraceEntry(
            seq=self.store.next_seq("trace"),
            at=self.now,
            kind=kind,
            run_id=run.id if run is not None else None,
            flow=flow if flow is not None else (run.flow if run is not None else None),
            step=step,
            status=status,
            attempt=attempt,
            detail={k: v for k, v in detail.items() if v is not None},
        )
        self.store.append_trace(entry)
        self.collected.append(entry)
        return entry

    def timeline(self, object_name: str, record_id: str, text: str, *, run: Run | None = None,
                 step: str | None = None) -> None:
        self.store.add_timeline(
            TimelineEntry(
                seq=self.store.next_seq("timeline"),
                object=object_name,
                record_id=record_id,
                at=self.now,
                text=text,
                run_id=run.id if run else None,
                flow=run.flow if run else None,
                step=step,
            )
        )

    def new_timer(
        self,
        kind: str,
        due_at: dt.datetime,
        owner: str,
        *,
        run_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Timer:
        seq = self.store.next_seq("timer")
        timer = Timer(
            id=f"timer-{seq}",
            seq=seq,
            kind=kind,
            due_at=due_at.astimezone(dt.UTC),
            owner=owner,
            run_id=run_id,
            payload=payload or {},
            created_at=self.now,
        )
        self.store.add_timer(timer)
        return timer

    def new_task(self, run: Run, step: str, kind: TaskKind, **fields: Any) -> Task:
        """A task of `run`'s step `step`, created now. Not stored yet: the caller puts it once it is complete."""
        return Task(
            id=self.store.next_id("task"),
            kind=kind,
            run_id=run.id,
            flow=run.flow,
            step=step,
            created_at=self.now,
            **fields,
        )


def run_owner(run_id: str) -> str:
    return f"run:{run_id}"
