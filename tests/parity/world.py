"""What the parity tests compare, and the small flow set the property test drives.

`state_dump(store, ...)` is the observable end state of a simulation: runs
(status, outcome, path), step attempts, tasks, messages, records, timelines,
pending timers, the engine's kv state, the trace and every SLA clock view.
Models are dumped in Python mode, not JSON mode, so a value that changes type
through the SQLite store's JSON round-trip (a datetime that comes back as a
string, a tuple that comes back as a list) shows up as a difference.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowctl.engine.api import Engine
from flowctl.engine.sla import installed_hook
from flowctl.engine.store import StaticBundles
from flowctl.resources.bundle import Bundle, TypedBundle
from flowctl.store.memory import MemoryStore
from flowctl.store.sqlite import SqliteStore

FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
# The kv namespaces the engine keeps (see flowctl.engine.store.Store.kv_get).
KV_NAMESPACES = (
    "assigned",
    "condition_reads",
    "condition_waits",
    "date_plan",
    "dedupe",
    "engine",
    "merged",
    "reentry",
    "round_robin",
    "sla",
)


def state_dump(store: MemoryStore | SqliteStore, bundle: TypedBundle, now: dt.datetime) -> dict[str, Any]:
    """Everything a user of either shell can observe, in the store's own (insertion) order."""
    runs = store.list_runs()
    records: list[dict[str, Any]] = []
    timelines: list[dict[str, Any]] = []
    keys: list[tuple[str, str]] = []
    for object_name in sorted(bundle.objects):
        for record in store.records_of(object_name):
            keys.append(record.key)
            records.append(record.model_dump())
            timelines += [entry.model_dump() for entry in store.timeline(object_name, record.id)]
    return {
        "runs": [run.model_dump() for run in runs],
        "attempts": [attempt.model_dump() for run in runs for attempt in store.step_attempts(run.id)],
        "tasks": [task.model_dump() for task in store.list_tasks()],
        "messages": [message.model_dump() for message in store.list_messages()],
        "records": records,
        "timelines": timelines,
        "timers": [timer.model_dump() for timer in store.due_timers(FAR_FUTURE)],
        "next_due": store.next_due(),
        "kv": {ns: dict(store.kv_items(ns)) for ns in KV_NAMESPACES},
        "trace": [entry.model_dump() for entry in store.trace()],
        "sla": sla_views(store, bundle, now, keys),
    }


def sla_views(
    store: MemoryStore | SqliteStore, bundle: TypedBundle, now: dt.datetime, keys: list[tuple[str, str]]
) -> dict[str, Any]:
    """Every clock of every record as `flowctl test` sees it at `now` (the SLA hook's clock_view)."""
    clocks = sorted({c for policy in bundle.sla_policies.values() for c in policy.clock_names})
    if not clocks:
        return {}
    engine = Engine(store, StaticBundles({1: bundle}, live=1), any_secret=True, sla=installed_hook())
    engine.rt.begin(now)
    views: dict[str, Any] = {}
    for _, record_id in keys:
        for clock in clocks:
            view = engine.rt.sla.clock_view(engine.rt, record_id, clock)
            if view is not None:
                views[f"{record_id}:{clock}"] = view
    return views


