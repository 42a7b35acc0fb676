"""Conditions against the object schema: fields exist, operators fit the field type, values fit the field.

`gt` on a string, `within_last` on a number, an enum value that does not
exist, or `changed_to` on a flow that no update can start are mistakes a
run would never report: the condition is simply false (§10.1). So validate
says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from flowctl.check.context import CheckContext, Owner
from flowctl.check.diagnostics import Diagnostic
from flowctl.check.fields import value_problem
from flowctl.check.walk import flow_conditions, iter_leaves, sla_conditions
from flowctl.resources import models as m

_ORDERED = ("number", "integer", "date", "datetime")
_DATES = ("date", "datetime")
_TEXT = ("string", "text", "email", "phone", "url", "enum")
_CONTAINS = ("string", "text", "email", "phone", "url", "list")

# Which field types each operator makes sense on (operators not listed fit any type).
OPERATOR_TYPES: dict[str, tuple[str, ...]] = {
    "gt": _ORDERED, "gte": _ORDERED, "lt": _ORDERED, "lte": _ORDERED, "between": _ORDERED,
    "within_last": _DATES, "more_than_ago": _DATES, "before": _DATES, "after": _DATES,
    "starts_with": _TEXT, "ends_with": _TEXT, "matches": _TEXT,
    "contains": _CONTAINS, "not_contains": _CONTAINS,
}  # fmt: skip
# Operators whose value is one value of the field (in/not_in/between: a list of them).
_VALUE_OPS = frozenset({"eq", "ne", "changed_from", "changed_to"})
_LIST_VALUE_OPS = frozenset({"in", "not_in"})
# Triggers on which a record has a "before" to compare with.
UPDATE_TRIGGERS = frozenset({"record_updated", "field_changed"})


def check_conditions(ctx: CheckContext) -> Iterator[Diagnostic]:
    for name, flow in ctx.project.flows.items():
        owner = ctx.owner("flow", name)
        obj = flow.object if flow.object and ctx.resolver.has_object(flow.object) else None
        for tree, path in flow_conditions(flow):
            # A wait's until_condition is evaluated on later updates, where a change is meaningful.
            change_ok = flow.trigger.type in UPDATE_TRIGGERS or path[-1] == "until_condition"
            for leaf, lpath in iter_leaves(tree, path):
                if isinstance(leaf, m.LeafCondition):
                    yield from _leaf(ctx, owner, obj, leaf, lpath, None if change_ok else flow.trigger.type)
    for name, policy in ctx.project.sla_policies.items():
        owner = ctx.owner("sla_policy", name)
        obj = policy.object if ctx.resolver.has_object(policy.object) else None
        for tree, path in sla_conditions(policy):
            for leaf, lpath in iter_leaves(tree, path):
                if isinstance(leaf, m.LeafCondition):
                    # SLA clocks are re-evaluated on every update: changes are meaningful.
                    yield from _leaf(ctx, owner, obj, leaf, lpath, None)


def _leaf(
    ctx: CheckContext,
    owner: Owner,
    obj: str | None,
    leaf: m.LeafCondition,
    path: tuple[str | int, ...],
    no_change_trigger: str | None,
) -> Iterator[Diagnostic]:
    if leaf.op in m.CHANGE_OPERATORS and no_change_trigger is not None:
        code = (
            "condition-change-op-on-create"
            if no_change_trigger == "record_created"
            else "condition-change-op-without-update"
        )
        yield ctx.diag(
            owner,
            (*path, "op"),
            code,
            f"operator '{leaf.op}' on a {no_change_trigger} trigger: there is no previous value to compare",
            hint="changed, changed_from and changed_to only make sense on record_updated or field_changed triggers",
        )
    if leaf.op == "matches" and isinstance(leaf.value, str) and "{{" not in leaf.value:
        try:
            re.compile(leaf.value)
        except re.error as exc:
            yield ctx.diag(owner, (*path, "value"), "bad-regex", f"invalid regular expression: {exc}")
    if obj is None:
        return
    resolved = ctx.resolver.resolve(obj, leaf.field)
    if resolved.problem is not None:
        yield ctx.from_problem(owner, (*path, "field"), resolved.problem, "condition")
        return
    fdef = resolved.field
    if fdef is None:
        return
    allowed = OPERATOR_TYPES.get(leaf.op)
    if allowed is not None and fdef.type not in allowed:
        yield ctx.diag(
            owner,
            (*path, "op"),
            "condition-op-not-for-type",
            f"operator '{leaf.op}' does not apply to '{leaf.field}', a field of type {fdef.type}",
            hint=f"'{leaf.op}' works on {', '.join(allowed)} fields"
            + ("; compare an enum with eq, ne, in or not_in" if fdef.type == "enum" else ""),
        )
        return
    values: list[tuple[Any, tuple[str | int, ...]]] = []
    if leaf.op in _VALUE_OPS:
        values.append((leaf.value, (*path, "value")))
    elif leaf.op in _LIST_VALUE_OPS and isinstance(leaf.value, list):
        values += [(v, (*path, "value", i)) for i, v in enumerate(leaf.value)]
    elif leaf.op == "between" and isinstance(leaf.value, list) and fdef.type in ("number", "integer"):
        values += [(v, (*path, "value", i)) for i, v in enumerate(leaf.value)]
    for value, vpath in values:
        problem = value_problem(fdef, value)
        if problem is not None:
            yield ctx.from_problem(owner, vpath, problem, f"condition on '{leaf.field}'")
