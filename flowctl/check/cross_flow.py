"""Checks across flows: flows that trigger each other in a loop, and flows that fight over a field.

A flow's `update_record` (and `assign_record`, and `merge_duplicates`'s
`mark`) writes fields; a write fires every enabled flow on that object whose
trigger is `record_updated` (with no `fields`, or listing the field) or
`field_changed` on the field (and, when both are constants, into its `to`).
Flows that fire each other in a cycle run forever: `flow-trigger-cycle`. A
flow with `reentry: never` cannot run twice for one record, so it ends any
cycle through it.

Two enabled flows on the same object and the same trigger that set one
field to different constants race; the last to run wins:
`field-write-conflict` (a warning).

Both are linear in the number of writes (triggers are indexed by object and
field), so a repository of thousands of flows checks in milliseconds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flowctl.check.context import CheckContext, is_dynamic
from flowctl.check.cycles import cyclic_components
from flowctl.check.diagnostics import Diagnostic
from flowctl.check.walk import flow_steps, iter_leaves
from flowctl.resources import models as m

_UNKNOWN = object()  # a value only known at run time


@dataclass(frozen=True)
class Write:
    flow: str
    step: str
    object: str
    field: str
    value: Any  # _UNKNOWN when templated or not a constant
    path: tuple[str | int, ...]  # YAML path of the written key
    own_record: bool  # written on the triggering record itself


def _writes(ctx: CheckContext, flow: m.Flow) -> Iterator[Write]:
    obj = flow.object
    if obj is None:
        return
    for site in flow_steps(flow):
        step, path = site.step, site.path
        label = site.id or "/".join(map(str, path))
        if isinstance(step, m.UpdateRecord):
            target, own = obj, True
            if step.record is not None:
                if is_dynamic(step.record):
                    continue
                resolved = ctx.resolver.resolve(obj, step.record)
                if resolved.field is None or resolved.field.type != "ref" or not resolved.field.object:
                    continue
                target, own = resolved.field.object, False
            for key, value in step.set.items():
                constant = _UNKNOWN if is_dynamic(value) else value
                yield Write(flow.name, label, target, key, constant, (*path, "set", key), own)
        elif isinstance(step, m.AssignRecord):
            yield Write(flow.name, label, obj, step.field, _UNKNOWN, (*path, "field"), True)
        elif isinstance(step, m.MergeDuplicates) and step.mark:
            for key, value in step.mark.items():
                constant = _UNKNOWN if is_dynamic(value) else value
                yield Write(flow.name, label, obj, key, constant, (*path, "mark", key), True)


def _condition_fields(flow: m.Flow) -> set[str] | None:
    """The fields a flow's entry conditions read (first path segment); None when an `expr` may read anything."""
    if flow.conditions is None:
        return set()
    fields: set[str] = set()
    for leaf, _ in iter_leaves(flow.conditions, ("conditions",)):
        if isinstance(leaf, m.ExprCondition):
            return None
        fields.add(leaf.field.split(".")[0])
    return fields


def _fires(flow: m.Flow, write: Write) -> bool:
    trigger = flow.trigger
    if isinstance(trigger, m.RecordUpdatedTrigger):
        if trigger.fields is not None and write.field not in trigger.fields:
            return False
        if trigger.when_conditions_become_true:
            # It starts only when the entry conditions turn true: a write to a
            # field they do not read cannot turn them.
            read = _condition_fields(flow)
            return read is None or write.field in read
        return True
    if isinstance(trigger, m.FieldChangedTrigger):
        if trigger.field != write.field:
            return False
        if trigger.has_to and write.value is not _UNKNOWN and not is_dynamic(trigger.to):
            return bool(write.value == trigger.to)
        return True
    return False


def _trigger_text(trigger: Any) -> str:
    if isinstance(trigger, m.FieldChangedTrigger):
        return f"field_changed on {trigger.field}"
    if isinstance(trigger, m.RecordUpdatedTrigger):
        return "record_updated" + (f" on {', '.join(trigger.fields)}" if trigger.fields else "")
    return str(trigger.type)


def check_cross_flow(ctx: CheckContext) -> Iterator[Diagnostic]:
    flows = {n: f for n, f in ctx.project.flows.items() if f.enabled and f.object is not None}
    writes = {name: list(_writes(ctx, flow)) for name, flow in flows.items()}
    yield from _trigger_cycles(ctx, flows, writes)
    yield from _write_conflicts(ctx, flows, writes)


