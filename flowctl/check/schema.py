"""The schema pass: pydantic validation errors → one clear diagnostic per defect.

Pydantic reports errors by model location (`steps.0.send_email.to.str`), with
the tag of every union it went through and one error per union member it
tried. Users wrote YAML, so we walk the model and the data together: union
tags are dropped, the location becomes a YAML path with a line and column,
and the several errors one bad union value produces become one diagnostic
("expected a string or a list of strings, got int: 5"). Misspellings get a
"did you mean".
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Tag, ValidationError

from flowctl.check.diagnostics import Diagnostic
from flowctl.check.suggest import OPERATOR_ALIASES, closest, did_you_mean, one_of
from flowctl.lang.durations import DURATION_PATTERN
from flowctl.resources import models as m

if TYPE_CHECKING:
    from flowctl.resources.project import Source

DataPath = tuple[str | int, ...]


# --------------------------------------------------------------------------- walking model + data


def _unwrap(ann: Any) -> tuple[Any, list[Any]]:
    """Strip `Annotated[...]`, returning the base type and its metadata."""
    meta: list[Any] = []
    while typing.get_origin(ann) is typing.Annotated:
        args = typing.get_args(ann)
        ann, meta = args[0], [*meta, *args[1:]]
    return ann, meta


def _union_members(ann: Any) -> list[Any] | None:
    """The members of a union that pydantic validates one by one (None is not one: Optional adds no tag)."""
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(members) >= 2:
            return members
        if members:
            return _union_members(_unwrap(members[0])[0])
    return None


def _strip_optional(ann: Any) -> Any:
    ann, _ = _unwrap(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(members) == 1:
            return _strip_optional(members[0])
    return ann


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _member_for_tag(members: list[Any], seg: str | int) -> Any | None:
    """The member of a discriminated union that a location segment names (a Tag or a `type:` value)."""
    for member in members:
        base, meta = _unwrap(member)
        if any(isinstance(x, Tag) and x.tag == seg for x in meta):
            return base
        if _is_model(base):
            type_field = base.model_fields.get("type")
            if type_field is not None and typing.get_origin(type_field.annotation) is Literal:
                if seg in typing.get_args(type_field.annotation):
                    return base
    return None


def _member_for_data(members: list[Any], value: Any) -> Any:
    """For an untagged union: the member the data's shape selects, to keep walking."""
    for member in members:
        base, _ = _unwrap(member)
        origin = typing.get_origin(base) or base
        if isinstance(value, list) and origin in (list, tuple):
            return base
        if isinstance(value, dict) and (origin is dict or _is_model(base)):
            return base
    return Any


def _field_of(model: type[BaseModel], key: str | int) -> Any | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


@dataclass
class _Located:
    path: DataPath  # the deepest path that exists in the data
    missing: str | int | None  # a key the location names that the data lacks
    union_path: DataPath | None  # where an untagged union was entered
    union_ann: Any  # that union, to describe what it accepts
    owner: type[BaseModel] | None  # the model whose key the location ends on


def _locate(data: Any, loc: tuple[str | int, ...], model: type[BaseModel]) -> _Located:
    ann: Any = model
    current = data
    path: list[str | int] = []
    missing: str | int | None = None
    union_path: DataPath | None = None
    union_ann: Any = None
    owner: type[BaseModel] | None = None
    for i, seg in enumerate(loc):
        ann = _strip_optional(ann)
        members = _union_members(ann)
        if members is not None:
            member = _member_for_tag(members, seg)
            if member is None:
                # An untagged union (str | list[str]): the segment names the
                # member pydantic tried; the data tells which one to follow.
                union_path, union_ann = tuple(path), ann
                named = [x for x in members if getattr(_unwrap(x)[0], "__name__", None) == seg]
                ann = _unwrap(named[0])[0] if named else _member_for_data(members, current)
            else:
                ann = member
            continue
        known = True
        if _is_model(ann):
            owner = ann
            field_ann = _field_of(ann, seg)
            extra = ann.model_config.get("extra") == "allow"
            known = field_ann is not None or extra
            ann = field_ann if field_ann is not None else Any
        elif (origin := typing.get_origin(ann)) in (list, tuple):
            ann = (typing.get_args(ann) or (Any,))[0]
        elif origin is dict:
            args = typing.get_args(ann)
            ann = args[1] if len(args) == 2 else Any
        elif ann is not Any:
            known = False
        if isinstance(current, dict) and seg in current:
            path.append(seg)
            current = current[seg]
        elif isinstance(current, list) and isinstance(seg, int) and 0 <= seg < len(current):
            path.append(seg)
            current = current[seg]
        elif known or i == len(loc) - 1:
            missing = seg
            break
        # else: a segment of a validator or union we do not model; skip it.
    return _Located(tuple(path), missing, union_path, union_ann, owner)


