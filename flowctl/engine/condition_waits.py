"""The index of runs waiting `until_condition`, by every record their condition reads.

A condition may read through reference fields (`account.status` on a contact,
SPEC §1/§3), so a waiting run must be re-checked when the account changes, not
only when the contact does. When a run starts waiting, `reads_of` resolves the
condition's dotted paths with the record's current reference values and
`register` files the run under each (object, id) it reads, its own record
always included. Two kv namespaces hold the index, so it survives a runner
restart and reads the same on both stores:

- `condition_waits`: "object:id" → run ids waiting on a condition that reads that record;
- `condition_reads`: run id → the "object:id" keys that run is filed under, so a wait
  that ends (`unregister`) leaves no entry behind on a related record that may
  never change again, and a run whose reference now points elsewhere
  (`register` again) moves to the new record.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flowctl.engine.context import ref_id
from flowctl.engine.runtime import Runtime
from flowctl.engine.state import Record
from flowctl.lang.conditions import fields_in
from flowctl.lang.template_analysis import analyze, analyze_expression
from flowctl.lang.templates import is_templated
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import AllCondition, AnyCondition, ExprCondition, NotCondition

WAITS = "condition_waits"
READS = "condition_reads"


def record_key(object_name: str, record_id: str) -> str:
    return f"{object_name}:{record_id}"


def reads_of(rt: Runtime, bundle: TypedBundle, record: Record, condition: Any) -> list[str]:
    """The keys of the records `condition` reads on `record`: the record itself, then each one reached by a ref."""
    keys = [record_key(record.object, record.id)]
    for path in _paths_read(condition):
        current: Record | None = record
        for part in path.split(".")[:-1]:
            if current is None:
                break
            fdef = (rt.fields_of(bundle, current.object) or {}).get(part)
            rid = ref_id(current.fields.get(part))
            if fdef is None or fdef.type != "ref" or not fdef.object or rid is None:
                break
            # Filed even when the store does not hold the record yet: its creation must wake the run too.
            key = record_key(fdef.object, rid)
            if key not in keys:
                keys.append(key)
            current = rt.store.get_record(fdef.object, rid)
    return keys


def _paths_read(condition: Any) -> Iterator[str]:
    """Dotted record paths a condition reads: leaf fields, and `record.…` in expressions and templated values."""
    for path, leaf in fields_in(condition):
        yield path
        for value in leaf.value if isinstance(leaf.value, list) else [leaf.value]:
            if isinstance(value, str) and is_templated(value):
                yield from _record_paths(analyze(value).variables)
    yield from _expr_paths(condition)


def _expr_paths(node: Any) -> Iterator[str]:
    if isinstance(node, AllCondition):
        for member in node.all:
            yield from _expr_paths(member)
    elif isinstance(node, AnyCondition):
        for member in node.any:
            yield from _expr_paths(member)
    elif isinstance(node, NotCondition):
        yield from _expr_paths(node.not_)
    elif isinstance(node, ExprCondition):
        yield from _record_paths(analyze_expression(node.expr).variables)


def _record_paths(variables: Any) -> Iterator[str]:
    for use in variables:
        if use.root == "record" and len(use.attrs) > 1:
            yield ".".join(use.attrs)


def register(rt: Runtime, run_id: str, keys: list[str]) -> None:
    """File `run_id` under exactly `keys`: added where new, removed where its condition no longer reads."""
    old: list[str] = rt.store.kv_get(READS, run_id) or []
    if old == keys:
        return
    for key in old:
        if key not in keys:
            _remove(rt, key, run_id)
    for key in keys:
        waiting: list[str] = rt.store.kv_get(WAITS, key) or []
        if run_id not in waiting:
            rt.store.kv_put(WAITS, key, [*waiting, run_id])
    rt.store.kv_put(READS, run_id, keys)


def unregister(rt: Runtime, run_id: str) -> None:
    """The run's condition wait ended: take it out of every record's list."""
    for key in rt.store.kv_get(READS, run_id) or []:
        _remove(rt, key, run_id)
    rt.store.kv_delete(READS, run_id)


def waiting_on(rt: Runtime, object_name: str, record_id: str) -> list[str]:
    """The runs whose waiting condition reads this record, in the order they began waiting on it."""
    return list(rt.store.kv_get(WAITS, record_key(object_name, record_id)) or [])


def prune(rt: Runtime, object_name: str, record_id: str, still_waiting: Any) -> None:
    """Drop ids `still_waiting(run_id)` rejects (entries written before `condition_reads` existed)."""
    key = record_key(object_name, record_id)
    current: list[str] = rt.store.kv_get(WAITS, key) or []
    kept = [run_id for run_id in current if still_waiting(run_id)]
    if kept == current:
        return
    if kept:
        rt.store.kv_put(WAITS, key, kept)
    else:
        rt.store.kv_delete(WAITS, key)


def _remove(rt: Runtime, key: str, run_id: str) -> None:
    waiting: list[str] = rt.store.kv_get(WAITS, key) or []
    if run_id not in waiting:
        return
    rest = [r for r in waiting if r != run_id]
    if rest:
        rt.store.kv_put(WAITS, key, rest)
    else:
        rt.store.kv_delete(WAITS, key)
