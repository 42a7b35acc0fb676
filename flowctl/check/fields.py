"""Resolving field paths against the object schemas: `account.industry` on a contact.

A dotted path follows ref fields (`contact.account` is a ref to `account`,
which has `industry`). Every record also has the system fields (id,
created_at, updated_at), and the built-in objects (user, task, event, note)
are always known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowctl.check.suggest import did_you_mean
from flowctl.resources.models import FieldDef, ObjectSchema
from flowctl.resources.project import Project


@dataclass(frozen=True)
class FieldProblem:
    code: str  # unknown-field | field-not-a-ref
    summary: str
    hint: str | None


@dataclass(frozen=True)
class Resolved:
    """The field a path names (None when it cannot be typed), or the problem with the path."""

    field: FieldDef | None = None
    object: str | None = None  # the object owning the final field
    problem: FieldProblem | None = None


class FieldResolver:
    """Field lookups for one project, cached: a repository asks for the same paths many times."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.objects: dict[str, ObjectSchema] = project.objects
        self._fields: dict[str, dict[str, FieldDef] | None] = {}
        self._cache: dict[tuple[str, tuple[str, ...], bool], Resolved] = {}

    def fields(self, object_name: str) -> dict[str, FieldDef] | None:
        if object_name not in self._fields:
            self._fields[object_name] = self.project.object_fields(object_name)
        return self._fields[object_name]

    def has_object(self, object_name: str) -> bool:
        return object_name in self.objects

    def resolve(
        self, object_name: str, path: str | Sequence[str], *, beyond_values: bool = False
    ) -> Resolved:
        """Resolve `path` (dotted or split) on `object_name`.

        `beyond_values` lets a path continue past a non-ref field (template
        code calls methods and indexes lists: `record.name.upper()`); the
        field reached last is returned.
        """
        parts = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
        key = (object_name, parts, beyond_values)
        if key not in self._cache:
            self._cache[key] = self._resolve(object_name, parts, beyond_values)
        return self._cache[key]

    def _resolve(self, object_name: str, parts: tuple[str, ...], beyond_values: bool) -> Resolved:
        current = object_name
        via = object_name
        for i, seg in enumerate(parts):
            fields = self.fields(current)
            if fields is None:
                # An unknown object is reported where it is named; nothing more to say here.
                return Resolved()
            fdef = fields.get(seg)
            if fdef is None:
                owner = current if i == 0 else f"{current} (via {via})"
                return Resolved(
                    problem=FieldProblem(
                        "unknown-field",
                        f"{owner} has no field '{seg}'",
                        did_you_mean(seg, fields) or f"fields of {current}: {', '.join(sorted(fields))}",
                    )
                )
            if i == len(parts) - 1:
                return Resolved(field=fdef, object=current)
            if fdef.type == "ref" and fdef.object:
                via = f"{via}.{seg}"
                current = fdef.object
                continue
            if beyond_values:
                return Resolved(field=fdef, object=current)
            return Resolved(
                problem=FieldProblem(
                    "field-not-a-ref",
                    f"'{'.'.join(parts[: i + 1])}' is a field of type {fdef.type}, not a ref; "
                    f"'{'.'.join(parts)}' cannot follow it",
                    "only ref fields lead to another record (e.g. account.industry where account is a ref)",
                )
            )
        return Resolved()


def value_problem(fdef: FieldDef, value: object) -> FieldProblem | None:
    """A constant that cannot be a value of this field (a misspelt enum value, "yes" for a boolean)."""
    if value is None or (isinstance(value, str) and ("{{" in value or "{%" in value)):
        return None  # null is always allowed (§10.1); templated values are known at run time
    if fdef.type == "enum" and fdef.values:
        text = value if isinstance(value, str) else (str(value) if isinstance(value, int | float) else None)
        if isinstance(value, bool) or text is None or text not in fdef.values:
            return FieldProblem(
                "bad-enum-value",
                f"{value!r} is not a value of this enum ({', '.join(fdef.values)})",
                did_you_mean(value, fdef.values) or f"allowed values: {', '.join(fdef.values)}",
            )
    elif fdef.type == "boolean" and not isinstance(value, bool):
        return FieldProblem("value-type-mismatch", f"{value!r} is not a boolean", "write true or false")
    elif fdef.type in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return FieldProblem(
                "value-type-mismatch",
                f"{value!r} is not a number",
                "write the number without quotes, e.g. 10000",
            )
        if fdef.type == "integer" and isinstance(value, float) and not value.is_integer():
            return FieldProblem("value-type-mismatch", f"{value!r} is not an integer", "write a whole number")
    return None