def first_difference(left: Any, right: Any, path: str = "") -> str | None:
    """Where two dumps first differ, for a readable assertion message."""
    if type(left) is not type(right):
        return f"{path or '.'}: {type(left).__name__} {left!r:.300} != {type(right).__name__} {right!r:.300}"
    if isinstance(left, dict):
        for key in list(left) + [k for k in right if k not in left]:
            if key not in left or key not in right:
                return f"{path}.{key}: only in {'memory' if key in left else 'sqlite'}"
            found = first_difference(left[key], right[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(left, list):
        for i, (a, b) in enumerate(zip(left, right, strict=False)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        if len(left) != len(right):
            return f"{path}: {len(left)} items in memory, {len(right)} in sqlite"
        return None
    if left != right:
        return f"{path or '.'}: {left!r:.300} != {right!r:.300}"
    return None


# --------------------------------------------------------------------------- the property test's flows

CONTACT: dict[str, Any] = {
    "kind": "object",
    "name": "contact",
    "fields": {
        "first_name": {"type": "string"},
        "email": {"type": "email"},
        "stage": {"type": "enum", "values": ["lead", "customer", "churned"]},
        "tier": {"type": "enum", "values": ["standard", "premium", "gold"]},
        "status": {"type": "enum", "values": ["new", "open", "paused", "vip", "done", "merged"]},
        "merged_into": {"type": "string"},
        "score": {"type": "integer"},
        "owner": {"type": "ref", "object": "user"},
        "risk": {"type": "string"},
        "synced": {"type": "boolean"},
        "seen_at": {"type": "datetime"},
    },
    "consent": {"email": {"field": "status", "op": "ne", "value": "done"}},
}
USERS: list[dict[str, Any]] = [
    {"object": "user", "id": "li.lei", "name": "Li Lei", "email": "li.lei@acme.example"},
    {"object": "user", "id": "han.meimei", "name": "Han Meimei", "email": "han@acme.example"},
    {"object": "user", "id": "wang.fang", "name": "Wang Fang", "email": "wang@acme.example"},
]
SUPPORT: dict[str, Any] = {
    "kind": "team",
    "name": "support",
    "manager": "wang.fang",
    "members": [{"user": "li.lei"}, {"user": "han.meimei"}],
}
HELLO: dict[str, Any] = {
    "kind": "template",
    "name": "hello",
    "channel": "email",
    "subject": "Hello {{ record.first_name }}",
    "text": "Hi {{ record.first_name }}, your score is {{ record.score | default('unknown') }}.",
}

FLOWS: list[dict[str, Any]] = [
    {   # an outbound message with retries, assignment, a task, a timed wait, a branch
        "kind": "flow",
        "name": "welcome",
        "object": "contact",
        "trigger": {"type": "record_created"},
        "conditions": {"field": "email", "op": "is_set"},
        "steps": [
            {"id": "hello", "action": "send_email", "to": "{{ record.email }}", "template": "hello",
             "retry": {"attempts": 3, "delay": "1m", "backoff": "exponential"}, "on_failure": "continue"},
            {"id": "assign", "action": "assign_record", "strategy": "round_robin", "team": "support"},
            {"id": "todo", "action": "create_task", "subject": "Call {{ record.first_name }}",
             "assignee": "{{ record.owner.id }}", "due": "1d"},
            {"id": "pause", "wait": {"for": "1h"}},
            {"id": "check", "if": {"field": "stage", "op": "eq", "value": "lead"},
             "then": [{"id": "promote", "action": "update_record", "set": {"stage": "customer"}}],
             "else": [{"id": "note", "action": "log", "message": "{{ record.first_name }} is {{ record.stage }}"}]},
        ],
    },
    {   # the ticket-dispatch shape: records_of (a flush) in the middle of the call that created the record
        "kind": "flow",
        "name": "fold",
        "object": "contact",
        "trigger": {"type": "record_created"},
        "steps": [
            {"id": "merge", "action": "merge_duplicates", "match": ["email"], "window": "2h", "mark_after": 2,
             "mark": {"risk": "suspected"}},
            {"id": "touch", "action": "update_record", "set": {"seen_at": "{{ now }}"}},
        ],
    },
    {   # an approval, then a webhook that faults, retries and is compensated
        "kind": "flow",
        "name": "scored",
        "object": "contact",
        "trigger": {"type": "record_updated", "fields": ["score"], "when_conditions_become_true": True},
        "conditions": {"field": "score", "op": "gte", "value": 5},
        "dedupe": "10m",
        "steps": [
            {"id": "approve", "action": "approval", "title": "Score {{ record.score }} for {{ record.id }}",
             "approvers": ["wang.fang"], "timeout": "1d", "on_timeout": "reject",
             "on_reject": [{"id": "reopen", "action": "update_record", "set": {"status": "open"}},
                           {"id": "stop_rejected", "stop": {"status": "succeeded", "reason": "rejected"}}]},
            {"id": "push", "action": "webhook", "url": "http://127.0.0.1:9/erp", "method": "POST",
             "body": {"id": "{{ record.id }}", "score": "{{ record.score }}"},
             "retry": {"attempts": 3, "delay": "1m", "backoff": "exponential", "max_delay": "5m"},
             "on_failure": "compensate"},
            {"id": "mark", "action": "update_record", "set": {"synced": True}},
        ],
    },
    {   # two condition waits on one record (the condition_waits index)
        "kind": "flow",
        "name": "await-score",
        "object": "contact",
        "trigger": {"type": "field_changed", "field": "stage", "to": "customer"},
        "steps": [
            {"id": "high", "wait": {"until_condition": {"field": "score", "op": "gte", "value": 8}, "timeout": "2d"},
             "on_failure": "continue"},
            {"id": "tell", "action": "notify", "to": "wang.fang", "message": "{{ record.id }} scored {{ record.score }}"},
        ],
    },
    {
        "kind": "flow",
        "name": "await-vip",
        "object": "contact",
        "trigger": {"type": "field_changed", "field": "tier", "to": "gold"},
        "reentry": "3h",
        "steps": [
            {"id": "vip", "wait": {"until_condition": {"field": "status", "op": "eq", "value": "vip"},
                                   "timeout": "1d"}, "on_failure": "continue"},
            {"id": "again", "wait": {"until_condition": {"field": "score", "op": "lt", "value": 3},
                                     "timeout": "6h"}, "on_failure": "continue"},
            {"id": "done", "action": "log", "message": "vip wait over for {{ record.id }}"},
        ],
    },
]
SLA: dict[str, Any] = {
    "kind": "sla_policy",
    "name": "contact-sla",
    "object": "contact",
    "applies_when": {"field": "stage", "op": "ne", "value": "churned"},
    "targets": [
        {"when": {"field": "tier", "op": "eq", "value": "gold"}, "first_response": "1h"},
        {"default": True, "first_response": "3h"},
    ],
    "clocks": {"first_response": {"pause_when": {"field": "status", "op": "eq", "value": "paused"},
                                  "stop_when": {"field": "status", "op": "eq", "value": "done"}}},
    "warn_before": "30m",
    "on_warning": [{"action": "notify", "to": "wang.fang", "message": "{{ record.id }}: {{ sla.clock }} due {{ sla.due_at }}"}],
    "on_breach": [{"action": "update_record", "set": {"risk": "sla_breached"}}],
    "escalations": [{"after": "2h", "actions": [{"action": "log", "message": "still late: {{ sla.elapsed }}"}]}],
}


def property_bundle() -> TypedBundle:
    resources: dict[str, dict[str, dict[str, Any]]] = {}
    for res in (CONTACT, SUPPORT, HELLO, SLA, *FLOWS):
        resources.setdefault(res["kind"], {})[res["name"]] = res
    return Bundle(project="parity", resources=resources).typed()