# --------------------------------------------------------------------------- describing what is expected

_SCALAR_NAMES: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dt.date: "a date (YYYY-MM-DD)",
    dt.datetime: "a timestamp (2026-03-06T16:00:00Z)",
    Any: "any value",
}


def describe(ann: Any) -> str:
    """What a type accepts, in words a YAML author reads."""
    base, _ = _unwrap(ann)
    members = _union_members(base)
    if members is not None:
        parts = [describe(x) for x in members]
        return ", ".join(parts[:-1]) + " or " + parts[-1]
    base = _strip_optional(base)
    origin = typing.get_origin(base)
    if origin is Literal:
        return ", ".join(repr(a) for a in typing.get_args(base))
    if origin in (list, tuple):
        inner = _strip_optional((typing.get_args(base) or (Any,))[0])
        if inner is str:
            return "a list of strings"
        if _union_members(inner) is not None and any(
            _unwrap(x)[0] is m.SendEmail for x in _union_members(inner) or []
        ):
            return "a list of steps"
        return "a list"
    if origin is dict or base is dict:
        return "a mapping"
    if _is_model(base):
        keys = [info.alias or name for name, info in base.model_fields.items() if info.is_required()]
        return "a mapping {" + ", ".join(keys) + "}" if keys else "a mapping"
    return _SCALAR_NAMES.get(base, getattr(base, "__name__", str(base)))


def dotted_path(path: DataPath, limit: int = 8) -> str:
    """`steps.0.then.1.to`; a very deep path keeps its start and end (the position says exactly where)."""
    parts = [str(p) for p in path]
    if len(parts) > limit:
        parts = [*parts[:3], "…", *parts[-3:]]
    return ".".join(parts)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    return {
        dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number",
        bool: "a boolean", type(None): "nothing (null)", dt.date: "a date", dt.datetime: "a timestamp",
    }.get(type(value), type(value).__name__)  # fmt: skip


# --------------------------------------------------------------------------- error → diagnostic

_FRIENDLY_TYPES = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
    "datetime_type": "expected a timestamp",
    "datetime_parsing": "expected a timestamp such as 2026-03-06T16:00:00Z",
    "datetime_from_date_parsing": "expected a timestamp such as 2026-03-06T16:00:00Z",
}


def _code_for(err: dict[str, Any], loc: _Located) -> str:
    typ = err["type"]
    msg = str(err.get("msg", ""))
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden":
        return "schema-unknown-key"
    if typ in ("missing", "union_tag_not_found"):
        return "schema-missing-key"
    if typ == "invalid_step":
        return "schema-unknown-step"
    if typ == "invalid_condition":
        return "schema-bad-condition"
    if typ == "union_tag_invalid":
        return "schema-unknown-trigger" if loc.path[-1:] == ("trigger",) else "schema-bad-value"
    if typ == "string_pattern_mismatch":
        pattern = ctx.get("pattern")
        if pattern == DURATION_PATTERN:
            return "bad-duration"
        if pattern == m.NAME_PATTERN:
            return "bad-name"
        if pattern == m.HHMM_PATTERN:
            return "bad-time"
        return "schema-bad-value"
    if typ == "value_error":
        if "time zone" in msg:
            return "bad-timezone"
        if "cron" in msg:
            return "bad-cron"
        if "invalid name" in msg:
            return "bad-name"
        if "duration" in msg:
            return "bad-duration"
        return "schema-bad-value"
    if typ in ("literal_error", "enum"):
        if loc.path[-1:] == ("op",) and loc.owner in (m.LeafCondition, m.ConsentRule):
            return "schema-unknown-operator"
        return "schema-bad-value"
    return "schema-type"


def _expected_literals(err: dict[str, Any]) -> list[str]:
    return re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))


def _value_at(data: Any, path: DataPath) -> Any:
    for seg in path:
        data = data[seg]  # the path was built from the data, so it exists
    return data


