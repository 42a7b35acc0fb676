"""Conditions: every operator × null/missing × field types (SPEC §3, §10.1)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.lang.conditions import (
    MISSING,
    ConditionContext,
    evaluate,
    evaluate_with_reason,
    fields_in,
    record_context,
)
from flowctl.resources.models import (
    OPERATORS,
    AllCondition,
    AnyCondition,
    ConsentRule,
    FieldDef,
    LeafCondition,
    NotCondition,
)

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)

FIELDS = {
    "name": FieldDef(type="string"),
    "tier": FieldDef(type="enum", values=["standard", "premium", "gold"]),
    "amount": FieldDef(type="number"),
    "count": FieldDef(type="integer"),
    "active": FieldDef(type="boolean"),
    "birthday": FieldDef(type="date"),
    "created_at": FieldDef(type="datetime"),
    "tags": FieldDef(type="list", items="string"),
    "scores": FieldDef(type="list", items="number"),
    "owner": FieldDef(type="ref", object="user"),
    "email": FieldDef(type="email"),
    "empty_str": FieldDef(type="string"),
    "empty_list": FieldDef(type="list"),
    "nullv": FieldDef(type="string"),
    "absent": FieldDef(type="string"),
    "status": FieldDef(type="enum", values=["open", "pending", "closed"]),
    "last_contacted_at": FieldDef(type="datetime"),
    "renewal": FieldDef(type="date"),
}

RECORD: dict[str, Any] = {
    "name": "Alice Smith",
    "tier": "gold",
    "amount": "1200.50",  # the CRM sends numbers as strings sometimes
    "count": 3,
    "active": True,
    "birthday": dt.date(1990, 3, 10),
    "created_at": "2026-03-05T10:00:00Z",
    "tags": ["vip", "emea"],
    "scores": [1, 2.5, "7"],
    "owner": {"id": "u-1", "name": "Li Lei"},
    "email": "alice@example.com",
    "empty_str": "",
    "empty_list": [],
    "nullv": None,
    "status": "pending",
    "last_contacted_at": "2026-03-01T08:00:00",  # naive: UTC
    "renewal": "2026-03-10",
    "account": {"industry": "tech", "employees": "250"},
    "loose_num": "42",
    "loose_when": "2026-03-09T23:30:00Z",
}


def ctx(**overrides: Any) -> ConditionContext:
    base: dict[str, Any] = {
        "now": NOW,
        "fields": FIELDS,
        "timezone": "Europe/Berlin",
        "before": {"status": "open", "tier": "premium"},
        "changed": frozenset({"status", "tier", "nullv"}),
        "expr_context": {"record": RECORD, "now": NOW, "limit": 1000, "day": "2026-03-05"},
    }
    base.update(overrides)
    return record_context(RECORD, **base)


def leaf(field: str, op: str, value: Any = None) -> dict[str, Any]:
    d: dict[str, Any] = {"field": field, "op": op}
    if op not in ("is_set", "is_empty", "changed"):
        d["value"] = value
    return d


CASES: list[tuple[str, dict[str, Any], bool]] = [
    # eq / ne on every type
    ("eq string", leaf("name", "eq", "Alice Smith"), True),
    ("eq string is case-sensitive", leaf("name", "eq", "alice smith"), False),
    ("eq enum", leaf("tier", "eq", "gold"), True),
    ("ne enum", leaf("tier", "ne", "silver"), True),
    ("eq number from numeric string", leaf("amount", "eq", 1200.5), True),
    ("eq integer with string value", leaf("count", "eq", "3"), True),
    ("eq boolean", leaf("active", "eq", True), True),
    ("eq boolean from word", leaf("active", "eq", "true"), True),
    ("ne boolean", leaf("active", "ne", False), True),
    ("eq date", leaf("birthday", "eq", "1990-03-10"), True),
    ("eq datetime across offsets", leaf("created_at", "eq", "2026-03-05T11:00:00+01:00"), True),
    ("eq datetime vs date-only means that local day", leaf("created_at", "eq", dt.date(2026, 3, 5)), True),
    ("eq ref by id", leaf("owner", "eq", "u-1"), True),
    ("eq list", leaf("tags", "eq", ["vip", "emea"]), True),
    ("eq dotted path (unknown: loose)", leaf("account.industry", "eq", "tech"), True),
    ("eq missing field is false", leaf("absent", "eq", "x"), False),
    ("eq null field is false", leaf("nullv", "eq", None), False),
    ("ne missing field is true", leaf("absent", "ne", "x"), True),
    ("ne null field is true", leaf("nullv", "ne", "x"), True),
    ("eq bad number is false", leaf("amount", "eq", "abc"), False),
    ("ne bad number is false too", leaf("amount", "ne", "abc"), False),
    # ordering
    ("gt number", leaf("amount", "gt", 1000), True),
    ("gte number equal", leaf("count", "gte", 3), True),
    ("lt number", leaf("count", "lt", 3), False),
    ("lte number from template", leaf("amount", "lte", "{{ limit * 2 }}"), True),
    ("gt on missing is false", leaf("absent", "gt", 1), False),
    ("gt on null is false", leaf("nullv", "gt", "a"), False),
    ("gt loose numeric string vs number", leaf("loose_num", "gt", 40), True),
    ("lt loose dotted numeric", leaf("account.employees", "lt", 1000), True),
    ("gt strings compare lexically", leaf("name", "gt", "Aaron"), True),
    ("gt date vs datetime uses the local day", leaf("birthday", "lt", "1990-03-11T00:30:00+01:00"), True),
    ("gt number vs word is false", leaf("count", "gt", "many"), False),
    ("gt on list is false", leaf("tags", "gt", "a"), False),
    # in / not_in
    ("in enum", leaf("tier", "in", ["premium", "gold"]), True),
    ("in enum absent", leaf("tier", "in", ["standard"]), False),
    ("not_in enum", leaf("tier", "not_in", ["standard"]), True),
    ("in number", leaf("count", "in", [1, 2, 3]), True),
    ("in on missing is false", leaf("absent", "in", ["x"]), False),
    ("not_in on missing is true", leaf("absent", "not_in", ["x"]), True),
    ("not_in on null is true", leaf("nullv", "not_in", ["x"]), True),
    ("in on list field: any item", leaf("tags", "in", ["emea", "apac"]), True),
    ("not_in on list field: no item", leaf("tags", "not_in", ["apac"]), True),
    ("in bad number is false", leaf("amount", "in", ["x", "y"]), False),
    # contains / not_contains
    ("contains substring", leaf("name", "contains", "Smith"), True),
    ("contains is case-sensitive", leaf("name", "contains", "smith"), False),
    ("contains list membership", leaf("tags", "contains", "vip"), True),
    ("contains number list with coercion", leaf("scores", "contains", 7), True),
    ("not_contains list", leaf("tags", "not_contains", "apac"), True),
    ("not_contains substring present", leaf("email", "not_contains", "@"), False),
    ("contains on missing is false", leaf("absent", "contains", "x"), False),
    ("not_contains on missing is true", leaf("absent", "not_contains", "x"), True),
    ("contains on a number is false", leaf("count", "contains", "3"), False),
    # starts_with / ends_with / matches
    ("starts_with", leaf("email", "starts_with", "alice@"), True),
    ("ends_with", leaf("email", "ends_with", "@example.com"), True),
    ("ends_with no", leaf("email", "ends_with", ".org"), False),
    ("starts_with on missing is false", leaf("absent", "starts_with", "a"), False),
    ("matches regex search", leaf("email", "matches", r"@example\.(com|org)$"), True),
    ("matches no match", leaf("email", "matches", r"^bob"), False),
    ("matches invalid regex is false", leaf("email", "matches", "(unclosed"), False),
    ("matches on null is false", leaf("nullv", "matches", ".*"), False),
    # is_set / is_empty
    ("is_set on value", leaf("email", "is_set"), True),
    ("is_set on empty string", leaf("empty_str", "is_set"), False),
    ("is_set on empty list", leaf("empty_list", "is_set"), False),
    ("is_set on missing", leaf("absent", "is_set"), False),
    ("is_empty on null", leaf("nullv", "is_empty"), True),
    ("is_empty on missing", leaf("absent", "is_empty"), True),
    ("is_empty on empty string", leaf("empty_str", "is_empty"), True),
    ("is_empty on value", leaf("tags", "is_empty"), False),
    ("is_set on false boolean", {"field": "active", "op": "is_set"}, True),
    # changed / changed_from / changed_to
    ("changed", leaf("status", "changed"), True),
    ("changed not in changed set", leaf("name", "changed"), False),
    ("changed on a cleared (null) field is false", leaf("nullv", "changed"), False),
    ("changed_from", leaf("status", "changed_from", "open"), True),
    ("changed_from wrong value", leaf("status", "changed_from", "closed"), False),
    ("changed_to", leaf("status", "changed_to", "pending"), True),
    ("changed_to wrong value", leaf("status", "changed_to", "closed"), False),
    ("changed_to on unchanged field", leaf("name", "changed_to", "Alice Smith"), False),
    ("changed_from null: had no value before", leaf("tier", "changed_from", None), False),
    # time windows (now = 2026-03-10 13:00 Berlin)
    ("within_last 7d", leaf("created_at", "within_last", "7d"), True),
    ("within_last 3d", leaf("created_at", "within_last", "3d"), False),
    ("within_last 1w", leaf("last_contacted_at", "within_last", "1w"), False),
    ("more_than_ago 7d", leaf("last_contacted_at", "more_than_ago", "7d"), True),
    ("more_than_ago 10d", leaf("last_contacted_at", "more_than_ago", "10d"), False),
    ("within_last exact hours", leaf("created_at", "within_last", "122h"), True),
    ("within_last 121h (window starts after)", leaf("created_at", "within_last", "121h"), False),
    ("within_last date-only today", leaf("renewal", "within_last", "1d"), True),
    ("within_last on missing is false", leaf("absent", "within_last", "7d"), False),
    ("more_than_ago on null is false", leaf("nullv", "more_than_ago", "7d"), False),
    ("within_last on non-date is false", leaf("name", "within_last", "7d"), False),
    ("loose within_last on ISO string", leaf("loose_when", "within_last", "1d"), True),
    # before / after
    ("before now", leaf("created_at", "before", "now"), True),
    ("after now", leaf("created_at", "after", "now"), False),
    ("after date-only: the whole day", leaf("created_at", "after", "2026-03-04"), True),
    ("after its own day is false", leaf("created_at", "after", "2026-03-05"), False),
    ("before datetime", leaf("birthday", "before", dt.datetime(2000, 1, 1, tzinfo=dt.UTC)), True),
    ("after template", leaf("created_at", "after", "{{ day }}T09:00:00Z"), True),
    ("before undefined template is false", leaf("created_at", "before", "{{ nope }}"), False),
    ("before on missing is false", leaf("absent", "before", "now"), False),
    ("before on non-date value is false", leaf("created_at", "before", "soon"), False),
    (
        "date field: late-evening UTC is the next Berlin day",
        leaf("renewal", "eq", "2026-03-09T23:30:00Z"),
        True,
    ),
    # between
    ("between numbers inclusive low", leaf("count", "between", [3, 5]), True),
    ("between numbers inclusive high", leaf("amount", "between", [1000, "1200.5"]), True),
    ("between outside", leaf("count", "between", [4, 5]), False),
    ("between dates", leaf("created_at", "between", ["2026-03-01", "now"]), True),
    ("between on missing is false", leaf("absent", "between", [1, 2]), False),
    ("between mixed types is false", leaf("count", "between", ["a", 5]), False),
    # groups and expr
    ("all", {"all": [leaf("tier", "eq", "gold"), leaf("active", "eq", True)]}, True),
    ("all one false", {"all": [leaf("tier", "eq", "gold"), leaf("active", "eq", False)]}, False),
    ("any", {"any": [leaf("tier", "eq", "x"), leaf("count", "gt", 1)]}, True),
    ("any none", {"any": [leaf("tier", "eq", "x"), leaf("count", "gt", 10)]}, False),
    ("not", {"not": leaf("tier", "eq", "gold")}, False),
    ("not of a null leaf", {"not": leaf("absent", "eq", "x")}, True),
    (
        "nested",
        {
            "all": [
                {"any": [{"not": leaf("absent", "is_set")}, leaf("x", "eq", 1)]},
                {"expr": "record.count == 3"},
            ]
        },
        True,
    ),
    ("expr truthy", {"expr": "record.amount | float > limit"}, True),
    ("expr falsy", {"expr": "record.tags | length > 5"}, False),
    ("expr undefined is false", {"expr": "missing_name.x > 1"}, False),
    ("expr syntax error is false", {"expr": "1 +"}, False),
    ("invalid condition dict is false", {"field": "x", "op": "nope", "value": 1}, False),
]


def test_case_table_is_large_and_names_are_unique() -> None:
    assert len(CASES) >= 60
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "condition", "expected"), CASES, ids=[c[0] for c in CASES])
def test_case(name: str, condition: dict[str, Any], expected: bool) -> None:
    assert evaluate(condition, ctx()) is expected
    result, reason = evaluate_with_reason(condition, ctx())
    assert result is expected, reason
    assert reason.endswith("true" if expected else "false")


def test_models_and_dicts_agree() -> None:
    model = AllCondition(all=[LeafCondition(field="tier", op="in", value=["gold"])])
    assert evaluate(model, ctx()) is True
    assert evaluate(model.model_dump(by_alias=True, exclude_unset=True), ctx()) is True


def test_consent_rule_is_a_leaf() -> None:
    assert evaluate(ConsentRule(field="active", op="ne", value=False), ctx()) is True
    assert evaluate(ConsentRule(field="email_opt_out", op="ne", value=True), ctx()) is True


def test_changed_operators_outside_update_are_false() -> None:
    c = ctx(changed=None, before=None)
    assert evaluate(leaf("status", "changed"), c) is False
    assert evaluate(leaf("status", "changed_to", "pending"), c) is False


def test_changed_from_null_when_the_field_was_unset() -> None:
    c = ctx(before={}, changed=frozenset({"status"}))
    assert evaluate(leaf("status", "changed_from", None), c) is True
    assert evaluate(leaf("status", "changed_from", "open"), c) is False


def test_within_last_days_are_calendar_days_in_the_zone() -> None:
    # 2026-03-29 is the spring-forward day in Berlin: 1d back from Monday 12:00 local is Sunday 12:00
    # local, which is 23 real hours earlier.
    now = dt.datetime(2026, 3, 30, 10, 0, tzinfo=dt.UTC)  # 12:00 CEST
    rec = {"t": "2026-03-29T10:30:00Z"}  # Sunday 12:30 CEST: 23.5h ago
    c = record_context(rec, now=now, fields={"t": FieldDef(type="datetime")}, timezone="Europe/Berlin")
    assert evaluate(leaf("t", "within_last", "1d"), c) is True
    assert evaluate(leaf("t", "within_last", "23h"), c) is False
    c_utc = record_context(rec, now=now, fields={"t": FieldDef(type="datetime")}, timezone="UTC")
    assert evaluate(leaf("t", "within_last", "1d"), c_utc) is True
    rec2 = {"t": "2026-03-29T09:30:00Z"}  # Sunday 11:30 CEST: before Sunday 12:00 local
    c2 = record_context(rec2, now=now, fields={"t": FieldDef(type="datetime")}, timezone="Europe/Berlin")
    assert evaluate(leaf("t", "within_last", "1d"), c2) is False
    assert evaluate(leaf("t", "more_than_ago", "1d"), c2) is True


def test_missing_sentinel_and_custom_getter() -> None:
    c = ConditionContext(get=lambda path: MISSING, field_def=lambda path: None, now=NOW)
    assert evaluate(leaf("x", "is_empty"), c) is True
    assert evaluate(leaf("x", "ne", 1), c) is True
    assert evaluate(leaf("x", "eq", 1), c) is False
    assert not MISSING


def test_getter_that_raises_makes_false() -> None:
    def boom(path: str) -> Any:
        raise RuntimeError("store down")

    c = ConditionContext(get=boom, field_def=lambda path: None, now=NOW)
    assert evaluate(leaf("x", "ne", 1), c) is False
    ok, reason = evaluate_with_reason(leaf("x", "ne", 1), c)
    assert ok is False and "RuntimeError" in reason


def test_empty_groups() -> None:
    # The models forbid empty groups; code building conditions gets Python's semantics.
    assert evaluate(AllCondition.model_construct(all=[]), ctx()) is True
    assert evaluate(AnyCondition.model_construct(any=[]), ctx()) is False


def test_reason_names_the_decisive_member() -> None:
    ok, reason = evaluate_with_reason({"all": [leaf("tier", "eq", "gold"), leaf("count", "gt", 10)]}, ctx())
    assert ok is False
    assert reason == "all: 1/2 held (first false: count gt 10 (is 3) → false) → false"


def test_fields_in_walks_every_leaf() -> None:
    cond = {
        "all": [
            leaf("email", "is_set"),
            {"any": [leaf("tier", "in", ["gold"]), {"not": leaf("account.industry", "eq", "x")}]},
            {"expr": "true"},
        ]
    }
    found = fields_in(cond)
    assert [f for f, _ in found] == ["email", "tier", "account.industry"]
    assert all(isinstance(lc, LeafCondition) for _, lc in found)


# --------------------------------------------------------------------------- properties

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["2026-03-05", "2026-03-05T10:00:00Z", "now", "(", "{{ x }}", "1e999", "nan", "true"]),
    st.dates().map(lambda d: d),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)
OPS: list[Any] = list(OPERATORS)
TYPES = ["string", "number", "integer", "boolean", "date", "datetime", "list", "ref", "enum", None]


def _fdef(t: str | None) -> FieldDef | None:
    if t is None:
        return None
    if t == "enum":
        return FieldDef(type="enum", values=["a"])
    if t == "ref":
        return FieldDef(type="ref", object="user")
    return FieldDef(type=t)


@settings(max_examples=400, deadline=None)
@given(
    record_value=json_values,
    op=st.sampled_from(OPS),
    value=json_values,
    ftype=st.sampled_from(TYPES),
    before=json_values,
)
def test_evaluate_never_raises(
    record_value: Any, op: Any, value: Any, ftype: str | None, before: Any
) -> None:
    c = record_context(
        {"f": record_value},
        now=NOW,
        fields={"f": fd} if (fd := _fdef(ftype)) else None,
        timezone="America/New_York",
        before={"f": before},
        changed=frozenset({"f"}),
        expr_context={"x": 1},
    )
    cond = LeafCondition.model_construct(field="f", op=op, value=value)  # skip validation: arbitrary values
    result = evaluate(cond, c)
    assert isinstance(result, bool)
    ok, reason = evaluate_with_reason(cond, c)
    assert ok is result and isinstance(reason, str)


@settings(max_examples=300, deadline=None)
@given(
    record_value=json_values.filter(lambda v: v is not None),
    op=st.sampled_from(OPS),
    value=json_values,
    ftype=st.sampled_from(TYPES),
)
def test_not_is_negation(record_value: Any, op: Any, value: Any, ftype: str | None) -> None:
    fd = _fdef(ftype)
    c = record_context({"f": record_value}, now=NOW, fields={"f": fd} if fd else None, changed=frozenset())
    cond = LeafCondition.model_construct(field="f", op=op, value=value)
    assert evaluate(NotCondition.model_construct(not_=cond), c) is (not evaluate(cond, c))


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from(OPS), value=json_values, ftype=st.sampled_from(TYPES), present=st.booleans())
def test_null_semantics_for_every_operator(op: Any, value: Any, ftype: str | None, present: bool) -> None:
    fd = _fdef(ftype)
    rec = {"f": None} if present else {}
    c = record_context(rec, now=NOW, fields={"f": fd} if fd else None, before={}, changed=frozenset({"f"}))
    cond = LeafCondition.model_construct(field="f", op=op, value=value)
    assert evaluate(cond, c) is (op in ("ne", "not_in", "not_contains", "is_empty"))
