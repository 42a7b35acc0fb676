"""What templates and conditions see (SPEC §1, §10.3).

`record` is read afresh from the store at each step and resolves reference
fields to the related record on access (`record.account.industry`); a
reference to a record the store does not hold still answers its `id`, and
prints as the id. A schema field without a value is None; a name that is
neither in the schema nor on the record is undefined (a template error).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from flowctl.engine.runtime import Runtime
from flowctl.engine.secrets import SecretNames
from flowctl.engine.state import Record, Run
from flowctl.lang.conditions import MISSING, ConditionContext
from flowctl.resources.builtins import SYSTEM_FIELDS
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import FieldDef

# How deep `record.a.b.c` may follow references; guards against reference cycles.
_MAX_REF_DEPTH = 5
# §10.3: every trigger snapshot has these keys, so `{{ trigger.name }}` on a record trigger is
# null rather than an undefined-variable failure after validate accepted it.
TRIGGER_DEFAULTS: dict[str, Any] = {"type": None, "name": None, "data": {}, "changed": [], "before": {}}


class RecordView:
    """A record as templates see it. Attribute and item access both read fields."""

    __slots__ = ("_bundle", "_depth", "_fields", "_record", "_rt")

    def __init__(self, rt: Runtime, bundle: TypedBundle, record: Record, depth: int = 0) -> None:
        self._rt = rt
        self._bundle = bundle
        self._record = record
        self._fields = rt.fields_of(bundle, record.object)
        self._depth = depth

    def _lookup(self, key: str) -> Any:
        record = self._record
        fdef = self._fields.get(key) if self._fields else None
        if key in SYSTEM_FIELDS:
            value = record.get(key)
        elif key in record.fields:
            value = record.fields[key]
        elif fdef is not None:
            return None
        else:
            raise KeyError(key)
        if fdef is not None and fdef.type == "ref" and fdef.object and value is not None:
            return resolve_ref(self._rt, self._bundle, fdef.object, value, self._depth + 1)
        return value

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._lookup(key)
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key: str) -> Any:
        return self._lookup(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in SYSTEM_FIELDS or key in self._record.fields)

    def __iter__(self) -> Iterator[str]:
        return iter(self._record.as_fields())

    def __str__(self) -> str:
        return self._record.id

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(self._record.id))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordView):
            return self._record.key == other._record.key
        return isinstance(other, str) and other == self._record.id

    def __hash__(self) -> int:
        return hash(self._record.key)


class RefStub:
    """A reference whose record the store does not hold: only `id` is known."""

    __slots__ = ("_id",)

    def __init__(self, ref_id: str) -> None:
        self._id = ref_id

    def __getattr__(self, key: str) -> Any:
        if key == "id":
            return self._id
        raise AttributeError(key)

    def __getitem__(self, key: str) -> Any:
        if key == "id":
            return self._id
        raise KeyError(key)

    def __str__(self) -> str:
        return self._id

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(self._id))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, RefStub) and other._id == self._id) or other == self._id

    def __hash__(self) -> int:
        return hash(self._id)


def ref_id(value: Any) -> str | None:
    """The id a reference field holds (a plain id, or a mapping with `id`)."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None:
        return None
    return str(value)


def resolve_ref(rt: Runtime, bundle: TypedBundle, object_name: str, value: Any, depth: int) -> Any:
    rid = ref_id(value)
    if rid is None:
        return None
    if depth > _MAX_REF_DEPTH:
        return RefStub(rid)
    target = rt.store.get_record(object_name, rid)
    if target is None:
        return RefStub(rid)
    return RecordView(rt, bundle, target, depth)


def team_function(bundle: TypedBundle) -> Any:
    def team(name: str) -> dict[str, Any]:
        t = bundle.teams.get(name)
        if t is None:
            raise KeyError(f"unknown team '{name}'")
        return {"name": t.name, "manager": t.manager, "members": [m.user for m in t.members]}

    return team