def _step_diagnostic(data: Any, loc: _Located, source: Source) -> Diagnostic:
    """A step matching no kind: name the misspelt action or control key."""
    step = _value_at(data, loc.path)
    if isinstance(step, dict) and "action" in step:
        action = step["action"]
        return Diagnostic(
            code="schema-unknown-step",
            summary=f"unknown action '{action}'",
            hint=did_you_mean(action, m.ACTION_MODELS) or "actions: " + ", ".join(m.ACTION_MODELS),
            range=source.range((*loc.path, "action")),
        )
    if isinstance(step, dict):
        for key in step:
            hint = did_you_mean(key, m.CONTROL_MODELS)
            if hint and key not in m.StepBase.model_fields:
                return Diagnostic(
                    code="schema-unknown-step",
                    summary=f"unknown step key '{key}'",
                    hint=hint,
                    range=source.range((*loc.path, key), prefer_key=True),
                )
    return Diagnostic(
        code="schema-unknown-step",
        summary="a step needs `action` or one of `wait`, `if`, `switch`, `goto`, `call_flow`, `stop`",
        hint="actions: " + ", ".join(m.ACTION_MODELS),
        range=source.range(loc.path),
    )


def _condition_diagnostic(data: Any, loc: _Located, source: Source) -> Diagnostic:
    value = _value_at(data, loc.path)
    shapes = "{field, op, value}, {all: [...]}, {any: [...]}, {not: ...} or {expr: ...}"
    if isinstance(value, dict):
        for key in value:
            hint = did_you_mean(key, ("all", "any", "not", "expr", "field", "op", "value"))
            if hint:
                return Diagnostic(
                    code="schema-bad-condition",
                    summary=f"unknown condition key '{key}'",
                    hint=hint,
                    range=source.range((*loc.path, key), prefer_key=True),
                )
    hint = f"a condition is {shapes}"
    if isinstance(value, list):
        hint = "put the list under `all:` (every condition must hold) or `any:` (at least one)"
    elif isinstance(value, str):
        hint = f'a condition is {shapes}; an expression goes in {{expr: "{value}"}}'
    return Diagnostic(
        code="schema-bad-condition",
        summary=f"not a condition: {_show(value)}",
        hint=hint,
        range=source.range(loc.path),
    )


def _one(err: dict[str, Any], loc: _Located, data: Any, source: Source, model: type[BaseModel]) -> Diagnostic:
    code = _code_for(err, loc)
    path = loc.path
    dotted = dotted_path(path)
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    hint: str | None = None
    if code == "schema-unknown-step":
        return _step_diagnostic(data, loc, source)
    if code == "schema-bad-condition":
        return _condition_diagnostic(data, loc, source)
    if code == "schema-unknown-key":
        bad = path[-1] if path else loc.missing
        owner = loc.owner
        allowed = [info.alias or name for name, info in owner.model_fields.items()] if owner else []
        where = dotted_path(path[:-1])
        summary = f"unknown key '{bad}'" + (f" in {where}" if where else "")
        hint = did_you_mean(bad, allowed) or (f"allowed keys: {', '.join(allowed)}" if allowed else None)
        return Diagnostic(code=code, summary=summary, hint=hint, range=source.range(path, prefer_key=True))
    if code == "schema-missing-key":
        key = loc.missing if err["type"] == "missing" else (err.get("ctx") or {}).get("discriminator", "type")
        key = str(key).strip("'")
        summary = f"missing required key '{key}'" + (f" in {dotted}" if dotted else "")
        if not path and model is not None and key == "name":
            hint = "every resource has a `name` (kebab-case or snake_case)"
        return Diagnostic(code=code, summary=summary, hint=hint, range=source.range(path))
    if code == "schema-unknown-trigger":
        ctx = err.get("ctx") or {}
        tag = ctx.get("tag")
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        return Diagnostic(
            code=code,
            summary=f"unknown trigger type '{tag}'",
            hint=did_you_mean(tag, expected) or "trigger types: " + ", ".join(expected),
            range=source.range((*path, "type")),
        )
    if code == "schema-unknown-operator":
        value = err.get("input")
        return Diagnostic(
            code=code,
            summary=f"unknown operator '{value}'",
            hint=did_you_mean(value, m.OPERATORS, alias=OPERATOR_ALIASES)
            or "operators: " + " ".join(m.OPERATORS),
            range=source.range(path),
        )
    friendly = _FRIENDLY_TYPES.get(err["type"])
    if friendly:
        msg = f"{friendly}, got {_type_name(err.get('input'))}: {_show(err.get('input'))}"
    if code == "bad-duration" and err["type"] == "string_pattern_mismatch":
        msg = f"not a duration: {_show(err.get('input'))}"
        hint = "write a number and a unit: 30s, 15m, 2h, 3d, 1w (or -7d)"
    elif code == "bad-duration":
        hint = "write a number and a unit: 30s, 15m, 2h, 3d, 1w (or -7d)"
    elif code == "bad-name":
        msg = f"invalid name {_show(err.get('input'))}"
        hint = "use kebab-case or snake_case: lowercase letters, digits, - or _ (e.g. welcome-new-customer)"
    elif code == "bad-time":
        msg = f"not a local time: {_show(err.get('input'))}"
        hint = "write HH:MM, e.g. 09:00"
    elif code == "bad-timezone":
        hint = "use an IANA time zone name such as Europe/Berlin, America/New_York or UTC"
    elif code == "bad-cron":
        hint = "five fields: minute hour day-of-month month day-of-week, e.g. '0 9 * * mon-fri'"
    elif err["type"] == "literal_error":
        expected = _expected_literals(err)
        msg = f"{_show(err.get('input'))} is not allowed; expected {one_of(expected, limit=20)}"
        hint = did_you_mean(err.get("input"), expected)
    summary = f"{dotted}: {msg}" if dotted else msg
    return Diagnostic(code=code, summary=summary, hint=hint, range=source.range(path))