def _trigger_cycles(
    ctx: CheckContext, flows: dict[str, m.Flow], writes: dict[str, list[Write]]
) -> Iterator[Diagnostic]:
    # Index the update triggers: (object, field) → flows, plus (object, None) for "any field".
    by_field: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for name, flow in flows.items():
        trig = flow.trigger
        if flow.reentry == "never" or flow.object is None:
            continue
        if isinstance(trig, m.RecordUpdatedTrigger):
            watched: list[str | None] = list(trig.fields) if trig.fields else [None]
            for fld in watched:
                by_field[(flow.object, fld)].append(name)
        elif isinstance(trig, m.FieldChangedTrigger):
            by_field[(flow.object, trig.field)].append(name)

    edges: dict[str, dict[str, Write]] = defaultdict(dict)
    for name, ws in writes.items():
        for w in ws:
            for target in (*by_field.get((w.object, w.field), ()), *by_field.get((w.object, None), ())):
                if target not in edges[name] and _fires(flows[target], w):
                    edges[name][target] = w
    succ = {name: list(targets) for name, targets in edges.items()}
    for component in cyclic_components(sorted(flows), succ):
        members = set(component)
        order = _cycle_order(component, succ, members)
        chain = " → ".join([*order, order[0]])
        for name in component:
            nxt = next(t for t in succ.get(name, ()) if t in members)
            w = edges[name][nxt]
            if len(component) == 1:
                summary = f"flow '{name}' triggers itself: step '{w.step}' sets {w.field}, which fires its own trigger"
            else:
                summary = f"flows trigger each other in a loop: {chain}"
            yield ctx.diag(
                ctx.owner("flow", name),
                ("trigger",),
                "flow-trigger-cycle",
                summary,
                detail=f"step '{w.step}' of '{name}' sets {w.object}.{w.field}, which fires '{nxt}' "
                f"({_trigger_text(flows[nxt].trigger)})",
                hint="narrow a trigger (record_updated `fields`, field_changed `to`), "
                "use when_conditions_become_true, or set `reentry: never` on one of them",
            )


def _cycle_order(component: list[str], succ: dict[str, list[str]], members: set[str]) -> list[str]:
    """One loop through the component, for the message: follow edges from the first flow until it repeats."""
    order = [sorted(component)[0]]
    while True:
        nxt = next((t for t in sorted(succ.get(order[-1], ())) if t in members), order[0])
        if nxt in order:
            return order
        order.append(nxt)


def _write_conflicts(
    ctx: CheckContext, flows: dict[str, m.Flow], writes: dict[str, list[Write]]
) -> Iterator[Diagnostic]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, flow in flows.items():
        signature = json.dumps(
            flow.trigger.model_dump(mode="json", by_alias=True, exclude_unset=True), sort_keys=True
        )
        groups[(flow.object or "", signature)].append(name)
    for (obj, _), names in groups.items():
        if len(names) < 2:
            continue
        # field → value (as JSON) → the writes of it
        values: dict[str, dict[str, list[Write]]] = defaultdict(lambda: defaultdict(list))
        for name in names:
            for w in writes[name]:
                if w.own_record and w.value is not _UNKNOWN:
                    values[w.field][json.dumps(w.value, sort_keys=True, default=str)].append(w)
        for fld, by_value in values.items():
            if len(by_value) < 2 or len({w.flow for ws in by_value.values() for w in ws}) < 2:
                continue
            for value_json, ws in by_value.items():
                others = [
                    f"'{o.flow}' sets {json.loads(v)!r}"
                    for v, ows in by_value.items()
                    if v != value_json
                    for o in ows
                    if o.flow != ws[0].flow
                ]
                if not others:
                    continue
                for w in ws:
                    yield ctx.diag(
                        ctx.owner("flow", w.flow),
                        w.path,
                        "field-write-conflict",
                        f"'{w.flow}' sets {obj}.{fld} to {json.loads(value_json)!r}, but "
                        + "; ".join(others)
                        + " on the same trigger",
                        hint="the flow that runs last wins; merge the flows or give them exclusive entry conditions",
                        severity="warning",
                    )
