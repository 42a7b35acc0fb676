"""Writing records: value coercion by schema type, change detection, and the change queue.

Every record write the engine makes (an event from the CRM, a flow action)
goes through `create_record` / `update_fields` / `delete_record`, which write
the store, trace the change and queue a `RecordChange` so that triggers, date
plans, waiting conditions and SLA clocks see it. A change made by a run is
queued one level deeper than the run (the loop guard across flows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flowctl.engine.runtime import RecordChange, Runtime
from flowctl.engine.state import SYSTEM_KEYS, Record, Run, json_value
from flowctl.resources.models import FieldDef

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off", ""})


def coerce(value: Any, fdef: FieldDef | None) -> Any:
    """A value as the schema type wants it; rendered templates are strings, so "3" becomes 3 for a number.

    Values that do not convert are kept as given (validate reports typed
    mistakes; at run time the record keeps what the flow wrote).
    """
    value = json_value(value)
    if fdef is None or value is None:
        return value
    t = fdef.type
    if isinstance(value, str):
        text = value.strip()
        if t == "integer":
            try:
                return int(text)
            except ValueError:
                try:
                    as_float = float(text)
                except ValueError:
                    return value
                return int(as_float) if as_float.is_integer() else as_float
        if t == "number":
            try:
                number = float(text)
            except ValueError:
                return value
            return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
        if t == "boolean":
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            return value
        if t == "datetime":
            try:
                parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return value
            return json_value(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))
        if t == "date":
            try:
                return dt.date.fromisoformat(text[:10]).isoformat()
            except ValueError:
                return value
        if t == "list" and text == "":
            return []
        if text in ("None", "null") and t != "string":
            return None
    return value


def normalize(values: Mapping[str, Any], fields: Mapping[str, FieldDef] | None) -> dict[str, Any]:
    known = fields or {}
    return {str(k): coerce(v, known.get(str(k))) for k, v in values.items()}


def _instant(value: Any, default: dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return default
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return default


def new_record(object_name: str, record_id: str, values: Mapping[str, Any], now: dt.datetime,
               fields: Mapping[str, FieldDef] | None = None) -> Record:
    """A Record from flat values (a fixture or an event's `record`); system fields taken when given."""
    data = {k: v for k, v in values.items() if k not in ("object", *SYSTEM_KEYS)}
    return Record(
        object=object_name,
        id=str(record_id),
        fields=normalize(data, fields),
        created_at=_instant(values.get("created_at"), now),
        updated_at=_instant(values.get("updated_at"), _instant(values.get("created_at"), now)),
    )


def _depth(run: Run | None, depth: int | None) -> int:
    if depth is not None:
        return depth
    return run.depth + 1 if run is not None else 0


def create_record(rt: Runtime, record: Record, *, run: Run | None = None, depth: int | None = None,
                  event_id: str | None = None) -> Record:
    """Store a new record and queue its record_created change."""
    rt.store.put_record(record)
    rt.trace("record", run=run, step=run.cursor.step if run and run.cursor else None, status="created",
             object=record.object, record=record.id)
    rt.queue.append(
        RecordChange(
            type="record_created",
            object=record.object,
            record_id=record.id,
            changed=frozenset(record.fields),
            depth=_depth(run, depth),
            cause_run_id=run.id if run else None,
            event_id=event_id,
        )
    )
    return record


def update_fields(
    rt: Runtime,
    record: Record,
    values: Mapping[str, Any],
    *,
    run: Run | None = None,
    depth: int | None = None,
    event_id: str | None = None,
    fields: Mapping[str, FieldDef] | None = None,
) -> dict[str, Any]:
    """Set fields on a stored record. Returns {field: new value} for the fields that actually changed."""
    new_values = normalize({k: v for k, v in values.items() if k not in ("object", *SYSTEM_KEYS)}, fields)
    before: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    for key, value in new_values.items():
        old = record.fields.get(key)
        if old != value or (key not in record.fields and value is not None):
            before[key] = old
            changed[key] = value
    if not changed:
        return {}
    record.fields.update(changed)
    record.updated_at = rt.now
    rt.store.put_record(record)
    rt.trace(
        "record", run=run, step=run.cursor.step if run and run.cursor else None, status="updated",
        object=record.object, record=record.id,
        changes={k: [before[k], changed[k]] for k in changed},
    )
    rt.queue.append(
        RecordChange(
            type="record_updated",
            object=record.object,
            record_id=record.id,
            before=before,
            changed=frozenset(changed),
            depth=_depth(run, depth),
            cause_run_id=run.id if run else None,
            event_id=event_id,
        )
    )
    return changed


def delete_record(rt: Runtime, record: Record, *, depth: int = 0, event_id: str | None = None) -> None:
    record.deleted = True
    record.updated_at = rt.now
    rt.store.put_record(record)
    rt.trace("record", status="deleted", object=record.object, record=record.id)
    rt.queue.append(
        RecordChange(type="record_deleted", object=record.object, record_id=record.id, depth=depth, event_id=event_id)
    )


def describe_changes(changed: Mapping[str, Any]) -> str:
    """`stage=won, owner=li.lei` for timeline lines."""
    return ", ".join(f"{k}={_show(v)}" for k, v in changed.items())


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)
