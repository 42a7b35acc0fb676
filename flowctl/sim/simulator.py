"""The simulation shell: the engine over an in-memory store on a virtual clock.

The clock never reads the wall clock: it jumps to the next due timer. At one
instant, scripted input (events, task completions) goes before timers
(`advance_to` fires only timers due strictly before the instant); timers fire
in due order, ties in creation order. Outbound messages are delivered at the
instant they are written, through recording connectors, and reported back to
the engine exactly as the runner's outbox worker does.

The store is the in-memory one by default; any `Store` works (the parity
tests run every flow test on the runner's SQLite store too, to prove that the
two shells behave the same).
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterable, Mapping
from typing import Any

from flowctl.connectors.recording import RecordingConnectors
from flowctl.engine.api import Engine
from flowctl.engine.records import new_record
from flowctl.engine.sla import installed_hook
from flowctl.engine.state import Event, IngestResult, Task
from flowctl.engine.store import StaticBundles, Store
from flowctl.errors import FlowctlError
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import Fault, Stub
from flowctl.store.memory import MemoryStore

# A simulation that fires more timers than this is stuck in a loop (a cron every second for a year).
MAX_TIMERS = 2_000_000
VERSION = 1


class SimulationError(FlowctlError):
    """The simulation could not go on (a scripted step found nothing to act on, a runaway loop)."""


class RelaxedGc:
    """Collect cyclic garbage less often while the engine runs.

    A simulation allocates hundreds of thousands of short-lived models that
    hold no reference cycles; with the default thresholds the collector walks
    the growing heap over and over (half the time of a 10,000-record run).
    The previous thresholds are restored afterwards.
    """

    def __enter__(self) -> None:
        self.previous = gc.get_threshold()
        gc.set_threshold(max(self.previous[0], 50_000), max(self.previous[1], 20), max(self.previous[2], 100))

    def __exit__(self, *exc: object) -> None:
        gc.set_threshold(*self.previous)


def narrow(bundle: TypedBundle, flows: Iterable[str] | None) -> TypedBundle:
    """Only `flows` start on triggers (others stay callable by call_flow); SLA policies narrowed alike."""
    if flows is None:
        return bundle
    keep = set(flows)
    unknown = keep - set(bundle.flows) - set(bundle.sla_policies)
    if unknown:
        raise SimulationError(f"`flows:` names no flow or SLA policy called {', '.join(sorted(unknown))}")
    return TypedBundle(
        flows={n: (f if n in keep else f.model_copy(update={"enabled": False})) for n, f in bundle.flows.items()},
        sla_policies={n: p for n, p in bundle.sla_policies.items() if n in keep},
        calendars=bundle.calendars,
        teams=bundle.teams,
        templates=bundle.templates,
        defined_objects=bundle.defined_objects,
    )


def as_utc(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        return instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC)


class Simulator:
    def __init__(
        self,
        bundle: TypedBundle,
        *,
        start_at: dt.datetime,
        faults: Iterable[Fault] = (),
        stubs: Iterable[Stub] = (),
        flows: Iterable[str] | None = None,
        isolate: bool = True,
        store: Store | None = None,
    ) -> None:
        """`store`: where the engine keeps its state; default a fresh MemoryStore (`isolate` applies to it only)."""
        self.bundle = narrow(bundle, flows)
        self.store: Store = store if store is not None else MemoryStore(isolate=isolate)
        self.connectors = RecordingConnectors(faults, stubs)
        self.engine = Engine(
            self.store,
            StaticBundles({VERSION: self.bundle}, live=VERSION),
            any_secret=True,
            step_faults=self.connectors.step_fault,
            sla=installed_hook(),
        )
        self.start_at = as_utc(start_at)
        self.now = self.start_at
        self.timers_fired = 0

    # ------------------------------------------------------------- setup
    def load(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Put fixture records in the store silently: no trigger fires, no clock starts (§10.11)."""
        for data in records:
            object_name = str(data["object"])
            fields = self.bundle.object_fields(object_name)
            record = new_record(object_name, str(data["id"]), data, self.start_at, fields)
            self.store.put_record(record)

    def activate(self) -> None:
        self.engine.activate(VERSION, self.now)
        self.deliver()

    # ------------------------------------------------------------- the clock
    def _fire_until(self, instant: dt.datetime, *, inclusive: bool) -> None:
        while True:
            due = self.store.next_due()
            if due is None or due > instant or (due == instant and not inclusive):
                break
            self.now = max(self.now, due)
            self.timers_fired += self.engine.fire_due(self.now, limit=1)
            self.deliver()
            if self.timers_fired > MAX_TIMERS:
                raise SimulationError(f"more than {MAX_TIMERS:,} timers fired; a flow seems to loop on timers")

    def advance_to(self, instant: dt.datetime) -> None:
        """Fire every timer due before `instant` (not at it), then set the clock to `instant`."""
        instant = as_utc(instant)
        with RelaxedGc():
            self._fire_until(instant, inclusive=False)
        self.now = max(self.now, instant)

    def run_until(self, instant: dt.datetime) -> None:
        """Fire every timer due at or before `instant`, then set the clock to it."""
        instant = as_utc(instant)
        with RelaxedGc():
            self._fire_until(instant, inclusive=True)
        self.now = max(self.now, instant)

    def deliver(self) -> None:
        """Deliver every pending outbox row at the current instant (more may appear as steps go on)."""
        while True:
            pending = self.store.pending_messages()
            if not pending:
                return
            for message in pending:
                result = self.connectors.deliver(message, self.now)
                self.engine.delivered(message.id, result, self.now)

    # ------------------------------------------------------------- input
    def ingest(self, event: Event | Mapping[str, Any]) -> IngestResult:
        with RelaxedGc():
            result = self.engine.ingest(event, self.now)
            self.deliver()
        return result

    def start_manual(self, flow: str, record_id: str | None, *, object: str | None = None) -> IngestResult:
        result = self.engine.start_manual(flow, record_id, self.now, object=object)
        self.deliver()
        return result

    def open_task_for_step(self, step: str, *, record: str | None = None, by: str | None = None) -> Task | None:
        """The oldest open task created by `step`, narrowed by record id and assignee (§10.11)."""
        for task in self.store.list_tasks(step=step, open_only=True):
            if record is not None and task.related_to not in (record, None) and \
                    task.related_to.split("/", 1)[-1] != record:
                continue
            if by is not None and task.assignee not in (None, by) and by not in task.approvers:
                continue
            return task
        return None

    def complete_task(self, task_id: str, decision: str, *, by: str | None = None, comment: str | None = None,
                      data: Mapping[str, Any] | None = None) -> Task:
        task = self.engine.complete_task(task_id, decision, self.now, by=by, comment=comment, data=data)
        self.deliver()
        return task
