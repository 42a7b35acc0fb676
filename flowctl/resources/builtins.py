"""Objects the runner always knows (SPEC §2). A project may add fields to them."""

from __future__ import annotations

from flowctl.resources.models import FieldDef, FieldType, ObjectSchema

# Every record has these, whatever its object.
SYSTEM_FIELDS: dict[str, FieldDef] = {
    "id": FieldDef(type="string"),
    "created_at": FieldDef(type="datetime"),
    "updated_at": FieldDef(type="datetime"),
}


def _obj(name: str, /, **fields: FieldType | FieldDef) -> ObjectSchema:
    """A built-in object; a field given by its type name alone has no other settings."""
    defs = {key: FieldDef(type=value) if isinstance(value, str) else value for key, value in fields.items()}
    return ObjectSchema(kind="object", name=name, fields=defs)


BUILTIN_OBJECTS: dict[str, ObjectSchema] = {
    "user": _obj(
        "user",
        name="string",
        email="email",
        phone="phone",
        role="string",
        teams=FieldDef(type="list", items="string"),
    ),
    "task": _obj(
        "task",
        subject="string",
        description="text",
        status="string",
        priority="string",
        assignee=FieldDef(type="ref", object="user"),
        due_at="datetime",
        related_to="string",
        attachments_required=FieldDef(type="list", items="string"),
        decision="string",
    ),
    "event": _obj(
        "event",
        subject="string",
        start="datetime",
        end="datetime",
        location="string",
        attendees=FieldDef(type="list", items="string"),
    ),
    "note": _obj("note", body="text", related_to="string"),
}


def merged_objects(defined: dict[str, ObjectSchema]) -> dict[str, ObjectSchema]:
    """Built-in objects plus the project's; a project object named like a built-in adds fields to it."""
    merged = dict(BUILTIN_OBJECTS)
    for name, obj in defined.items():
        if name in BUILTIN_OBJECTS:
            merged[name] = obj.model_copy(update={"fields": {**BUILTIN_OBJECTS[name].fields, **obj.fields}})
        else:
            merged[name] = obj
    return merged


def object_fields(objects: dict[str, ObjectSchema], object_name: str) -> dict[str, FieldDef] | None:
    """Every field a record of this object has, system fields included; None for an unknown object."""
    obj = objects.get(object_name)
    if obj is None:
        return None
    return {**SYSTEM_FIELDS, **obj.fields}