def validation_diagnostics(
    exc: ValidationError, data: Any, source: Source, model: type[BaseModel]
) -> list[Diagnostic]:
    """Turn a pydantic ValidationError into one diagnostic per defect, each at its YAML position."""
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors(include_url=False)]
    located = [(err, _locate(data, tuple(err["loc"]), model)) for err in errors]

    # Several errors from one untagged union value: when one member went
    # deeper (the value had its shape), its errors are the real ones; else the
    # value fits no member and one "expected X or Y" says so.
    by_union: dict[DataPath, list[tuple[dict[str, Any], _Located]]] = {}
    for err, loc in located:
        if loc.union_path is not None:
            by_union.setdefault(loc.union_path, []).append((err, loc))
    drop: set[int] = set()
    collapsed: list[Diagnostic] = []
    for upath, group in by_union.items():
        shallow = [(e, lo) for e, lo in group if not (len(lo.path) > len(upath) or lo.missing is not None)]
        # Deeper errors may sit in a union nested inside this one (`str | list[str | Entry]`): they count too.
        deep = [(e, lo) for e, lo in located if lo.path[: len(upath)] == upath
                and (len(lo.path) > len(upath) or lo.missing is not None)]
        if not shallow:
            continue
        drop.update(id(e) for e, _ in shallow)
        if deep:
            continue
        err, loc = shallow[0]
        if len(shallow) == 1 and err["type"] not in _FRIENDLY_TYPES and err["type"] != "literal_error":
            drop.discard(id(err))  # a single specific message (e.g. a bad duration) says more
            continue
        value = err.get("input")
        dotted = dotted_path(upath)
        expected = describe(loc.union_ann)
        hint = None
        if isinstance(value, str):
            literals = [x for e, _ in shallow for x in _expected_literals(e)]
            hint = did_you_mean(value, literals)
        collapsed.append(
            Diagnostic(
                code="schema-type",
                summary=(f"{dotted}: " if dotted else "")
                + f"expected {expected}, got {_type_name(value)}: {_show(value)}",
                hint=hint,
                range=source.range(upath),
            )
        )

    # A misspelt key is one defect, not "unknown key 'mesage'" plus "missing
    # key 'message'": the suggestion covers the missing key.
    misspelt: set[tuple[DataPath, str]] = set()
    for err, loc in located:
        if err["type"] == "extra_forbidden" and loc.path and loc.owner is not None:
            allowed = [info.alias or name for name, info in loc.owner.model_fields.items()]
            best = closest(loc.path[-1], allowed)
            if best:
                misspelt.add((loc.path[:-1], best))

    out: list[Diagnostic] = []
    seen: set[tuple[str, int, int, str]] = set()
    for err, loc in located:
        if id(err) in drop:
            continue
        if err["type"] == "missing" and (loc.path, str(loc.missing)) in misspelt:
            continue
        diag = _one(err, loc, data, source, model)
        key = (diag.code, diag.range.line, diag.range.column, diag.summary)
        if key not in seen:
            seen.add(key)
            out.append(diag)
    for diag in collapsed:
        key = (diag.code, diag.range.line, diag.range.column, diag.summary)
        if key not in seen:
            seen.add(key)
            out.append(diag)
    return out
