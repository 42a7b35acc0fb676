"""Resource-level and field-level differences between two bundles.

Resources are matched by kind and name. Inside a resource, mappings are
compared key by key and lists of mappings by a stable key when every item
has one (`id` for steps, `user` for team members, ...), so inserting a step
reports one added step instead of every later step as changed. Values compare
as JSON (so `1` and `true`, equal in Python, differ here as they do in YAML).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from flowctl.resources.bundle import BUNDLE_KINDS, Bundle

Change = Literal["added", "changed", "removed"]

# Keys that identify an item of a list of mappings, tried in this order.
_LIST_KEYS = ("id", "user", "name", "template", "date")
# Keys every resource has; they are the resource's identity, not a field.
_IDENTITY_KEYS = ("kind", "name")


class FieldChange(BaseModel):
    """One changed value inside a resource. `path` is dotted; list items by key (`steps[welcome]`) or index."""

    path: str
    change: Change
    before: Any = None
    after: Any = None


class ResourceDiff(BaseModel):
    kind: str
    name: str
    change: Change
    fields: list[FieldChange] = Field(default_factory=list)


class DiffCounts(BaseModel):
    added: int = 0
    changed: int = 0
    removed: int = 0


class BundleDiff(BaseModel):
    resources: list[ResourceDiff] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.resources

    def counts(self) -> DiffCounts:
        out = DiffCounts()
        for r in self.resources:
            setattr(out, r.change, getattr(out, r.change) + 1)
        return out


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _key_segment(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def _join(path: str, key: str) -> str:
    seg = _key_segment(str(key))
    return f"{path}.{seg}" if path else seg


def _list_key(before: list[Any], after: list[Any]) -> str | None:
    """The key that identifies every item of both lists, if there is one."""
    items = before + after
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _LIST_KEYS:
        if not all(key in i and isinstance(i[key], str | int) for i in items):
            continue
        if len({str(i[key]) for i in before}) == len(before) and len({str(i[key]) for i in after}) == len(after):
            return key
    return None


def diff_values(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """Field-level changes turning `before` into `after`."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldChange] = []
        for key, value in after.items():
            sub = _join(path, key)
            if key not in before:
                out.append(FieldChange(path=sub, change="added", after=value))
            else:
                out.extend(diff_values(before[key], value, sub))
        for key, value in before.items():
            if key not in after:
                out.append(FieldChange(path=_join(path, key), change="removed", before=value))
        return out
    if isinstance(before, list) and isinstance(after, list) and not _same(before, after):
        key = _list_key(before, after)
        if key is not None:
            return _diff_keyed(before, after, key, path)
        if all(isinstance(i, dict | list) for i in before + after) and before and after:
            return _diff_indexed(before, after, path)
    if _same(before, after):
        return []
    return [FieldChange(path=path, change="changed", before=before, after=after)]


def _diff_keyed(before: list[dict[str, Any]], after: list[dict[str, Any]], key: str, path: str) -> list[FieldChange]:
    old = {str(i[key]): i for i in before}
    new = {str(i[key]): i for i in after}
    out: list[FieldChange] = []
    for k, item in new.items():
        sub = f"{path}[{k}]"
        if k not in old:
            out.append(FieldChange(path=sub, change="added", after=item))
        else:
            out.extend(diff_values(old[k], item, sub))
    for k, item in old.items():
        if k not in new:
            out.append(FieldChange(path=f"{path}[{k}]", change="removed", before=item))
    # Reordering changes behaviour (steps run in order), so it is a change of its own.
    kept_old = [k for k in old if k in new]
    kept_new = [k for k in new if k in old]
    if kept_old != kept_new:
        out.append(FieldChange(path=f"{path} (order)", change="changed", before=kept_old, after=kept_new))
    return out


def _diff_indexed(before: list[Any], after: list[Any], path: str) -> list[FieldChange]:
    out: list[FieldChange] = []
    for i in range(max(len(before), len(after))):
        sub = f"{path}[{i}]"
        if i >= len(before):
            out.append(FieldChange(path=sub, change="added", after=after[i]))
        elif i >= len(after):
            out.append(FieldChange(path=sub, change="removed", before=before[i]))
        else:
            out.extend(diff_values(before[i], after[i], sub))
    return out


def _resource_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in _IDENTITY_KEYS}


def _whole(data: dict[str, Any], change: Change) -> list[FieldChange]:
    """The fields of a resource that is added or removed as a whole; keyed lists item by item (one line per step)."""
    out: list[FieldChange] = []
    for key, value in _resource_fields(data).items():
        seg = _key_segment(key)
        items_key = _list_key(value, []) if isinstance(value, list) else None
        pairs = [(seg, value)] if items_key is None else [(f"{seg}[{item[items_key]}]", item) for item in value]
        for path, v in pairs:
            if change == "added":
                out.append(FieldChange(path=path, change=change, after=v))
            else:
                out.append(FieldChange(path=path, change=change, before=v))
    return out


def diff_bundles(before: Bundle, after: Bundle) -> BundleDiff:
    """What changes, resource by resource (kinds in bundle order, names sorted), turning `before` into `after`."""
    kinds = [k for k in BUNDLE_KINDS] + sorted(
        (set(before.resources) | set(after.resources)) - set(BUNDLE_KINDS)
    )
    out: list[ResourceDiff] = []
    for kind in kinds:
        old = before.resources.get(kind, {})
        new = after.resources.get(kind, {})
        for name in sorted(set(old) | set(new)):
            if name not in old:
                out.append(ResourceDiff(kind=kind, name=name, change="added", fields=_whole(new[name], "added")))
            elif name not in new:
                out.append(ResourceDiff(kind=kind, name=name, change="removed", fields=_whole(old[name], "removed")))
            else:
                fields = diff_values(_resource_fields(old[name]), _resource_fields(new[name]))
                if fields:
                    out.append(ResourceDiff(kind=kind, name=name, change="changed", fields=fields))
    return BundleDiff(resources=out)
