"""SLA clocks in the engine (SPEC §4, §10.10): the `SlaHook` that keeps, advances and acts on clocks.

The math is `flowctl.engine.sla_clock` (pure functions over a `ClockState`);
this module is where it meets the engine:

- **State.** One JSON document per record in the store's kv namespace `sla`
  (key `<object>/<id>`): every clock of every policy on that record
  (`<policy>:<clock>`), its pending timer, the runs its breach actions
  started and its escalation log. The key `#objects` lists the objects that
  have clocks, so an activation can revisit them. Both stores keep it, so the
  simulator and the runner run the same clocks.
- **Record changes** (`on_record_changed`, called for every create, update and
  delete before triggers are matched): a clock starts on create, when
  `applies_when` first holds, or when its `start_when` holds; `applies_when`
  turning false cancels the record's clocks of that policy; `stop_when` stops
  a clock for good; `pause_when` pauses and resumes it (the remaining time
  carries over); a different matching target re-targets it (elapsed kept, due
  moved, warning and breach re-armed, an immediate breach when already past).
- **Timers.** Each running clock has at most one pending timer of kind `sla`
  (owner `sla:<object>:<id>:<policy>:<clock>`) at its next threshold
  (`sla_clock.next_wakeup`). When it fires, the clock is advanced and what
  became due runs. A timer that fell due while the runner was down fires once
  after restart; its events are marked late.
- **Actions.** `on_warning`, `on_breach` and each escalation level run once
  per clock as a run of a synthetic flow (`flowctl.engine.sla_flows`) pinned
  to the live bundle version, through the same step executors as flows, with
  `sla` (clock, target, due_at, elapsed, ...) and `team(name)` in the template
  context. The breach reason and the handler (who the breach actions assigned
  the record to, or notified) go on the record's timeline and the clock's log.
- **Revert.** `revert` restores the fields the breach and escalation actions
  of one clock changed (read from those runs' record changes), unless someone
  changed them since, and silences the escalations still pending.
- **Trace.** Every transition is a trace entry of kind `sla` (started, paused,
  resumed, retargeted, warned, breached, escalated, stopped, cancelled,
  reverted) with the due time, so `flowctl simulate` shows the clocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from flowctl.engine import sla_clock
from flowctl.engine.context import condition_context, record_before, template_context
from flowctl.engine.records import update_fields
from flowctl.engine.runs import EngineError, start_run
from flowctl.engine.runtime import LATE_AFTER, RecordChange, Runtime
from flowctl.engine.sla_clock import ClockEvent, ClockState
from flowctl.engine.sla_flows import action_flow_name, action_steps, flow_model
from flowctl.engine.state import Record, Run, Timer, json_value
from flowctl.lang.calendars import BusinessCalendar
from flowctl.lang.conditions import evaluate
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import SlaPolicy

__all__ = [
    "NAMESPACE", "RecordClocks", "SlaClocks", "TrackedClock", "clock_summary", "format_seconds",
    "load_record_clocks", "record_views", "sla_figures", "stored_clocks",
]

NAMESPACE = "sla"
OBJECTS_KEY = "#objects"
ALWAYS = BusinessCalendar.always()

LogKind = Literal["warning", "breach", "escalation", "revert"]


class SlaLogEntry(BaseModel):
    """One line of a clock's escalation log: what fired, why, and who handles it."""

    model_config = ConfigDict(extra="forbid")

    kind: LogKind
    at: dt.datetime = Field(description="the threshold instant (the revert time for a revert)")
    noticed_at: dt.datetime = Field(description="when the engine acted (later than `at` for a late timer)")
    level: int | None = Field(None, description="escalation level, 1-based")
    reason: str
    handler: str | None = Field(None, description="the assignee the actions chose, else who they notified")
    run_id: str | None = Field(None, description="the run of the actions")
    late: bool = False
    by: str | None = Field(None, description="revert: the operator")
    restored: dict[str, Any] = Field(default_factory=dict, description="revert: the fields put back")
    kept: dict[str, Any] = Field(default_factory=dict, description="revert: fields changed since, left alone")


class TrackedClock(BaseModel):
    """A clock with what the engine needs around it."""

    model_config = ConfigDict(extra="forbid")

    state: ClockState
    timer_id: str | None = None
    timer_due: dt.datetime | None = None
    action_runs: list[str] = Field(default_factory=list, description="runs of on_breach and escalations")
    log: list[SlaLogEntry] = Field(default_factory=list)
    reverted_at: dt.datetime | None = None
    reverted_by: str | None = None


