"""Checking a flow test's `expect:` against the state at `start_at + run_for` (SPEC §7, §10.12).

Each entry is checked alone: the keys it lists must match one item, other
items may exist. `count` is the number of items matching all the entry's
other keys. A message's `at` is the time of its successful send, compared to
the second; timestamps compare as instants. A failed entry carries the
closest actual items (most keys matching first) so the report can show
expected against actual.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from flowctl.connectors.recording import Delivery
from flowctl.engine.state import Record, Run, Task, TimelineEntry, json_value
from flowctl.resources.models import Expectations

# How many actual items a failure shows.
CLOSEST = 3


@dataclass
class Check:
    path: str  # e.g. expect.messages[0]
    ok: bool
    expected: dict[str, Any]
    problem: str = ""
    closest: list[dict[str, Any]] = field(default_factory=list)  # each with "_mismatch": [keys]
    found: int = 0  # items matching (all keys but count)


@dataclass
class World:
    """What a flow test can see at its end."""

    runs: list[Run]
    sent: list[Delivery]
    tasks: list[Task]
    record: Callable[[str, str], Record | None]
    timeline: Callable[[str], list[TimelineEntry]]  # by record id (any object)
    sla: Callable[[str, str], dict[str, Any] | None] | None  # (record id, clock) -> clock view; None: unsupported


# --------------------------------------------------------------------------- comparing values


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and len(value) >= 16 and value[4] == "-" and value[10] in "T ":
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def same(expected: Any, actual: Any) -> bool:
    """Equality the way a test author means it: instants as instants, "5" as 5, dates as ISO days."""
    if expected == actual and type(expected) is type(actual):
        return True
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            same(e, a) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, dict):
        return isinstance(actual, dict) and set(expected) <= set(actual) and all(
            same(v, actual[k]) for k, v in expected.items()
        )
    if expected is None or actual is None:
        return expected is None and actual is None
    e_inst, a_inst = _instant(expected), _instant(actual)
    if e_inst is not None and a_inst is not None:
        return e_inst == a_inst
    if isinstance(expected, dt.date) and not isinstance(expected, dt.datetime):
        return json_value(expected) == str(actual)[:10] and len(str(actual)) == 10
    if isinstance(expected, bool) or isinstance(actual, bool):
        return str(expected).lower() == str(actual).lower()
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    if isinstance(expected, int | float) or isinstance(actual, int | float):
        try:
            return float(str(expected)) == float(str(actual))
        except ValueError:
            return False
    return str(expected) == str(actual)


def _same_second(expected: dt.datetime, actual: dt.datetime | None) -> bool:
    if actual is None:
        return False
    e = expected if expected.tzinfo else expected.replace(tzinfo=dt.UTC)
    return e.replace(microsecond=0) == actual.replace(microsecond=0)


def _record_matches(expected: str, object_name: str | None, record_id: str | None) -> bool:
    if record_id is None:
        return False
    return expected == record_id or expected == f"{object_name}/{record_id}"


def _contains(needle: str, *haystacks: Any) -> bool:
    return any(isinstance(h, str) and needle in h for h in haystacks)


# --------------------------------------------------------------------------- per section

Matcher = Callable[[Any, Any], bool]


def _run_view(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "flow": run.flow,
        "record": run.record_id,
        "status": run.status,
        "outcome": run.outcome,
        **({"error": run.error} if run.error else {}),
    }


RUN_MATCHERS: dict[str, Matcher] = {
    "flow": lambda e, r: r.flow == e,
    "record": lambda e, r: _record_matches(e, r.object, r.record_id),
    "status": lambda e, r: r.status == e,
    "outcome": lambda e, r: r.outcome == e,
}


def _message_view(d: Delivery) -> dict[str, Any]:
    m = d.message
    view: dict[str, Any] = {"channel": m.channel, "to": ", ".join(m.to)}
    if m.template:
        view["template"] = m.template
    if m.subject:
        view["subject"] = m.subject
    body = m.text or m.html or (", ".join(m.whatsapp.get("body_params", [])) if m.whatsapp else None)
    if body:
        first = " ".join(body.split())
        view["body"] = first if len(first) <= 80 else first[:79] + "…"
    if m.variant:
        view["variant"] = m.variant
    view["at"] = d.at.isoformat()
    view["flow"] = m.flow
    view["step"] = m.step
    return view


def _recipients(d: Delivery) -> list[str]:
    m = d.message
    return [a.lower() for a in (*m.to, *m.cc, *m.bcc)]


def _message_body(d: Delivery) -> list[Any]:
    m = d.message
    params = " ".join(m.whatsapp.get("body_params", [])) if m.whatsapp else None
    return [m.text, m.html, params]


MESSAGE_MATCHERS: dict[str, Matcher] = {
    "channel": lambda e, d: d.message.channel == e,
    "to": lambda e, d: str(e).lower() in _recipients(d),
    "template": lambda e, d: d.message.template == e or d.message.variant == e,
    "subject_contains": lambda e, d: _contains(e, d.message.subject),
    "body_contains": lambda e, d: _contains(e, *_message_body(d)),
    "variant": lambda e, d: d.message.variant == e,
    "at": lambda e, d: _same_second(e, d.at),
}


def _task_view(t: Task) -> dict[str, Any]:
    view: dict[str, Any] = {"subject": t.subject, "status": t.status, "assignee": t.assignee, "kind": t.kind}
    for key in ("priority", "related_to", "decision"):
        value = getattr(t, key)
        if value is not None:
            view[key] = value
    if t.attachments_required:
        view["attachments_required"] = t.attachments_required
    view["step"] = t.step
    view["created_at"] = t.created_at.isoformat()
    return view


def _related(expected: str, task: Task) -> bool:
    if task.related_to is None:
        return False
    return expected == task.related_to or expected == task.related_to.split("/", 1)[-1]


TASK_MATCHERS: dict[str, Matcher] = {
    "subject_contains": lambda e, t: _contains(e, t.subject),
    "status": lambda e, t: t.status == e,
    "assignee": lambda e, t: t.assignee == e,
    "priority": lambda e, t: same(e, t.priority),
    "related_to": _related,
    "attachments_required": lambda e, t: sorted(e) == sorted(t.attachments_required),
    "decision": lambda e, t: t.decision == e,
    "created_at": lambda e, t: _same_second(e, t.created_at),
}


def _entry_keys(entry: BaseModel) -> dict[str, Any]:
    # In the model's field order, so reports read the same way every time.
    return {name: getattr(entry, name) for name in type(entry).model_fields
            if name in entry.model_fields_set and name != "count"}


def _check_items(
    path: str,
    entry: BaseModel,
    items: list[Any],
    matchers: Mapping[str, Matcher],
    view: Callable[[Any], dict[str, Any]],
    what: str,
) -> Check:
    keys = _entry_keys(entry)
    count = getattr(entry, "count", None)
    scored: list[tuple[int, int, Any, list[str]]] = []
    matching = 0
    for index, item in enumerate(items):
        mismatch = [k for k, v in keys.items() if not matchers[k](v, item)]
        if not mismatch:
            matching += 1
        scored.append((len(mismatch), index, item, mismatch))
    expected = {k: json_value(v) for k, v in keys.items()}
    if count is not None:
        expected["count"] = count
    ok = matching == count if count is not None else matching >= 1
    if ok:
        return Check(path, True, expected, found=matching)
    if count is not None and matching:
        problem = f"expected {count} {what}{'' if count == 1 else 's'} matching, found {matching}"
        closest = [{**view(item), "_mismatch": []} for n, _, item, _ in scored if n == 0][:CLOSEST]
    else:
        plural = what if count == 1 else f"{what}s"
        problem = (f"expected {count} {plural} matching, found none" if count else f"no {what} matches") + (
            f" ({len(items)} {what}{'' if len(items) == 1 else 's'} in total)" if items else f" (there are no {what}s)"
        )
        scored.sort(key=lambda s: (s[0], s[1]))
        closest = [{**view(item), "_mismatch": mismatch} for _, _, item, mismatch in scored[:CLOSEST]]
    return Check(path, False, expected, problem, closest, found=matching)


# --------------------------------------------------------------------------- all of it


def check_expectations(expect: Expectations, world: World) -> list[Check]:
    checks: list[Check] = []
    for i, run_entry in enumerate(expect.runs):
        checks.append(_check_items(f"expect.runs[{i}]", run_entry, world.runs, RUN_MATCHERS, _run_view, "run"))
    for i, msg_entry in enumerate(expect.messages):
        checks.append(_check_items(f"expect.messages[{i}]", msg_entry, world.sent, MESSAGE_MATCHERS, _message_view,
                                   "message"))
    for i, task_entry in enumerate(expect.tasks):
        checks.append(_check_items(f"expect.tasks[{i}]", task_entry, world.tasks, TASK_MATCHERS, _task_view, "task"))
    for i, rec in enumerate(expect.records):
        checks.append(_check_record(f"expect.records[{i}]", rec.object, rec.id, rec.fields, world))
    for i, line in enumerate(expect.timeline):
        checks.append(_check_timeline(f"expect.timeline[{i}]", line.record, line.contains, line.count, world))
    for i, sla in enumerate(expect.sla):
        checks.append(_check_sla(f"expect.sla[{i}]", sla, world))
    for i, address in enumerate(expect.no_messages_to):
        hits = [d for d in world.sent if address.lower() in _recipients(d)]
        checks.append(Check(
            f"expect.no_messages_to[{i}]", not hits, {"no_messages_to": address},
            "" if not hits else f"{len(hits)} message{'s' if len(hits) != 1 else ''} sent to {address}",
            [{**_message_view(d), "_mismatch": ["to"]} for d in hits[:CLOSEST]],
            found=len(hits),
        ))
    return checks


def _check_record(path: str, object_name: str, record_id: str, fields: dict[str, Any], world: World) -> Check:
    expected = {"object": object_name, "id": record_id, "fields": json_value(fields)}
    record = world.record(object_name, record_id)
    if record is None:
        return Check(path, False, expected, f"no {object_name} record with id {record_id}")
    actual = record.as_fields()
    mismatch = [k for k, v in fields.items() if not same(v, actual.get(k))]
    if not mismatch:
        return Check(path, True, expected, found=1)
    shown = {k: actual.get(k) for k in fields}
    problem = "fields differ: " + ", ".join(
        f"{k} expected {json_value(fields[k])!r}, got {actual.get(k)!r}" for k in mismatch
    )
    return Check(path, False, expected, problem, [{**shown, "_mismatch": mismatch}])


def _check_timeline(path: str, record_id: str, contains: str, count: int | None, world: World) -> Check:
    lines = world.timeline(record_id)
    hits = [e for e in lines if contains in e.text]
    expected: dict[str, Any] = {"record": record_id, "contains": contains}
    if count is not None:
        expected["count"] = count
    ok = len(hits) == count if count is not None else bool(hits)
    if ok:
        return Check(path, True, expected, found=len(hits))
    if count is not None and hits:
        problem = f"expected {count} matching line{'s' if count != 1 else ''}, found {len(hits)}"
    else:
        problem = f"no timeline line of {record_id} contains {contains!r}" + (
            "" if lines else " (the timeline is empty)"
        )
    closest = [{"at": e.at.isoformat(), "text": e.text, "_mismatch": [] if e in hits else ["contains"]}
               for e in (hits or lines)[-CLOSEST:]]
    return Check(path, False, expected, problem, closest, found=len(hits))


def _check_sla(path: str, entry: BaseModel, world: World) -> Check:
    keys = _entry_keys(entry)
    expected = {k: json_value(v) for k, v in keys.items()}
    record_id, clock = keys["record"], keys["clock"]
    view = world.sla(record_id, clock) if world.sla is not None else None
    if world.sla is None:
        return Check(path, False, expected,
                     "sla expectations are not supported yet: this engine does not run SLA clocks")
    if view is None:
        return Check(path, False, expected, f"no SLA clock '{clock}' on record {record_id}")
    mismatch = []
    for key, value in keys.items():
        if key in ("record", "clock"):
            continue
        actual = view.get(key)
        good = _same_second(value, _instant(actual)) if key == "due_at" else same(value, actual)
        if not good:
            mismatch.append(key)
    if not mismatch:
        return Check(path, True, expected, found=1)
    return Check(path, False, expected, "clock differs: " + ", ".join(mismatch), [{**view, "_mismatch": mismatch}])
