"""Runtime evaluation of conditions (SPEC §3 Conditions, §10.1).

A condition is a leaf `{field, op, value}`, a group `{all: [...]}` /
`{any: [...]}` / `{not: ...}`, or `{expr: "jinja2 expression"}`.

Rules, in the order they apply to a leaf:

- **Null.** A missing field is null. On null, `ne`, `not_in`, `not_contains`
  and `is_empty` are true and every other operator is false — including
  `changed*` (a field cleared by an update is null, so `changed` on it is false;
  write `is_empty` for "was cleared").
- **Never raises.** A comparison that cannot be made (a number field holding
  "abc", an invalid regex, a template that fails to render) makes the leaf
  false, whatever the operator: `ne` is then false too.
- **Types follow the schema.** `ctx.field_def(path)` gives the field's type:
  `number`/`integer` compare numerically (a numeric string from the CRM
  counts), `boolean` as booleans (also "true"/"false", 1/0), `date` as dates,
  `datetime` as instants (ISO strings are parsed; naive means UTC), `ref` by
  the referenced id, every other type as case-sensitive strings. When the
  field is unknown the comparison is loose: it is inferred from the values.
- **Date vs datetime.** When either side is date-only, both compare as dates:
  a datetime is turned into its calendar day in `ctx.timezone`. So a
  date-only value means that whole day (`after: 2026-01-01` is false on any
  instant of 1 January local time).
- **Values.** A string value with `{{ }}` is rendered with `ctx.expr_context`
  first (any operator); `now` in a date/datetime comparison means `ctx.now`.
- **Operators.** `in`/`not_in` on a list field test whether any item is in
  the list. `contains` is a substring test on strings and membership on lists.
  `matches` is `re.search`. `is_set` is not null, not "" and not [].
  `changed_from: null` holds when the field had no value before.
  `within_last: 7d` means value in [now - 7d, now], `more_than_ago: 7d` means
  value < now - 7d, with `d`/`w` counted as calendar days in `ctx.timezone`.
  `between: [low, high]` is inclusive.
- **Groups.** `all` is true when every member is (an empty `all` is true),
  `any` when one is (an empty `any` is false), `not` negates. The models
  forbid empty groups; the empty semantics only matter to code that builds
  conditions itself.
- **expr.** `evaluate_expression(expr, ctx.expr_context)`; true when the
  result is truthy, false on any error.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final, Protocol

from pydantic import TypeAdapter

from flowctl.lang.durations import Duration, zone_of
from flowctl.lang.templates import evaluate_expression, is_templated, render
from flowctl.resources.models import (
    AllCondition,
    AnyCondition,
    Condition,
    ExprCondition,
    FieldDef,
    LeafCondition,
    NotCondition,
)

__all__ = [
    "MISSING",
    "ConditionContext",
    "evaluate",
    "evaluate_with_reason",
    "fields_in",
    "record_context",
]


class _Missing:
    """The value of a field that is absent from the record (distinct from an explicit null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


@dataclass
class ConditionContext:
    get: Callable[[str], Any]
    """dotted path ("email", "account.industry") -> value, or MISSING when absent"""
    field_def: Callable[[str], FieldDef | None]
    """dotted path -> schema field; None when unknown (the comparison is then loose)"""
    now: dt.datetime
    """aware UTC"""
    timezone: str = "UTC"
    """for date-only values and calendar-day arithmetic"""
    before: Mapping[str, Any] | None = None
    """previous values of the changed fields (update triggers); None otherwise"""
    changed: frozenset[str] | None = None
    """names of the changed fields; None when the trigger is not an update"""
    expr_context: Mapping[str, Any] | None = None
    """template context for {expr: ...} and templated values"""


def record_context(
    record: Mapping[str, Any],
    *,
    now: dt.datetime,
    fields: Mapping[str, FieldDef] | None = None,
    timezone: str = "UTC",
    before: Mapping[str, Any] | None = None,
    changed: frozenset[str] | None = None,
    expr_context: Mapping[str, Any] | None = None,
) -> ConditionContext:
    """A context over a plain record dict: dotted paths walk nested dicts (resolved refs).

    `fields` maps top-level field names to their definitions; nested paths are
    unknown (compared loosely) unless the caller provides a richer `field_def`.
    """

    def get(path: str) -> Any:
        value: Any = record
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                return MISSING
        return value

    known = fields or {}
    return ConditionContext(
        get=get,
        field_def=lambda path: known.get(path),
        now=now,
        timezone=timezone,
        before=before,
        changed=changed,
        expr_context=expr_context,
    )


# --------------------------------------------------------------------------- public API


class LeafLike(Protocol):
    """A leaf condition, or anything shaped like one (the object schema's consent rules)."""

    field: str
    op: str
    value: Any


_CONDITION_ADAPTER: TypeAdapter[Any] = TypeAdapter(Condition)


def evaluate(condition: Any, ctx: ConditionContext) -> bool:
    """True when the condition holds. Never raises: anything that cannot be evaluated is False."""
    try:
        return _eval(_as_model(condition), ctx)
    except Exception:
        # The engine must never fail a run because a condition met odd data.
        return False


def evaluate_with_reason(condition: Any, ctx: ConditionContext) -> tuple[bool, str]:
    """(result, a short human explanation) for traces. Never raises."""
    try:
        return _explain(_as_model(condition), ctx)
    except Exception as exc:
        return False, f"could not evaluate the condition ({type(exc).__name__}) → false"


def fields_in(condition: Any) -> list[tuple[str, LeafCondition]]:
    """Every leaf's field path with its leaf, depth first (trigger and dependency analysis)."""
    out: list[tuple[str, LeafCondition]] = []

    def walk(node: Any) -> None:
        if isinstance(node, AllCondition):
            for c in node.all:
                walk(c)
        elif isinstance(node, AnyCondition):
            for c in node.any:
                walk(c)
        elif isinstance(node, NotCondition):
            walk(node.not_)
        elif isinstance(node, ExprCondition):
            return
        elif _is_leaf(node):
            out.append((node.field, node))

    walk(_as_model(condition))
    return out


# --------------------------------------------------------------------------- evaluation


def _as_model(condition: Any) -> Any:
    if isinstance(condition, dict):
        return _CONDITION_ADAPTER.validate_python(condition)
    return condition


def _is_leaf(node: Any) -> bool:
    return hasattr(node, "field") and hasattr(node, "op")


def _eval(node: Any, ctx: ConditionContext) -> bool:
    if isinstance(node, AllCondition):
        return all(_eval(c, ctx) for c in node.all)
    if isinstance(node, AnyCondition):
        return any(_eval(c, ctx) for c in node.any)
    if isinstance(node, NotCondition):
        return not _eval(node.not_, ctx)
    if isinstance(node, ExprCondition):
        return _eval_expr(node.expr, ctx)
    if _is_leaf(node):
        return _eval_leaf(node, ctx)
    raise TypeError(f"not a condition: {type(node).__name__}")


def _eval_expr(expr: str, ctx: ConditionContext) -> bool:
    try:
        return bool(evaluate_expression(expr, ctx.expr_context or {}))
    except Exception:
        return False


def _explain(node: Any, ctx: ConditionContext) -> tuple[bool, str]:
    if isinstance(node, AllCondition | AnyCondition):
        is_all = isinstance(node, AllCondition)
        members = node.all if isinstance(node, AllCondition) else node.any
        results = [_explain(c, ctx) for c in members]
        held = sum(1 for ok, _ in results if ok)
        result = held == len(results) if is_all else held > 0
        name = "all" if is_all else "any"
        # The member that decided the outcome is what a reader of a trace wants to see.
        decisive = next((why for ok, why in results if ok != is_all), None)
        summary = f"{name}: {held}/{len(results)} held"
        if decisive is not None:
            summary += f" ({'first false' if is_all else 'first true'}: {decisive})"
        return result, f"{summary} → {_tf(result)}"
    if isinstance(node, NotCondition):
        inner, why = _explain(node.not_, ctx)
        return not inner, f"not ({why}) → {_tf(not inner)}"
    if isinstance(node, ExprCondition):
        try:
            value = evaluate_expression(node.expr, ctx.expr_context or {})
        except Exception as exc:
            return False, f"expr {node.expr!r} failed: {exc} → false"
        return bool(value), f"expr {node.expr!r} = {_short(value)} → {_tf(bool(value))}"
    if _is_leaf(node):
        result = _eval_leaf(node, ctx)
        actual = ctx.get(node.field)
        shown = "missing" if actual is MISSING else _short(actual)
        value = "" if node.op in ("is_set", "is_empty", "changed") else f" {_short(node.value)}"
        return result, f"{node.field} {node.op}{value} (is {shown}) → {_tf(result)}"
    raise TypeError(f"not a condition: {type(node).__name__}")


def _tf(value: bool) -> str:
    return "true" if value else "false"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Operators that hold on a null field (§10.1).
_TRUE_ON_NULL: Final = frozenset({"ne", "not_in", "not_contains", "is_empty"})


class _Incomparable(Exception):
    """A value cannot be read as the type the comparison needs; the leaf is then false."""


def _is_null(value: Any) -> bool:
    return value is MISSING or value is None


def _is_empty(value: Any) -> bool:
    return _is_null(value) or value == "" or (isinstance(value, list) and not value)


def _eval_leaf(leaf: LeafLike, ctx: ConditionContext) -> bool:
    op = leaf.op
    actual = ctx.get(leaf.field)
    if op in ("is_set", "is_empty"):
        return _is_empty(actual) == (op == "is_empty")
    if _is_null(actual):
        return op in _TRUE_ON_NULL
    try:
        return _compare(op, leaf.field, actual, leaf.value, ctx)
    except (_Incomparable, TypeError, ValueError, ArithmeticError, OverflowError, re.error):
        return False


def _compare(op: str, field: str, actual: Any, raw_expected: Any, ctx: ConditionContext) -> bool:
    fdef = ctx.field_def(field)
    kind = _kind_of(fdef)
    expected = _resolve(raw_expected, ctx)

    if op in ("eq", "ne"):
        same = _equal(actual, expected, kind, fdef, ctx)
        return same if op == "eq" else not same
    if op in ("gt", "gte", "lt", "lte"):
        a, b = _ordered_pair(actual, expected, kind, ctx)
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    if op in ("in", "not_in"):
        if not isinstance(expected, list):
            raise _Incomparable("in needs a list")
        candidates = [_resolve(v, ctx) for v in expected]
        items = actual if isinstance(actual, list) else [actual]
        item_kind = _item_kind(fdef) if isinstance(actual, list) else kind
        # Coerce the record side once so that a value of the wrong type is a bad comparison (false),
        # not a silent "not in".
        hit = any(_member(item, candidates, item_kind, ctx) for item in items)
        return hit if op == "in" else not hit
    if op in ("contains", "not_contains"):
        if isinstance(actual, list):
            hit = _member_any(expected, actual, _item_kind(fdef), ctx)
        elif isinstance(actual, str):
            hit = _text(expected) in actual
        else:
            raise _Incomparable("contains needs a string or a list")
        return hit if op == "contains" else not hit
    if op in ("starts_with", "ends_with"):
        if not isinstance(actual, str):
            raise _Incomparable(f"{op} needs a string")
        text = _text(expected)
        return actual.startswith(text) if op == "starts_with" else actual.endswith(text)
    if op == "matches":
        if not isinstance(actual, str) or not isinstance(expected, str):
            raise _Incomparable("matches needs a string and a pattern")
        return _regex(expected).search(actual) is not None
    if op in ("changed", "changed_from", "changed_to"):
        return _changed(op, field, actual, expected, kind, fdef, ctx)
    if op in ("within_last", "more_than_ago"):
        return _ago(op, actual, raw_expected, ctx)
    if op in ("before", "after"):
        a, b = _temporal_pair(_temporal(actual, ctx), _temporal(expected, ctx), ctx)
        return a < b if op == "before" else a > b
    if op == "between":
        if not (isinstance(expected, list) and len(expected) == 2):
            raise _Incomparable("between needs [low, high]")
        low, high = (_resolve(v, ctx) for v in expected)
        a1, lo = _ordered_pair(actual, low, kind, ctx)
        a2, hi = _ordered_pair(actual, high, kind, ctx)
        return bool(lo <= a1 and a2 <= hi)
    raise _Incomparable(f"unknown operator {op}")


def _resolve(value: Any, ctx: ConditionContext) -> Any:
    """Render a templated string value; everything else is taken as written."""
    if isinstance(value, str) and is_templated(value):
        if ctx.expr_context is None:
            raise _Incomparable("a templated value needs a template context")
        try:
            return render(value, ctx.expr_context)
        except Exception as exc:
            raise _Incomparable(str(exc)) from None
    return value


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# --------------------------------------------------------------------------- typing values

_STRING_TYPES: Final = frozenset({"string", "text", "email", "phone", "url", "enum"})


def _kind_of(fdef: FieldDef | None) -> str | None:
    """The comparison family for a schema field; None means loose (inferred from the values)."""
    if fdef is None:
        return None
    t = fdef.type
    if t in _STRING_TYPES:
        return "string"
    if t in ("number", "integer"):
        return "number"
    return t  # boolean, date, datetime, list, ref


def _item_kind(fdef: FieldDef | None) -> str | None:
    if fdef is None or fdef.items is None:
        return None
    return _kind_of(FieldDef(type=fdef.items))


_ISO_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _looks_temporal(value: Any) -> bool:
    if isinstance(value, dt.date):  # datetime is a date too
        return True
    return isinstance(value, str) and (
        value == "now" or bool(_ISO_DATE_RE.match(value)) or bool(_ISO_DATETIME_RE.match(value))
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _Incomparable("a boolean is not a number")
    if isinstance(value, int | Decimal):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Incomparable("not a finite number")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _Incomparable(f"{value!r} is not a number") from None
    else:
        raise _Incomparable(f"{type(value).__name__} is not a number")
    if not result.is_finite():
        raise _Incomparable("not a finite number")
    return result


_TRUE_WORDS: Final = frozenset({"true", "yes", "1"})
_FALSE_WORDS: Final = frozenset({"false", "no", "0"})


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _Incomparable(f"{value!r} is not a boolean")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if _is_number(value):
        return str(value)
    raise _Incomparable(f"{type(value).__name__} is not a string")


def _ref_id(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("id")
    return _text(value)


def _temporal(value: Any, ctx: ConditionContext) -> dt.date | dt.datetime:
    """A date (date-only value) or an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text == "now":
            return ctx.now.astimezone(dt.UTC)
        if _ISO_DATE_RE.match(text):
            return dt.date.fromisoformat(text)
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise _Incomparable(f"{value!r} is not a date or datetime") from None
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    raise _Incomparable(f"{type(value).__name__} is not a date or datetime")


def _local_date(instant: dt.datetime, ctx: ConditionContext) -> dt.date:
    return instant.astimezone(zone_of(ctx.timezone)).date()


def _temporal_pair(
    a: dt.date | dt.datetime, b: dt.date | dt.datetime, ctx: ConditionContext
) -> tuple[Any, Any]:
    """Make two temporal values comparable: as dates when either is date-only, else as instants."""
    a_is_dt, b_is_dt = isinstance(a, dt.datetime), isinstance(b, dt.datetime)
    if a_is_dt and b_is_dt:
        return a, b
    if a_is_dt:
        return _local_date(a, ctx), b  # type: ignore[arg-type]
    if b_is_dt:
        return a, _local_date(b, ctx)  # type: ignore[arg-type]
    return a, b


def _infer_kind(actual: Any, expected: Any) -> str:
    """Loose comparison (field unknown to the schema): the family both values can be read as."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return "boolean"
    if isinstance(actual, dt.date) or isinstance(expected, dt.date):
        return "temporal"
    if _is_number(actual) or _is_number(expected):
        return "number"
    if isinstance(actual, str) and isinstance(expected, str):
        if _looks_temporal(actual) and _looks_temporal(expected) and actual != "now":
            return "temporal"
        return "string"
    return "raw"


def _coerce_pair(actual: Any, expected: Any, kind: str | None, ctx: ConditionContext) -> tuple[Any, Any]:
    k = kind if kind is not None else _infer_kind(actual, expected)
    if k == "number":
        return _number(actual), _number(expected)
    if k == "boolean":
        return _boolean(actual), _boolean(expected)
    if k in ("date", "datetime", "temporal"):
        a, b = _temporal_pair(_temporal(actual, ctx), _temporal(expected, ctx), ctx)
        if k == "date" and isinstance(a, dt.datetime):
            # A date field holding a full timestamp still compares as its day.
            return _local_date(a, ctx), _local_date(b, ctx)
        return a, b
    if k == "string":
        return _text(actual), _text(expected)
    if k == "ref":
        return _ref_id(actual), _ref_id(expected)
    if k == "list":
        if not isinstance(actual, list) or not isinstance(expected, list):
            raise _Incomparable("a list compares with a list")
        return actual, expected
    return actual, expected


def _equal(
    actual: Any, expected: Any, kind: str | None, fdef: FieldDef | None, ctx: ConditionContext
) -> bool:
    if expected is None:
        return False  # the field is not null here (nulls were handled first)
    if kind == "list":
        if not (isinstance(actual, list) and isinstance(expected, list)):
            raise _Incomparable("a list compares with a list")
        if len(actual) != len(expected):
            return False
        ik = _item_kind(fdef)
        return all(_equal(x, y, ik, None, ctx) for x, y in zip(actual, expected, strict=True))
    a, b = _coerce_pair(actual, expected, kind, ctx)
    return bool(a == b)


def _ordered_pair(actual: Any, expected: Any, kind: str | None, ctx: ConditionContext) -> tuple[Any, Any]:
    if expected is None or kind in ("list", "ref") or isinstance(actual, list | dict):
        raise _Incomparable("not an ordered value")
    a, b = _coerce_pair(actual, expected, kind, ctx)
    if type(a) is not type(b):
        raise _Incomparable("values of different types")
    return a, b


def _member(item: Any, candidates: list[Any], kind: str | None, ctx: ConditionContext) -> bool:
    """Is `item` (a record value) equal to one of `candidates`? A wrong-typed item is a bad comparison."""
    if kind is not None:
        _coerce_pair(item, item, kind, ctx)  # raises when the record value is of the wrong type
    for c in candidates:
        if c is None:
            continue
        try:
            if _equal(item, c, kind, None, ctx):
                return True
        except _Incomparable:
            continue
    return False


def _member_any(needle: Any, items: list[Any], kind: str | None, ctx: ConditionContext) -> bool:
    for item in items:
        if item is None:
            continue
        try:
            if _equal(item, needle, kind, None, ctx):
                return True
        except _Incomparable:
            continue
    return False


def _changed(
    op: str,
    field: str,
    actual: Any,
    expected: Any,
    kind: str | None,
    fdef: FieldDef | None,
    ctx: ConditionContext,
) -> bool:
    if ctx.changed is None or field not in ctx.changed:
        return False
    if op == "changed":
        return True
    if op == "changed_to":
        return _equal(actual, expected, kind, fdef, ctx)
    previous = (ctx.before or {}).get(field, MISSING)
    if expected is None:
        return _is_null(previous)
    if _is_null(previous):
        return False
    return _equal(previous, expected, kind, fdef, ctx)


def _ago(op: str, actual: Any, raw: Any, ctx: ConditionContext) -> bool:
    span = Duration.parse(raw)
    threshold = Duration(-span.amount, span.unit).add_to(ctx.now, ctx.timezone)
    value = _temporal(actual, ctx)
    now: dt.date | dt.datetime = ctx.now.astimezone(dt.UTC)
    start: dt.date | dt.datetime = threshold
    if not isinstance(value, dt.datetime):
        now, start = _local_date(ctx.now, ctx), _local_date(threshold, ctx)
    if op == "within_last":
        return bool(start <= value <= now)
    return bool(value < start)
