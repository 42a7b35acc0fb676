"""`Engine`: the public API both shells call (docs/architecture.md "Engine calls").

Every call takes `now` (aware UTC; the engine never reads the wall clock),
runs inside one `store.transaction()`, and does all of its state changes
through the `Store`. Outbound effects are outbox rows; the shell delivers them
and reports back with `delivered`. A call's trace entries are returned where
useful and always appended to the store's trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Unpack

from flowctl.engine import runs, triggers
from flowctl.engine.assignment import record_assignment
from flowctl.engine.records import create_record, delete_record, new_record, update_fields
from flowctl.engine.runs import EngineError
from flowctl.engine.runtime import LATE_AFTER, Runtime, RuntimeOptions
from flowctl.engine.state import (
    DeliveryResult,
    Event,
    IngestResult,
    ProcessedEvent,
    Run,
    Task,
    TraceEntry,
)
from flowctl.engine.store import BundleSource, Store

__all__ = ["Engine", "EngineError"]

TASK_DECISIONS = {
    "approval": ("approved", "rejected"),
    "human_task": ("done", "approved", "rejected"),
    "compensation": ("done", "rejected"),
    "manual_dispatch": ("done", "approved", "rejected"),
    "task": ("done", "approved", "rejected"),
}


class Engine:
    """The pure core: `Engine(store, bundles)`.

    `secrets` is the mapping whose names `{{ secrets.NAME }}` may use (the
    values are never read here, see `flowctl.engine.secrets`); `any_secret`
    accepts every name (the simulator). `step_faults` injects failures into
    non-outbound steps (the simulator's `faults:`). `sla` receives the SLA hook calls.
    """

    def __init__(self, store: Store, bundles: BundleSource, **options: Unpack[RuntimeOptions]) -> None:
        self.store = store
        self.bundles = bundles
        self.rt = Runtime(store, bundles, **options)

    # ------------------------------------------------------------- internals
    def _drain(self) -> None:
        """Process queued record changes (and the changes they cause) in order."""
        rt = self.rt
        while rt.queue:
            change = rt.queue.popleft()
            record = rt.store.get_record(change.object, change.record_id)
            rt.sla.on_record_changed(rt, change, record)
            triggers.process_change(rt, change)

    def _started(self) -> list[str]:
        return [e.run_id for e in self.rt.collected if e.kind == "run" and e.status == "started" and e.run_id]

    def _suppressed(self) -> list[dict[str, Any]]:
        return [
            {"flow": e.flow, "reason": e.detail.get("reason"), "record": e.detail.get("record")}
            for e in self.rt.collected
            if e.kind == "suppressed"
        ]

    # ------------------------------------------------------------- bundles
    def activate(self, version: int, now: dt.datetime) -> list[TraceEntry]:
        """Make `version` live for new triggers; (re)plan date-trigger starts and schedules."""
        with self.store.transaction():
            self.rt.begin(now)
            if self.bundles.live_version() != version:
                raise EngineError(f"version {version} is not the live version of the bundle source",
                                  hint="make it live in the BundleSource before activating it")
            triggers.activate(self.rt, version)
            self.rt.sla.on_activate(self.rt, version)
            self._drain()
            return list(self.rt.collected)

    # ------------------------------------------------------------- events
    def ingest(self, event: Event | Mapping[str, Any], now: dt.datetime) -> IngestResult:
        """A record event or custom event (SPEC §9). A repeated idempotency key starts nothing."""
        ev = event if isinstance(event, Event) else Event.model_validate(dict(event))
        with self.store.transaction():
            rt = self.rt
            rt.begin(now)
            if ev.idempotency_key:
                seen = self.store.get_processed(ev.idempotency_key)
                if seen is not None:
                    rt.trace("event", status="duplicate", key=ev.idempotency_key, event_id=seen.event_id)
                    return IngestResult(event_id=seen.event_id, runs=list(seen.runs), duplicate=True,
                                        trace=list(rt.collected))
            event_id = self.store.next_id("evt")
            rt.trace("event", status=ev.type, event_id=event_id, object=ev.object, record=ev.record_id, name=ev.name,
                     key=ev.idempotency_key)
            if ev.type == "event":
                self._custom_event(ev, event_id)
            else:
                self._record_event(ev, event_id)
            self._drain()
            result = IngestResult(event_id=event_id, runs=self._started(), suppressed=self._suppressed(),
                                  trace=list(rt.collected))
            if ev.idempotency_key:
                self.store.put_processed(ProcessedEvent(idempotency_key=ev.idempotency_key, event_id=event_id,
                                                        runs=result.runs, at=rt.now))
            return result

    def _fields(self, object_name: str) -> Any:
        live = self.rt.live()
        return self.rt.fields_of(live[1], object_name) if live else None

    def _record_event(self, ev: Event, event_id: str) -> None:
        rt = self.rt
        if not ev.object or ev.record_id is None:
            raise EngineError(f"a {ev.type} event needs `object` and `record.id`")
        fields = self._fields(ev.object)
        existing = rt.store.get_record(ev.object, ev.record_id)
        values = {k: v for k, v in ev.record.items() if k != "id"}
        if ev.type == "record_created":
            record = new_record(ev.object, ev.record_id, values, ev.occurred_at or rt.now, fields)
            if "created_at" not in values:
                record.created_at = record.updated_at = ev.occurred_at or rt.now
            create_record(rt, record, depth=0, event_id=event_id)
        elif ev.type == "record_updated":
            if existing is None or existing.deleted:
                # A record we were never told about: take `before` as what it was, silently.
                existing = new_record(ev.object, ev.record_id, dict(ev.before or {}), rt.now, fields)
                rt.store.put_record(existing)
            update_fields(rt, existing, values, depth=0, event_id=event_id, fields=fields)
        elif ev.type == "record_deleted":
            if existing is not None and not existing.deleted:
                delete_record(rt, existing, event_id=event_id)

    def _custom_event(self, ev: Event, event_id: str) -> None:
        rt = self.rt
        record = None
        rid = ev.record_id
        if rid is not None:
            object_name = ev.object or self._event_object(ev.name)
            if object_name is not None:
                record = rt.store.get_record(object_name, rid)
                if record is None and len(ev.record) > 1:
                    record = new_record(object_name, rid, {k: v for k, v in ev.record.items() if k != "id"},
                                        rt.now, self._fields(object_name))
                    rt.store.put_record(record)
        triggers.process_event(rt, ev, event_id, record)

    def _event_object(self, name: str | None) -> str | None:
        """The object of the flows listening to a custom event (when the event did not say)."""
        live = self.rt.live()
        if live is None:
            return None
        for flow in live[1].flows.values():
            if flow.trigger.type == "event" and getattr(flow.trigger, "name", None) == name and flow.object:
                return flow.object
        return None

    def start_manual(self, flow: str, record_id: str | None, now: dt.datetime, *,
                     object: str | None = None) -> IngestResult:
        """Start a flow by hand (`flowctl run FLOW --record ID`); entry conditions, dedupe and reentry apply."""
        with self.store.transaction():
            rt = self.rt
            rt.begin(now)
            live = rt.live()
            if live is None:
                raise EngineError("no bundle is live", hint="apply a bundle first")
            version, bundle = live
            model = bundle.flows.get(flow)
            if model is None:
                raise EngineError(f"no flow named '{flow}' in the live version {version}")
            if not model.enabled:
                raise EngineError(f"flow '{flow}' is disabled", hint="set enabled: true and apply")
            record = None
            if record_id is not None:
                object_name = object or model.object
                if object_name is None:
                    raise EngineError(f"flow '{flow}' has no object; run it without a record")
                record = rt.store.get_record(object_name, record_id)
                if record is None or record.deleted:
                    raise EngineError(f"{object_name} '{record_id}' is not known to the engine",
                                      hint="send the record first (a record_created event)")
            elif model.object is not None:
                raise EngineError(f"flow '{flow}' runs on {model.object} records; pass one")
            event_id = self.store.next_id("evt")
            rt.trace("event", status="manual", event_id=event_id, flow=flow,
                     record=f"{record.object}/{record.id}" if record else None)
            trigger = {"type": "manual", "changed": [], "before": {}}
            triggers.try_start(rt, version, bundle, model, record, trigger, identity_values={"manual": event_id},
                               event_id=event_id)
            self._drain()
            return IngestResult(event_id=event_id, runs=self._started(), suppressed=self._suppressed(),
                                trace=list(rt.collected))

    # ------------------------------------------------------------- time
    def fire_due(self, now: dt.datetime, limit: int | None = None) -> int:
        """Fire every timer due at or before `now` in (due_at, creation) order; return how many fired."""
        fired = 0
        with self.store.transaction():
            rt = self.rt
            rt.begin(now)
            while limit is None or fired < limit:
                due = self.store.due_timers(rt.now, limit=1)
                if not due:
                    break
                timer = due[0]
                timer.status = "fired"
                timer.fired_at = rt.now
                timer.fired_late = rt.now - timer.due_at > LATE_AFTER
                self.store.put_timer(timer)
                fired += 1
                if timer.fired_late:
                    rt.trace("timer", run=self.store.get_run(timer.run_id) if timer.run_id else None,
                             status="late", timer=timer.id, timer_kind=timer.kind, due_at=timer.due_at.isoformat())
                if timer.kind in ("wake", "retry", "timeout"):
                    runs.on_run_timer(rt, timer)
                elif timer.kind == "date_trigger":
                    triggers.fire_date(rt, timer)
                elif timer.kind == "schedule":
                    triggers.fire_schedule(rt, timer)
                elif timer.kind == "sla":
                    rt.sla.on_timer(rt, timer)
                self._drain()
        return fired

    def next_due(self) -> dt.datetime | None:
        return self.store.next_due()

    # ------------------------------------------------------------- people and providers
    def complete_task(
        self,
        task_id: str,
        decision: str,
        now: dt.datetime,
        *,
        by: str | None = None,
        comment: str | None = None,
        data: Mapping[str, Any] | None = None,
        attachments: list[str] | None = None,
    ) -> Task:
        """Complete a task (approved|rejected for approvals, done|rejected for human and compensation tasks)."""
        with self.store.transaction():
            rt = self.rt
            rt.begin(now)
            task = self.store.get_task(task_id)
            if task is None:
                raise EngineError(f"no task '{task_id}'")
            if not task.is_open:
                raise EngineError(f"task {task_id} is already {task.status}")
            allowed = TASK_DECISIONS.get(task.kind, ("done",))
            if decision not in allowed:
                raise EngineError(f"'{decision}' is not a decision for a {task.kind.replace('_', ' ')} task",
                                  hint="use one of: " + ", ".join(allowed))
            task.status = "completed"
            task.decision = decision
            task.by = by
            task.comment = comment
            task.data = dict(data or {})
            task.attachments = list(attachments or [])
            task.completed_at = rt.now
            self.store.put_task(task)
            run = self.store.get_run(task.run_id) if task.run_id else None
            rt.trace("task", run=run, step=task.step, status="completed", task=task.id, task_kind=task.kind,
                     decision=decision, by=by)
            if task.kind == "manual_dispatch":
                self._dispatch_done(task)
            else:
                runs.on_task_completed(rt, task)
            self._drain()
            return self.store.get_task(task_id) or task

    def _dispatch_done(self, task: Task) -> None:
        """A manual dispatch names the assignee in `data.assignee`; it is written to the record."""
        rt = self.rt
        assignee = task.data.get("assignee") or task.data.get("user")
        if not assignee or not task.related_to or "/" not in task.related_to:
            return
        object_name, record_id = task.related_to.split("/", 1)
        record = rt.store.get_record(object_name, record_id)
        if record is None:
            return
        field = str(task.data.get("field") or "owner")
        run = rt.store.get_run(task.run_id) if task.run_id else None
        record_assignment(rt, record, field, str(assignee))
        update_fields(rt, record, {field: assignee}, run=run, fields=self._fields(object_name))
        rt.timeline(object_name, record_id, f"assigned to {assignee} (manual dispatch by {task.by or 'someone'})",
                    run=run, step=task.step)

    def delivered(self, message_id: str, result: DeliveryResult, now: dt.datetime) -> None:
        """The shell's report for an outbox row; the waiting step then succeeds, retries or fails."""
        with self.store.transaction():
            rt = self.rt
            rt.begin(now)
            message = self.store.get_message(message_id)
            if message is None:
                raise EngineError(f"no message '{message_id}' in the outbox")
            if message.status in ("sent", "failed"):
                return  # a repeated report (e.g. after a runner restart) changes nothing
            runs.on_delivered(rt, message, result)
            self._drain()

    # ------------------------------------------------------------- operators
    def cancel_run(self, run_id: str, now: dt.datetime) -> Run:
        with self.store.transaction():
            self.rt.begin(now)
            run = self._run(run_id)
            runs.cancel_run(self.rt, run)
            self._drain()
            return self._run(run_id)

    def retry_run(self, run_id: str, now: dt.datetime) -> Run:
        with self.store.transaction():
            self.rt.begin(now)
            run = self._run(run_id)
            runs.retry_run(self.rt, run)
            self._drain()
            return self._run(run_id)

    def revert_sla(self, object: str, record_id: str, clock: str, now: dt.datetime, *,
                   by: str | None = None) -> dict[str, Any]:
        """Undo an SLA breach (`flowctl sla revert`): restore the fields its breach actions changed."""
        with self.store.transaction():
            self.rt.begin(now)
            revert = getattr(self.rt.sla, "revert", None)
            if revert is None:
                raise EngineError("this engine runs no SLA clocks; there is no breach to revert")
            result: dict[str, Any] = revert(self.rt, object, record_id, clock, by)
            self._drain()
            return result

    def _run(self, run_id: str) -> Run:
        run = self.store.get_run(run_id)
        if run is None:
            raise EngineError(f"no run '{run_id}'")
        return run
