"""Which flows an event starts (SPEC §3 Triggers, §10.4, §10.5).

Entry order: trigger match → entry conditions → dedupe → reentry. A trigger
that matched but starts no run is traced as `suppressed` with its reason.

Date triggers are planned per record as timers (owner
`date:<flow>:<object>:<id>`): on create, when the date field changes (the
pending start moves: exactly one timer per flow and record), and for every
stored record when a bundle is activated. Schedule triggers keep one pending
timer per flow (owner `schedule:<flow>`) at the next cron tick.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, TypeVar

from flowctl.engine.context import condition_context, record_before, template_context
from flowctl.engine.runs import recheck_conditions, start_run
from flowctl.engine.runtime import MAX_DEPTH, RecordChange, Runtime
from flowctl.engine.state import Event, Record, Run, Timer
from flowctl.lang.conditions import ConditionContext, evaluate, evaluate_with_reason
from flowctl.lang.durations import Duration, localize, zone_of
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import (
    DateTrigger,
    FieldChangedTrigger,
    Flow,
    RecordUpdatedTrigger,
    ScheduleTrigger,
)

# --------------------------------------------------------------------------- entry


def _snapshot_values(values: Any) -> Any:
    return json.loads(json.dumps(values, default=str))


def _identity(flow: Flow, record: Record | None, trigger: dict[str, Any], values: Any) -> str:
    raw = json.dumps(
        [flow.name, record.object if record else None, record.id if record else None, trigger.get("type"), values],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _entry_context(
    rt: Runtime,
    bundle: TypedBundle,
    flow: Flow,
    record: Record | None,
    trigger: dict[str, Any],
    before: dict[str, Any] | None,
    changed: frozenset[str] | None,
) -> ConditionContext:
    expr = template_context(rt, bundle, run=None, record=record, extra={"trigger": trigger})
    return condition_context(rt, bundle, record=record, object_name=flow.object, timezone=flow.timezone,
                             before=before, changed=changed, expr_context=expr)


def entry_holds(
    rt: Runtime,
    bundle: TypedBundle,
    flow: Flow,
    record: Record | None,
    trigger: dict[str, Any],
    *,
    before: dict[str, Any] | None = None,
    changed: frozenset[str] | None = None,
) -> bool:
    if flow.conditions is None:
        return True
    return evaluate(flow.conditions, _entry_context(rt, bundle, flow, record, trigger, before, changed))


def entry_explanation(
    rt: Runtime,
    bundle: TypedBundle,
    flow: Flow,
    record: Record | None,
    trigger: dict[str, Any],
    *,
    before: dict[str, Any] | None = None,
    changed: frozenset[str] | None = None,
) -> str:
    """Why the entry conditions do not hold, for the trace. Only computed for suppressed triggers."""
    if flow.conditions is None:
        return ""
    ctx = _entry_context(rt, bundle, flow, record, trigger, before, changed)
    return evaluate_with_reason(flow.conditions, ctx)[1]


def try_start(
    rt: Runtime,
    version: int,
    bundle: TypedBundle,
    flow: Flow,
    record: Record | None,
    trigger: dict[str, Any],
    *,
    identity_values: Any,
    before: dict[str, Any] | None = None,
    changed: frozenset[str] | None = None,
    depth: int = 0,
    event_id: str | None = None,
    conditions_checked: bool = False,
    late: bool = False,
) -> Run | None:
    """Entry conditions → dedupe → reentry; start the run when all pass."""
    where = f"{record.object}/{record.id}" if record else None
    if not conditions_checked and not entry_holds(rt, bundle, flow, record, trigger, before=before, changed=changed):
        why = entry_explanation(rt, bundle, flow, record, trigger, before=before, changed=changed)
        rt.trace("suppressed", flow=flow.name, reason="conditions", record=where, trigger=trigger.get("type"),
                 why=why)
        return None
    now = rt.now
    dedupe_key = None
    if flow.dedupe:
        dedupe_key = _identity(flow, record, trigger, identity_values)
        started = rt.store.kv_get("dedupe", dedupe_key)
        if started is not None:
            window_end = Duration.parse(flow.dedupe).add_to(dt.datetime.fromisoformat(started), flow.timezone)
            if now < window_end:
                rt.trace("suppressed", flow=flow.name, reason="dedupe", record=where, trigger=trigger.get("type"),
                         window_started=started, window_ends=window_end.isoformat())
                return None
    reentry_key = f"{flow.name}|{record.object}|{record.id}" if record else None
    if reentry_key is not None and flow.reentry != "always":
        last = rt.store.kv_get("reentry", reentry_key)
        if last is not None:
            if flow.reentry == "never":
                rt.trace("suppressed", flow=flow.name, reason="reentry", record=where, trigger=trigger.get("type"),
                         policy="never", last_started=last)
                return None
            allowed = Duration.parse(flow.reentry).add_to(dt.datetime.fromisoformat(last), flow.timezone)
            if now < allowed:
                rt.trace("suppressed", flow=flow.name, reason="reentry", record=where, trigger=trigger.get("type"),
                         policy=flow.reentry, last_started=last, allowed_from=allowed.isoformat())
                return None
    if dedupe_key is not None:
        rt.store.kv_put("dedupe", dedupe_key, now.isoformat())
    if reentry_key is not None and flow.reentry != "always":
        rt.store.kv_put("reentry", reentry_key, now.isoformat())
    return start_run(rt, version=version, flow=flow, record=record, trigger=trigger, depth=depth,
                     event_id=event_id, late=late)


# --------------------------------------------------------------------------- record changes


def _flows_on(bundle: TypedBundle, object_name: str) -> list[Flow]:
    return [f for f in bundle.flows.values() if f.enabled and f.object == object_name]


def process_change(rt: Runtime, change: RecordChange) -> list[str]:
    """A record was created, updated or deleted: plan dates, wake condition waits, start flows."""
    record = rt.store.get_record(change.object, change.record_id)
    if record is None:
        return []
    live = rt.live()
    if live is not None:
        version, bundle = live
        for flow in _flows_on(bundle, change.object):
            trig = flow.trigger
            if isinstance(trig, DateTrigger):
                if change.type == "record_deleted":
                    rt.store.cancel_timers(date_owner(flow, record))
                elif change.type == "record_created" or trig.field in change.changed:
                    plan_date(rt, flow, record)
    if change.type != "record_deleted":
        recheck_conditions(rt, change.object, change.record_id)
    if live is None:
        return []
    version, bundle = live
    candidates = [f for f in _flows_on(bundle, change.object) if _matches(rt, bundle, f, change, record)]
    if not candidates:
        return []
    if change.depth > MAX_DEPTH:
        rt.trace("loop_guard", depth=change.depth, record=f"{record.object}/{record.id}",
                 flows=[f.name for f in candidates], cause_run=change.cause_run_id,
                 reason=f"a chain of flows changed this record more than {MAX_DEPTH} levels deep; stopped")
        if change.cause_run_id:
            cause = rt.store.get_run(change.cause_run_id)
            if cause is not None:
                cause.error = cause.error or (
                    f"loop guard: record changes by this run would trigger flows {MAX_DEPTH + 1} levels deep; "
                    f"not started: {', '.join(f.name for f in candidates)}"
                )
                cause.error_class = cause.error_class or "loop_guard"
                rt.store.put_run(cause)
        return []
    started: list[str] = []
    for flow in candidates:
        trigger, before, changed, identity = _trigger_snapshot(flow, change, record)
        run = try_start(
            rt, version, bundle, flow, record, trigger, identity_values=identity, before=before, changed=changed,
            depth=change.depth, event_id=change.event_id,
            conditions_checked=isinstance(flow.trigger, RecordUpdatedTrigger)
            and flow.trigger.when_conditions_become_true,
        )
        if run is not None:
            started.append(run.id)
    return started


def _trigger_snapshot(
    flow: Flow, change: RecordChange, record: Record
) -> tuple[dict[str, Any], dict[str, Any] | None, frozenset[str] | None, Any]:
    trig = flow.trigger
    if change.type == "record_created":
        before: dict[str, Any] | None = None
        changed: frozenset[str] | None = None
        values = _snapshot_values(record.fields)
    else:
        before = _snapshot_values(change.before)
        changed = change.changed
        values = {k: _snapshot_values(record.fields.get(k)) for k in sorted(change.changed)}
    snapshot: dict[str, Any] = {
        "type": trig.type,
        "event": change.type,
        "object": record.object,
        "record_id": record.id,
        "changed": sorted(change.changed) if change.type == "record_updated" else [],
        "before": before or {},
    }
    if isinstance(trig, FieldChangedTrigger):
        snapshot.update({"field": trig.field, "from": (before or {}).get(trig.field),
                         "to": record.fields.get(trig.field)})
    return snapshot, before, changed, values


def _matches(rt: Runtime, bundle: TypedBundle, flow: Flow, change: RecordChange, record: Record) -> bool:
    trig = flow.trigger
    ttype = trig.type
    if ttype == "record_created":
        return change.type == "record_created"
    if ttype == "record_deleted":
        return change.type == "record_deleted"
    if isinstance(trig, RecordUpdatedTrigger):
        if trig.when_conditions_become_true:
            if change.type == "record_deleted":
                return False
            if change.type == "record_updated" and trig.fields and not (set(trig.fields) & change.changed):
                return False
            snapshot = {"type": ttype, "event": change.type, "changed": sorted(change.changed), "before": change.before}
            now_holds = entry_holds(rt, bundle, flow, record, snapshot, before=change.before, changed=change.changed)
            if not now_holds:
                return False
            if change.type == "record_created":
                return True  # a create counts as "did not hold before" (§10.4)
            old = record_before(record, change.before)
            return not entry_holds(rt, bundle, flow, old, snapshot)
        if change.type != "record_updated":
            return False
        return not trig.fields or bool(set(trig.fields) & change.changed)
    if isinstance(trig, FieldChangedTrigger):
        if change.type != "record_updated" or trig.field not in change.changed:
            return False
        previous = change.before.get(trig.field)
        new = record.fields.get(trig.field)
        if trig.has_from and not _same(previous, trig.from_):
            return False
        return not (trig.has_to and not _same(new, trig.to))
    return False


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    # YAML gives `to: 5` as int while the CRM may send "5"; compare such scalars as text.
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    if isinstance(a, int | float | str) and isinstance(b, int | float | str):
        return str(a) == str(b)
    return False


# --------------------------------------------------------------------------- custom events


def process_event(rt: Runtime, event: Event, event_id: str, record: Record | None) -> list[str]:
    live = rt.live()
    if live is None:
        return []
    version, bundle = live
    started: list[str] = []
    for flow in bundle.flows.values():
        trig = flow.trigger
        if not flow.enabled or trig.type != "event" or trig.name != event.name:
            continue
        if flow.object is not None and event.object is not None and event.object != flow.object:
            continue
        run_record = record if (record is not None and (flow.object is None or record.object == flow.object)) else None
        trigger = {"type": "event", "name": event.name, "data": event.data, "changed": [], "before": {}}
        run = try_start(rt, version, bundle, flow, run_record, trigger,
                        identity_values={"name": event.name, "data": event.data}, event_id=event_id)
        if run is not None:
            started.append(run.id)
    return started


# --------------------------------------------------------------------------- date triggers


def date_owner(flow: Flow, record: Record) -> str:
    return f"date:{flow.name}:{record.object}:{record.id}"


def _on_date(value: dt.date, year: int | None) -> dt.date:
    if year is None:
        return value
    if value.month == 2 and value.day == 29:
        try:
            return value.replace(year=year)
        except ValueError:
            return dt.date(year, 2, 28)  # 29 Feb becomes 28 Feb in other years, before the offset (§10.5)
    return value.replace(year=year)


def next_occurrence(
    trig: DateTrigger, value: Any, tz_name: str, now: dt.datetime, *, after: dt.datetime | None = None
) -> dt.datetime | None:
    """The next start of a date trigger for a field value, or None (empty, unparsable or already past)."""
    if value in (None, ""):
        return None
    zone = zone_of(tz_name)
    is_date = False
    date_value: dt.date | None = None
    instant: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        instant = value if value.tzinfo else localize(value, zone)
    elif isinstance(value, dt.date):
        is_date, date_value = True, value
    else:
        text = str(value).strip()
        if len(text) == 10:
            try:
                date_value, is_date = dt.date.fromisoformat(text), True
            except ValueError:
                return None
        else:
            try:
                parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            instant = parsed if parsed.tzinfo else localize(parsed, zone)
    offset = Duration.parse(trig.offset) if trig.offset else None
    at = dt.time.fromisoformat(trig.at) if trig.at else dt.time(0, 0)

    def occurrence(year: int | None) -> dt.datetime:
        if is_date:
            assert date_value is not None
            day = _on_date(date_value, year)
            base = localize(dt.datetime.combine(day, at), zone)
        else:
            assert instant is not None
            local = instant.astimezone(zone).replace(tzinfo=None)
            if year is not None:
                local = dt.datetime.combine(_on_date(local.date(), year), local.time())
                base = localize(local, zone)
            else:
                base = instant.astimezone(dt.UTC)
        return offset.add_to(base, zone) if offset is not None else base

    def acceptable(t: dt.datetime) -> bool:
        return t > after if after is not None else t >= now

    if trig.repeat != "yearly":
        first = occurrence(None)
        return first if acceptable(first) else None
    start_year = now.astimezone(zone).year - 2
    for year in range(start_year, start_year + 6):
        t = occurrence(year)
        if acceptable(t) and t >= now:
            return t
    return None


def plan_date(rt: Runtime, flow: Flow, record: Record, *, after: dt.datetime | None = None) -> Timer | None:
    """(Re)plan the pending start of a date flow for one record: at most one timer per flow and record."""
    trig = flow.trigger
    assert isinstance(trig, DateTrigger)
    owner = date_owner(flow, record)
    moved = rt.store.cancel_timers(owner)
    tz = trig.timezone or flow.timezone
    due = next_occurrence(trig, record.fields.get(trig.field), tz, rt.now, after=after)
    where = f"{record.object}/{record.id}"
    if due is None:
        if moved:
            rt.trace("date_plan", flow=flow.name, status="dropped", record=where, field=trig.field)
        return None
    timer = rt.new_timer("date_trigger", due, owner,
                         payload={"flow": flow.name, "object": record.object, "record_id": record.id,
                                  "occurrence": due.isoformat()})
    rt.trace("date_plan", flow=flow.name, status="moved" if moved else "planned", record=where, field=trig.field,
             due_at=due.isoformat(), timer=timer.id)
    return timer


T = TypeVar("T", DateTrigger, ScheduleTrigger)


def _timer_flow(rt: Runtime, timer: Timer, kind: type[T]) -> tuple[int, TypedBundle, Flow, T] | None:
    """The live flow a date or schedule timer starts, with its trigger; None when the live bundle no longer
    has it enabled with a trigger of that kind (the timer then does nothing)."""
    live = rt.live()
    if live is None:
        return None
    version, bundle = live
    flow = bundle.flows.get(timer.payload.get("flow", ""))
    if flow is None or not flow.enabled or not isinstance(flow.trigger, kind):
        return None
    return version, bundle, flow, flow.trigger


def fire_date(rt: Runtime, timer: Timer) -> None:
    found = _timer_flow(rt, timer, DateTrigger)
    if found is None:
        return
    version, bundle, flow, trig = found
    record = rt.store.get_record(timer.payload["object"], timer.payload["record_id"])
    if record is None or record.deleted:
        return
    occurrence = dt.datetime.fromisoformat(timer.payload["occurrence"])
    trigger = {"type": "date", "field": trig.field, "occurrence": occurrence.isoformat(), "changed": [],
               "before": {}}
    try_start(rt, version, bundle, flow, record, trigger, identity_values={"occurrence": occurrence.isoformat()},
              late=timer.fired_late)
    if trig.repeat == "yearly":
        plan_date(rt, flow, record, after=occurrence)


# --------------------------------------------------------------------------- schedules


def schedule_owner(flow: Flow) -> str:
    return f"schedule:{flow.name}"


def next_tick(trig: ScheduleTrigger, tz: str, after: dt.datetime) -> dt.datetime | None:
    from apscheduler.triggers.cron import CronTrigger

    cron = CronTrigger.from_crontab(trig.cron, timezone=zone_of(tz))
    nxt = cron.get_next_fire_time(None, after.astimezone(zone_of(tz)))
    return nxt.astimezone(dt.UTC) if nxt is not None else None


def plan_schedule(rt: Runtime, flow: Flow, *, after: dt.datetime | None = None) -> Timer | None:
    trig = flow.trigger
    assert isinstance(trig, ScheduleTrigger)
    rt.store.cancel_timers(schedule_owner(flow))
    due = next_tick(trig, trig.timezone or flow.timezone, after or rt.now)
    if due is None:
        return None
    return rt.new_timer("schedule", due, schedule_owner(flow), payload={"flow": flow.name})


def fire_schedule(rt: Runtime, timer: Timer) -> None:
    found = _timer_flow(rt, timer, ScheduleTrigger)
    if found is None:
        return
    version, bundle, flow, trig = found
    tick = timer.due_at.isoformat()
    trigger: dict[str, Any] = {"type": "schedule", "tick": tick, "changed": [], "before": {}}
    if flow.object is None:
        try_start(rt, version, bundle, flow, None, trigger, identity_values={"tick": tick}, late=timer.fired_late)
    else:
        selector = trig.conditions
        for record in list(rt.store.records_of(flow.object)):
            if selector is not None:
                ctx = condition_context(rt, bundle, record=record, object_name=flow.object, timezone=flow.timezone,
                                        expr_context=template_context(rt, bundle, run=None, record=record))
                if not evaluate(selector, ctx):
                    continue
            try_start(rt, version, bundle, flow, record, trigger, identity_values={"tick": tick},
                      late=timer.fired_late)
    # The next tick strictly after this one (cron resolution is one second).
    plan_schedule(rt, flow, after=timer.due_at + dt.timedelta(seconds=1))


# --------------------------------------------------------------------------- activation


def activate(rt: Runtime, version: int) -> None:
    """Make `version` live for triggers: re-plan date starts for every stored record and schedules."""
    bundle = rt.bundle(version)
    previous = rt.store.kv_get("engine", "planned") or {"date": {}, "schedule": []}
    new_date = {f.name: f.object for f in bundle.flows.values()
                if f.enabled and isinstance(f.trigger, DateTrigger) and f.object}
    new_schedule = [f.name for f in bundle.flows.values() if f.enabled and isinstance(f.trigger, ScheduleTrigger)]
    for name, object_name in previous.get("date", {}).items():
        if name in new_date and new_date[name] == object_name:
            continue
        for record in rt.store.records_of(object_name):
            rt.store.cancel_timers(f"date:{name}:{record.object}:{record.id}")
    for name in previous.get("schedule", []):
        if name not in new_schedule:
            rt.store.cancel_timers(f"schedule:{name}")
    for name, object_name in new_date.items():
        flow = bundle.flows[name]
        for record in list(rt.store.records_of(object_name)):
            plan_date(rt, flow, record)
    for name in new_schedule:
        plan_schedule(rt, bundle.flows[name])
    rt.store.kv_put("engine", "planned", {"date": new_date, "schedule": new_schedule})
    rt.store.kv_put("engine", "active_version", version)
    rt.trace("event", status="activated", version=version, date_flows=sorted(new_date) or None,
             schedule_flows=new_schedule or None)