def template_context(
    rt: Runtime,
    bundle: TypedBundle,
    *,
    run: Run | None,
    record: Record | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The §1/§10.3 template context for a step of `run` (or an SLA action without a run)."""
    ctx: dict[str, Any] = {
        "now": rt.now,
        "secrets": SecretNames(rt.secret_names, allow_any=rt.any_secret),
        "team": team_function(bundle),
    }
    if record is not None:
        ctx["record"] = RecordView(rt, bundle, record)
    if run is not None:
        ctx["trigger"] = {**TRIGGER_DEFAULTS, **run.trigger}
        ctx["run"] = {"id": run.id, "started_at": run.started_at, "flow": run.flow, "version": run.version}
        ctx["steps"] = {sid: {"output": out} for sid, out in run.outputs.items()}
        if run.trigger.get("type") == "sla":
            # An SLA action run (flowctl.engine.sla_clocks) carries its clock's view as of the threshold (§10.3).
            ctx["sla"] = run.trigger.get("sla") or {}
    if extra:
        ctx.update(extra)
    return ctx


def field_def_at(rt: Runtime, bundle: TypedBundle, object_name: str | None, path: str) -> FieldDef | None:
    """The schema field at a dotted path, following ref fields."""
    fields = rt.fields_of(bundle, object_name)
    parts = path.split(".")
    for i, part in enumerate(parts):
        if fields is None:
            return None
        fdef = fields.get(part)
        if fdef is None:
            return None
        if i == len(parts) - 1:
            return fdef
        if fdef.type != "ref" or not fdef.object:
            return None
        fields = rt.fields_of(bundle, fdef.object)
    return None


def value_at(rt: Runtime, bundle: TypedBundle, record: Record, path: str) -> Any:
    """The value at a dotted path, following ref fields through the store; MISSING when absent."""
    current: Record | None = record
    parts = path.split(".")
    for i, part in enumerate(parts):
        if current is None:
            return MISSING
        if part in SYSTEM_FIELDS:
            value = current.get(part)
        elif part in current.fields:
            value = current.fields[part]
        else:
            return MISSING
        if i == len(parts) - 1:
            return value
        if isinstance(value, Mapping):
            # An embedded object (or a ref given with its fields) is walked in place.
            rest = value
            for sub in parts[i + 1 :]:
                if not isinstance(rest, Mapping) or sub not in rest:
                    return MISSING
                rest = rest[sub]
            return rest
        fields = rt.fields_of(bundle, current.object) or {}
        fdef = fields.get(part)
        rid = ref_id(value)
        if fdef is None or fdef.type != "ref" or not fdef.object or rid is None:
            return MISSING
        current = rt.store.get_record(fdef.object, rid)
    return MISSING


def condition_context(
    rt: Runtime,
    bundle: TypedBundle,
    *,
    record: Record | None,
    object_name: str | None,
    timezone: str,
    before: Mapping[str, Any] | None = None,
    changed: frozenset[str] | None = None,
    expr_context: Mapping[str, Any] | None = None,
    run: Run | None = None,
) -> ConditionContext:
    def get(path: str) -> Any:
        if record is None:
            return MISSING
        return value_at(rt, bundle, record, path)

    if expr_context is None:
        expr_context = template_context(rt, bundle, run=run, record=record)
    return ConditionContext(
        get=get,
        field_def=lambda path: field_def_at(rt, bundle, object_name, path),
        now=rt.now,
        timezone=timezone,
        before=before,
        changed=changed,
        expr_context=expr_context,
    )


def record_before(record: Record, before: Mapping[str, Any]) -> Record:
    """The record as it was before an update: current fields with the changed ones put back."""
    fields = dict(record.fields)
    for key, value in before.items():
        if key in SYSTEM_FIELDS:
            continue
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return record.model_copy(update={"fields": fields})


def parse_instant(value: Any, timezone: str) -> dt.datetime:
    """A timestamp from a template or field: ISO date or datetime; naive means local time in `timezone`."""
    from flowctl.lang.durations import localize

    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else localize(value, timezone)
    if isinstance(value, dt.date):
        return localize(dt.datetime.combine(value, dt.time()), timezone)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{value}' is not a timestamp (expected e.g. 2026-05-01T09:00 or 2026-05-01)") from None
    if parsed.tzinfo is None:
        return localize(parsed, timezone)
    return parsed.astimezone(dt.UTC)