class RecordClocks(BaseModel):
    """Every SLA clock of one record. kv namespace `sla`, key `<object>/<id>`."""

    model_config = ConfigDict(extra="forbid")

    object: str
    record_id: str
    clocks: dict[str, TrackedClock] = Field(default_factory=dict, description="by `<policy>:<clock>`")


# --------------------------------------------------------------------------- small pieces


def format_seconds(seconds: int | None) -> str:
    """Business seconds as `6h`, `1h30m`, `45m`, `30s` (what `{{ sla.elapsed }}` prints)."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    seconds = abs(int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s else ""]
    return sign + ("".join(parts) or "0s")


def _iso(instant: dt.datetime | None) -> str | None:
    return json_value(instant) if instant is not None else None


def _local(instant: dt.datetime | None, calendar: BusinessCalendar) -> str:
    """An instant in the calendar's zone for people: `2026-03-02 14:00 +08:00`."""
    if instant is None:
        return "-"
    local = instant.astimezone(ZoneInfo(calendar.timezone))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def _doc_key(object_name: str, record_id: str) -> str:
    return f"{object_name}/{record_id}"


def _timer_owner(state: ClockState) -> str:
    object_name, _, record_id = state.record.partition("/")
    return f"sla:{object_name}:{record_id}:{state.policy}:{state.clock}"


def calendar_for(bundle: TypedBundle, policy: SlaPolicy) -> BusinessCalendar | None:
    """The policy's business calendar (24x7 without one); None when it names an unknown calendar."""
    if policy.calendar is None:
        return ALWAYS
    model = bundle.calendars.get(policy.calendar)
    return BusinessCalendar.from_model(model) if model is not None else None


def clock_summary(tracked: TrackedClock, now: dt.datetime, calendar: BusinessCalendar) -> dict[str, Any]:
    """A clock as `flowctl sla status`, the runner API and flow tests see it (documented in docs/sla.md)."""
    state = tracked.state
    elapsed = sla_clock.elapsed_at(state, now, calendar)
    return {
        "policy": state.policy,
        "clock": state.clock,
        "status": state.status,
        "target": state.target_duration,
        "target_name": state.target_name,
        "calendar": state.calendar,
        "started_at": _iso(state.started_at),
        "due_at": _iso(state.due_at),
        "warn_at": _iso(state.warn_at),
        "elapsed_seconds": elapsed,
        "remaining_seconds": max(0, state.target_seconds - elapsed),
        "overdue_seconds": sla_clock.overdue_at(state, now, calendar),
        "warned": state.warned,
        "warned_at": _iso(state.warned_at),
        "breached": state.breached,
        "breached_at": _iso(state.breached_at),
        "escalations": sorted(level + 1 for level in state.escalated),
        "stopped_at": _iso(state.stopped_at),
        "reverted_at": _iso(tracked.reverted_at),
        "reverted_by": tracked.reverted_by,
        "log": [
            {
                "kind": e.kind,
                "at": _iso(e.at),
                "level": e.level,
                "reason": e.reason,
                "handler": e.handler,
                "run_id": e.run_id,
                "late": e.late,
                "by": e.by,
                "restored": e.restored,
                "kept": e.kept,
            }
            for e in tracked.log
        ],
    }


def record_views(doc: RecordClocks, bundle: TypedBundle | None, now: dt.datetime) -> list[dict[str, Any]]:
    """`clock_summary` of every clock of a record, measured with the calendars of `bundle` (the live one)."""
    out: list[dict[str, Any]] = []
    for tracked in doc.clocks.values():
        policy = bundle.sla_policies.get(tracked.state.policy) if bundle else None
        calendar = (calendar_for(bundle, policy) if bundle and policy else None) or ALWAYS
        out.append({"object": doc.object, "record": doc.record_id, **clock_summary(tracked, now, calendar)})
    return out


def load_record_clocks(kv_get: Any, object_name: str, record_id: str) -> RecordClocks | None:
    """A record's clock document through a store's `kv_get` (the runner's read connections use this)."""
    raw = kv_get(NAMESPACE, _doc_key(object_name, record_id))
    return RecordClocks.model_validate(raw) if raw else None


# --------------------------------------------------------------------------- the hook


