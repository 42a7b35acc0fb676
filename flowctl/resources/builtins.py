"""Objects the runner always knows (SPEC §2). A project may add fields to them."""

from __future__ import annotations

from flowctl.resources.models import FieldDef, ObjectSchema

# Every record has these, whatever its object.
SYSTEM_FIELDS: dict[str, FieldDef] = {
    "id": FieldDef(type="string"),
    "created_at": FieldDef(type="datetime"),
    "updated_at": FieldDef(type="datetime"),
}


def _obj(name: str, fields: dict[str, FieldDef]) -> ObjectSchema:
    return ObjectSchema(kind="object", name=name, fields=fields)


BUILTIN_OBJECTS: dict[str, ObjectSchema] = {
    "user": _obj(
        "user",
        {
            "name": FieldDef(type="string"),
            "email": FieldDef(type="email"),
            "phone": FieldDef(type="phone"),
            "role": FieldDef(type="string"),
            "teams": FieldDef(type="list", items="string"),
        },
    ),
    "task": _obj(
        "task",
        {
            "subject": FieldDef(type="string"),
            "description": FieldDef(type="text"),
            "status": FieldDef(type="string"),
            "priority": FieldDef(type="string"),
            "assignee": FieldDef(type="ref", object="user"),
            "due_at": FieldDef(type="datetime"),
            "related_to": FieldDef(type="string"),
            "attachments_required": FieldDef(type="list", items="string"),
            "decision": FieldDef(type="string"),
        },
    ),
    "event": _obj(
        "event",
        {
            "subject": FieldDef(type="string"),
            "start": FieldDef(type="datetime"),
            "end": FieldDef(type="datetime"),
            "location": FieldDef(type="string"),
            "attendees": FieldDef(type="list", items="string"),
        },
    ),
    "note": _obj("note", {"body": FieldDef(type="text"), "related_to": FieldDef(type="string")}),
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