class SlaClocks:
    """The engine's SLA clocks (the `SlaHook` the simulator and the runner install)."""

    supported = True

    # ------------------------------------------------------------- store
    @staticmethod
    def load(rt: Runtime, object_name: str, record_id: str) -> RecordClocks | None:
        return load_record_clocks(rt.store.kv_get, object_name, record_id)

    @staticmethod
    def _save(rt: Runtime, doc: RecordClocks) -> None:
        rt.store.kv_put(NAMESPACE, _doc_key(doc.object, doc.record_id), doc.model_dump(mode="json"))
        objects: list[str] = rt.store.kv_get(NAMESPACE, OBJECTS_KEY) or []
        if doc.object not in objects:
            rt.store.kv_put(NAMESPACE, OBJECTS_KEY, sorted([*objects, doc.object]))

    # ------------------------------------------------------------- hook calls
    def on_activate(self, rt: Runtime, version: int) -> None:
        """A new version is live: re-check every clock against its (maybe changed or removed) policy."""
        bundle = rt.bundle(version)
        for object_name in rt.store.kv_get(NAMESPACE, OBJECTS_KEY) or []:
            for record in list(rt.store.records_of(object_name)):
                doc = self.load(rt, object_name, record.id)
                if doc is not None and any(t.state.status in ("running", "paused") for t in doc.clocks.values()):
                    self._reconcile(rt, version, bundle, record, doc, change=None)

    def on_record_changed(self, rt: Runtime, change: RecordChange, record: Record | None) -> None:
        live = rt.live()
        if live is None:
            return
        version, bundle = live
        if not any(p.object == change.object for p in bundle.sla_policies.values()):
            return  # clocks of a policy removed since are cancelled by the activation that removed it
        doc = self.load(rt, change.object, change.record_id) or RecordClocks(object=change.object,
                                                                              record_id=change.record_id)
        if record is None or record.deleted:
            self._cancel_all(rt, bundle, doc, "the record was deleted")
            return
        self._reconcile(rt, version, bundle, record, doc, change=change)

    def on_timer(self, rt: Runtime, timer: Timer) -> None:
        payload = timer.payload
        object_name, record_id, key = payload.get("object"), payload.get("record"), payload.get("key")
        if not (object_name and record_id and key):
            rt.trace("error", status="sla_timer_invalid", timer=timer.id, reason="an SLA timer without its clock")
            return
        doc = self.load(rt, object_name, record_id)
        tracked = doc.clocks.get(key) if doc is not None else None
        if doc is None or tracked is None or tracked.timer_id != timer.id:
            return  # the clock moved on (paused, stopped, re-targeted): this timer is stale
        tracked.timer_id = tracked.timer_due = None
        live = rt.live()
        record = rt.store.get_record(object_name, record_id)
        policy = live[1].sla_policies.get(tracked.state.policy) if live else None
        if live is None or policy is None or record is None or record.deleted:
            why = "the record was deleted" if record is None or record.deleted else "the policy was removed"
            self._cancel_all(rt, live[1] if live else None, doc, why, only=[key])
            return
        version, bundle = live
        calendar = self._calendar(rt, bundle, policy)
        if calendar is None:
            self._save(rt, doc)
            return
        state, events = sla_clock.advance(tracked.state, rt.now, calendar)
        tracked.state = state
        self._schedule(rt, tracked, calendar)
        self._save(rt, doc)
        self._fire(rt, version, bundle, policy, record, doc, tracked, calendar, events, depth=0)

    def clock_view(self, rt: Runtime, record_id: str, clock: str) -> dict[str, Any] | None:
        """A record's clock (by clock name, or `<policy>:<clock>`) as flow tests see it; None when absent."""
        for view in self.record_clocks(rt, None, record_id):
            if view["clock"] == clock or f"{view['policy']}:{view['clock']}" == clock:
                return view
        return None

    # ------------------------------------------------------------- library API
    def record_clocks(self, rt: Runtime, object_name: str | None, record_id: str) -> list[dict[str, Any]]:
        """Every clock of a record (of any object when `object_name` is None), as of `rt.now`."""
        live = rt.live()
        objects = [object_name] if object_name else list(rt.store.kv_get(NAMESPACE, OBJECTS_KEY) or [])
        out: list[dict[str, Any]] = []
        for obj in objects:
            doc = self.load(rt, obj, record_id)
            if doc is not None:
                out.extend(record_views(doc, live[1] if live else None, rt.now))
        return out

    def revert(self, rt: Runtime, object_name: str, record_id: str, clock: str, by: str | None) -> dict[str, Any]:
        """Undo a breach: put back the fields the clock's breach and escalation actions changed."""
        doc = self.load(rt, object_name, record_id)
        matches = [(k, t) for k, t in (doc.clocks.items() if doc else []) if clock in (t.state.clock, k)]
        if doc is None or not matches:
            known = ", ".join(sorted({t.state.clock for t in doc.clocks.values()})) if doc else ""
            raise EngineError(f"no SLA clock '{clock}' on {object_name} {record_id}",
                              hint=f"clocks of this record: {known}" if known else "this record has no SLA clocks")
        if len(matches) > 1:
            raise EngineError(f"{object_name} {record_id} has a '{clock}' clock in several policies",
                              hint="name it as <policy>:<clock>: " + ", ".join(k for k, _ in matches))
        key, tracked = matches[0]
        state = tracked.state
        if not state.breached:
            raise EngineError(f"the {state.clock} clock of {object_name} {record_id} has not breached",
                              hint="only a breach can be reverted")
        if tracked.reverted_at is not None:
            raise EngineError(f"the {state.clock} breach of {object_name} {record_id} was already reverted "
                              f"by {tracked.reverted_by or 'someone'} at {_iso(tracked.reverted_at)}")
        record = rt.store.get_record(object_name, record_id)
        if record is None or record.deleted:
            raise EngineError(f"{object_name} {record_id} is not known to the engine")
        original, last = self._breach_changes(rt, tracked, object_name, record_id)
        restore = {f: v for f, v in original.items() if record.fields.get(f) == last[f]}
        kept = {f: record.fields.get(f) for f in original if f not in restore}
        live = rt.live()
        bundle = live[1] if live else None
        policy = bundle.sla_policies.get(state.policy) if bundle else None
        calendar = (calendar_for(bundle, policy) if bundle and policy else None) or ALWAYS
        who = by or "an operator"
        # A reverted breach escalates no further: its pending levels count as done.
        tracked.state = state.model_copy(update={"escalated": list(range(len(state.escalations_after)))})
        tracked.reverted_at, tracked.reverted_by = rt.now, by
        tracked.log.append(SlaLogEntry(kind="revert", at=rt.now, noticed_at=rt.now, by=by, restored=restore,
                                       kept=kept, reason=f"breach reverted by {who}"))
        self._schedule(rt, tracked, calendar)
        doc.clocks[key] = tracked
        self._save(rt, doc)
        rt.trace("sla", status="reverted", policy=state.policy, clock=state.clock, record=state.record, by=by,
                 restored=restore or None, kept=kept or None)
        shown = ", ".join(f"{f} → {_shown(v)}" for f, v in restore.items()) or "nothing to restore"
        skipped = f" (left alone, changed since: {', '.join(kept)})" if kept else ""
        rt.timeline(object_name, record_id, f"SLA breach of {state.clock} ({state.policy}) reverted by {who}: "
                                            f"{shown}{skipped}")
        if restore:
            fields = rt.fields_of(bundle, object_name) if bundle else None
            update_fields(rt, record, restore, depth=0, fields=fields)
        return {
            "object": object_name,
            "id": record_id,
            "policy": state.policy,
            "clock": state.clock,
            "reverted_at": _iso(rt.now),
            "reverted_by": by,
            "restored": restore,
            "kept": kept,
        }

    # ------------------------------------------------------------- internals
    @staticmethod
    def _breach_changes(rt: Runtime, tracked: TrackedClock, object_name: str,
                        record_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(field → value before the first breach action changed it, field → value the actions left)."""
        original: dict[str, Any] = {}
        last: dict[str, Any] = {}
        for run_id in tracked.action_runs:
            for entry in rt.store.trace(run_id=run_id):
                d = entry.detail
                if entry.kind != "record" or entry.status != "updated" or d.get("object") != object_name \
                        or d.get("record") != record_id:
                    continue
                for name, (before, after) in (d.get("changes") or {}).items():
                    original.setdefault(name, before)
                    last[name] = after
        return original, last

    def _calendar(self, rt: Runtime, bundle: TypedBundle, policy: SlaPolicy) -> BusinessCalendar | None:
        calendar = calendar_for(bundle, policy)
        if calendar is None:
            rt.trace("error", status="sla_calendar_unknown", policy=policy.name,
                     reason=f"SLA policy {policy.name}: unknown calendar '{policy.calendar}'; its clocks do not run")
        return calendar

    def _cancel_all(self, rt: Runtime, bundle: TypedBundle | None, doc: RecordClocks, reason: str,
                    only: Iterable[str] | None = None) -> None:
        keys = set(only) if only is not None else set(doc.clocks)
        changed = False
        for key, tracked in doc.clocks.items():
            if key not in keys or tracked.state.status in ("stopped", "cancelled"):
                continue
            policy = bundle.sla_policies.get(tracked.state.policy) if bundle else None
            calendar = (calendar_for(bundle, policy) if bundle and policy else None) or ALWAYS
            tracked.state = sla_clock.cancel(tracked.state, rt.now, calendar)
            self._trace(rt, "cancelled", tracked.state, reason=reason)
            self._schedule(rt, tracked, calendar)
            changed = True
        if changed:
            self._save(rt, doc)

    def _reconcile(self, rt: Runtime, version: int, bundle: TypedBundle, record: Record, doc: RecordClocks,
                   change: RecordChange | None) -> None:
        """Bring every clock of the record in line with the record and the live policies."""
        pending: list[tuple[SlaPolicy, TrackedClock, BusinessCalendar, list[ClockEvent]]] = []
        live_keys: set[str] = set()
        for policy in sorted(bundle.sla_policies.values(), key=lambda p: p.name):
            if policy.object != record.object:
                continue
            calendar = self._calendar(rt, bundle, policy)
            if calendar is None:
                continue
            holds = self._condition_holds(rt, bundle, record, calendar.timezone)

            applies = policy.applies_when is None or holds(policy.applies_when)
            for clock in policy.clock_names:
                key = f"{policy.name}:{clock}"
                live_keys.add(key)
                tracked = doc.clocks.get(key)
                spec = policy.clocks.get(clock)
                if tracked is None:
                    if not applies or not self._starts(policy, clock, record, change, holds):
                        continue
                    target = sla_clock.select_target(policy, holds, clock)
                    if target is None or (spec is not None and spec.stop_when is not None and holds(spec.stop_when)):
                        continue
                    # SPEC §4: a clock starts when the record is created, so a create event that reaches us
                    # late (CRM outage, import) counts from the record's `created_at` and may breach at once,
                    # exactly like a timer that fell due while the runner was down. A later start
                    # (start_when, applies_when becoming true) starts now.
                    started_at = self._start_instant(rt, policy, clock, record, change)
                    state = sla_clock.start(policy, clock, _doc_key(record.object, record.id), target, started_at,
                                            calendar)
                    self._trace(rt, "started", state, warn_at=_iso(state.warn_at), calendar=policy.calendar)
                    if spec is not None and spec.pause_when is not None and holds(spec.pause_when):
                        state = sla_clock.pause(state, started_at, calendar)
                        self._trace(rt, "paused", state, **self._progress(state, rt.now, calendar))
                    state, events = sla_clock.advance(state, rt.now, calendar)
                    tracked = doc.clocks[key] = TrackedClock(state=state)
                else:
                    if tracked.state.status in ("stopped", "cancelled"):
                        continue  # a stopped clock stays stopped (§10.10)
                    state, events = sla_clock.advance(self._refresh_policy(tracked.state, policy), rt.now, calendar)
                    if not applies:
                        state = sla_clock.cancel(state, rt.now, calendar)
                        self._trace(rt, "cancelled", state, reason="applies_when no longer holds")
                    elif spec is not None and spec.stop_when is not None and holds(spec.stop_when):
                        state = sla_clock.stop(state, rt.now, calendar)
                        self._trace(rt, "stopped", state, breached=state.breached,
                                    **self._progress(state, rt.now, calendar))
                    else:
                        state, more = self._retarget(rt, policy, clock, state, calendar, holds)
                        events += more
                        paused = spec is not None and spec.pause_when is not None and holds(spec.pause_when)
                        if paused and state.status == "running":
                            state = sla_clock.pause(state, rt.now, calendar)
                            self._trace(rt, "paused", state, **self._progress(state, rt.now, calendar))
                        elif not paused and state.status == "paused":
                            state = sla_clock.resume(state, rt.now, calendar)
                            self._trace(rt, "resumed", state, warn_at=_iso(state.warn_at),
                                        **self._progress(state, rt.now, calendar))
                    tracked.state = state
                self._schedule(rt, tracked, calendar)
                pending.append((policy, tracked, calendar, events))
        # Clocks whose policy is gone from the live version (or lost the clock) end here.
        gone = [k for k, t in doc.clocks.items() if k not in live_keys and t.state.status in ("running", "paused")]
        if gone:
            self._cancel_all(rt, bundle, doc, "its SLA policy is no longer live", only=gone)
        if not doc.clocks:
            return
        self._save(rt, doc)
        depth = change.depth if change is not None else 0
        for policy, tracked, calendar, events in pending:
            if events:
                self._fire(rt, version, bundle, policy, record, doc, tracked, calendar, events, depth=depth)

    @staticmethod
    def _condition_holds(rt: Runtime, bundle: TypedBundle, record: Record, timezone: str) -> Any:
        """`holds(condition, subject=record)`: a condition on the record (or on another version of it)."""

        def context(subject: Record) -> Any:
            return condition_context(rt, bundle, record=subject, object_name=record.object, timezone=timezone,
                                     expr_context=template_context(rt, bundle, run=None, record=subject))

        current = context(record)

        def holds(condition: Any, subject: Record | None = None) -> bool:
            return evaluate(condition, current if subject is None else context(subject))

        return holds

    @staticmethod
    def _start_instant(rt: Runtime, policy: SlaPolicy, clock: str, record: Record,
                       change: RecordChange | None) -> dt.datetime:
        """`created_at` for a clock that starts on create (never in the future); `now` otherwise."""
        spec = policy.clocks.get(clock)
        on_create = change is not None and change.type == "record_created"
        if on_create and (spec is None or spec.start_when is None) and record.created_at is not None:
            return min(record.created_at, rt.now)
        return rt.now

    @staticmethod
    def _starts(policy: SlaPolicy, clock: str, record: Record, change: RecordChange | None, holds: Any) -> bool:
        """Whether a clock that does not exist yet starts now (§4, §10.10)."""
        if change is None:
            return False  # an activation starts nothing: records stored silently get no clocks
        spec = policy.clocks.get(clock)
        if spec is not None and spec.start_when is not None:
            return bool(holds(spec.start_when))
        if change.type == "record_created":
            return True
        if change.type == "record_updated" and policy.applies_when is not None:
            # `applies_when` first holds: it did not before this update.
            return not holds(policy.applies_when, record_before(record, change.before))
        return False

    @staticmethod
    def _refresh_policy(state: ClockState, policy: SlaPolicy) -> ClockState:
        """Take warn_before and escalations from the live policy (an apply may have changed them)."""
        from flowctl.lang.durations import Duration

        escalations = [Duration.parse(e.after).nominal_seconds() for e in policy.escalations]
        if state.warn_before == policy.warn_before and state.escalations_after == escalations:
            return state
        return state.model_copy(update={"warn_before": policy.warn_before, "escalations_after": escalations,
                                        "escalated": [lv for lv in state.escalated if lv < len(escalations)]})

    def _retarget(self, rt: Runtime, policy: SlaPolicy, clock: str, state: ClockState,
                  calendar: BusinessCalendar, holds: Any) -> tuple[ClockState, list[ClockEvent]]:
        target = sla_clock.select_target(policy, holds, clock)
        if target is None:
            return state, []  # no target speaks about this clock any more: it keeps the one it has
        index, chosen = target
        seconds = sla_clock.target_seconds(chosen, clock)
        if index == state.target_index and seconds == state.target_seconds:
            return state, []
        if index == state.target_index:
            # Same position, new duration (an apply changed the policy): re-target all the same.
            state = state.model_copy(update={"target_index": -1})
        previous = state.target_duration
        state = sla_clock.retarget(state, target, rt.now, calendar)
        self._trace(rt, "retargeted", state, previous=previous, warn_at=_iso(state.warn_at),
                    **self._progress(state, rt.now, calendar))
        return sla_clock.advance(state, rt.now, calendar)

    @staticmethod
    def _progress(state: ClockState, now: dt.datetime, calendar: BusinessCalendar) -> dict[str, Any]:
        elapsed = sla_clock.elapsed_at(state, now, calendar)
        if elapsed > state.target_seconds:
            return {"elapsed": format_seconds(elapsed), "overdue": format_seconds(elapsed - state.target_seconds)}
        return {"elapsed": format_seconds(elapsed), "remaining": format_seconds(state.target_seconds - elapsed)}

    @staticmethod
    def _trace(rt: Runtime, status: str, state: ClockState, **detail: Any) -> None:
        rt.trace("sla", status=status, policy=state.policy, clock=state.clock, record=state.record,
                 target=state.target_duration, due_at=_iso(state.due_at), **detail)

    @staticmethod
    def _schedule(rt: Runtime, tracked: TrackedClock, calendar: BusinessCalendar) -> None:
        """Keep exactly one pending timer at the clock's next threshold (none when nothing is pending)."""
        wake = sla_clock.next_wakeup(tracked.state, calendar)
        if wake is not None and wake == tracked.timer_due and tracked.timer_id is not None:
            return
        owner = _timer_owner(tracked.state)
        rt.store.cancel_timers(owner, "sla")
        tracked.timer_id = tracked.timer_due = None
        if wake is None:
            return
        object_name, _, record_id = tracked.state.record.partition("/")
        timer = rt.new_timer("sla", wake, owner, payload={
            "object": object_name, "record": record_id, "key": f"{tracked.state.policy}:{tracked.state.clock}",
        })
        tracked.timer_id, tracked.timer_due = timer.id, timer.due_at

    # ------------------------------------------------------------- firing
    def _fire(self, rt: Runtime, version: int, bundle: TypedBundle, policy: SlaPolicy, record: Record,
              doc: RecordClocks, tracked: TrackedClock, calendar: BusinessCalendar, events: list[ClockEvent],
              *, depth: int) -> None:
        """Run the actions of the events that became due, once each, and log them."""
        for event in events:
            # Late as timers are late: noticed more than LATE_AFTER after the threshold (the runner was down).
            event = event.model_copy(update={"late": rt.now - event.at > LATE_AFTER})
            state = tracked.state
            level = event.level + 1 if event.level is not None else None
            reason = self._reason(event, state, policy, calendar)
            status = {"warning": "warned", "breach": "breached", "escalation": "escalated"}[event.kind]
            self._trace(rt, status, state, at=_iso(event.at), late=event.late or None, level=level,
                        reason=reason, **self._progress(state, rt.now, calendar))
            run = self._run_actions(rt, version, bundle, policy, record, state, calendar, event, depth)
            handler, assigned = self._handler(rt, run) if run is not None else (None, False)
            if run is not None and event.kind in ("breach", "escalation"):
                tracked.action_runs.append(run.id)
            tracked.log.append(SlaLogEntry(kind=event.kind, at=event.at, noticed_at=rt.now, level=level, reason=reason,
                                           handler=handler, run_id=run.id if run else None, late=event.late))
            line = {"warning": "SLA warning", "breach": "SLA breach",
                    "escalation": f"SLA escalation {level}"}[event.kind]
            handled = ""
            if handler and event.kind != "warning":
                handled = f"; handled by {handler}" if assigned else f"; escalated to {handler}"
            late = " (noticed late)" if event.late else ""
            rt.timeline(record.object, record.id, f"{line}: {reason}{handled}{late}", run=run)
        self._save(rt, doc)

    @staticmethod
    def _reason(event: ClockEvent, state: ClockState, policy: SlaPolicy, calendar: BusinessCalendar) -> str:
        where = f"{state.clock} ({policy.name}, {state.target_name})"
        due = _local(state.due_at, calendar)
        if event.kind == "warning":
            return f"{where} is due {due}; warn_before {state.warn_before}"
        if event.kind == "breach":
            return f"{where} missed its {state.target_duration} target, due {due}"
        after = policy.escalations[event.level or 0].after if event.level is not None \
            and event.level < len(policy.escalations) else "?"
        return f"{where} still open {after} of business time after its due time {due}"

    @staticmethod
    def _run_actions(rt: Runtime, version: int, bundle: TypedBundle, policy: SlaPolicy, record: Record,
                     state: ClockState, calendar: BusinessCalendar, event: ClockEvent, depth: int) -> Run | None:
        list_name = {"warning": "on_warning", "breach": "on_breach"}.get(event.kind, f"escalations.{event.level}")
        if not action_steps(policy, list_name):
            return None
        flow = flow_model(bundle, action_flow_name(policy.name, event.kind, event.level))
        view = {
            **sla_clock.template_view(state, rt.now, calendar),
            "event": event.kind,
            "level": event.level + 1 if event.level is not None else None,
            "due_at": _local(state.due_at, calendar) if state.due_at else None,
            "elapsed": format_seconds(sla_clock.elapsed_at(state, rt.now, calendar)),
            "elapsed_seconds": sla_clock.elapsed_at(state, rt.now, calendar),
            "overdue": format_seconds(sla_clock.overdue_at(state, rt.now, calendar)),
            "overdue_seconds": sla_clock.overdue_at(state, rt.now, calendar),
            "at": _iso(event.at),
            "late": event.late,
        }
        trigger = {"type": "sla", "name": event.kind, "policy": policy.name, "clock": state.clock,
                   "level": view["level"], "changed": [], "before": {}, "sla": view}
        run = start_run(rt, version=version, flow=flow, record=record, trigger=trigger, depth=depth, late=event.late)
        return rt.store.get_run(run.id) or run

    @staticmethod
    def _handler(rt: Runtime, run: Run) -> tuple[str | None, bool]:
        """(who handles it now, whether by assignment): the assignee an assign_record step chose, else who
        the actions are notifying or writing to. Called as the actions' run first waits: the run stops at its
        first outbound step, so the message it waits on is the only one written so far."""
        for output in run.outputs.values():
            if isinstance(output, dict) and output.get("assignee"):
                return str(output["assignee"]), True
        waiting = run.waiting.message_id if run.waiting is not None else None
        message = rt.store.get_message(waiting) if waiting else None
        return (", ".join(message.to) or None) if message is not None else None, False


def _shown(value: Any) -> str:
    return "null" if value is None else str(value)


# --------------------------------------------------------------------------- figures


def stored_clocks(items: Iterable[tuple[str, Any]]) -> Iterator[RecordClocks]:
    """The per-record clock documents among a store's `sla` kv items (`store.kv_items("sla")`)."""
    for key, value in items:
        if not key.startswith("#") and value:
            yield RecordClocks.model_validate(value)


def sla_figures(docs: Iterable[RecordClocks], bundle: TypedBundle | None, now: dt.datetime,
                since: dt.datetime | None = None) -> dict[str, Any]:
    """SLA achievement per policy and clock, and in total (`flowctl stats`, documented in docs/sla.md).

    A clock is *met* when it stopped without breaching and *breached* once it
    breached (reverted breaches included: a revert undoes the actions, not the
    miss); running, paused and cancelled clocks without a breach are neither.
    `achievement_rate` = met / (met + breached). Overdue time is the business
    time past the target, as of `now` for clocks still counting.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    overdue: dict[tuple[str, str], list[int]] = {}
    for doc in docs:
        for tracked in doc.clocks.values():
            state = tracked.state
            if since is not None and state.started_at < since:
                continue
            policy = bundle.sla_policies.get(state.policy) if bundle else None
            calendar = (calendar_for(bundle, policy) if bundle and policy else None) or ALWAYS
            key = (state.policy, state.clock)
            group = groups.setdefault(key, {"policy": state.policy, "clock": state.clock, "clocks": 0, "running": 0,
                                            "paused": 0, "met": 0, "breached": 0, "reverted": 0, "cancelled": 0})
            group["clocks"] += 1
            if state.status in ("running", "paused", "cancelled"):
                group[state.status] += 1
            if state.breached:
                group["breached"] += 1
                overdue.setdefault(key, []).append(sla_clock.overdue_at(state, now, calendar))
            elif state.status == "stopped":
                group["met"] += 1
            if tracked.reverted_at is not None:
                group["reverted"] += 1
    rows = []
    for key in sorted(groups):
        group = groups[key]
        rows.append({**group, **_rates(group["met"], group["breached"], overdue.get(key, []))})
    all_overdue = [s for values in overdue.values() for s in values]
    met = sum(g["met"] for g in groups.values())
    breached = sum(g["breached"] for g in groups.values())
    return {
        "clocks": sum(g["clocks"] for g in groups.values()),
        "met": met,
        "breached": breached,
        "reverted": sum(g["reverted"] for g in groups.values()),
        **_rates(met, breached, all_overdue),
        "by_clock": rows,
    }


def _rates(met: int, breached: int, overdue: list[int]) -> dict[str, Any]:
    decided = met + breached
    return {
        "achievement_rate": round(met / decided, 4) if decided else None,
        "avg_overdue_seconds": round(sum(overdue) / len(overdue), 1) if overdue else None,
        "max_overdue_seconds": max(overdue) if overdue else None,
    }
