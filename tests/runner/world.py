"""Bundles for the runner's tests, written as Python dicts (the JSON a PUT /v1/bundle carries)."""

from __future__ import annotations

import copy
from typing import Any

from flowctl.resources.bundle import Bundle

CONTACT: dict[str, Any] = {
    "kind": "object",
    "name": "contact",
    "fields": {
        "first_name": {"type": "string"},
        "email": {"type": "email"},
        "phone": {"type": "phone"},
        "stage": {"type": "string"},
        "owner": {"type": "ref", "object": "user"},
        "email_opt_out": {"type": "boolean"},
        "note": {"type": "string"},
        "synced": {"type": "boolean"},
        "renewal_at": {"type": "datetime"},
    },
    "consent": {"email": {"field": "email_opt_out", "op": "ne", "value": True}},
}

WELCOME_TEMPLATE: dict[str, Any] = {
    "kind": "template",
    "name": "welcome_email",
    "channel": "email",
    "subject": "Welcome, {{ record.first_name }}!",
    "text": "Hi {{ record.first_name }}, welcome aboard.",
    "html": "<p>Hi {{ record.first_name }}, welcome aboard.</p>",
}

WELCOME: dict[str, Any] = {
    "kind": "flow",
    "name": "welcome",
    "object": "contact",
    "trigger": {"type": "record_created"},
    "conditions": {"field": "email", "op": "is_set"},
    "steps": [
        {
            "id": "welcome",
            "action": "send_email",
            "to": "{{ record.email }}",
            "template": "welcome_email",
            "retry": {"attempts": 3, "delay": "1s"},
        },
        {
            "id": "onboarding",
            "action": "create_task",
            "subject": "Onboarding call with {{ record.first_name }}",
            "assignee": "li.lei",
            "due": "2d",
        },
    ],
}

# A wait, then an email: for timers that must survive a restart.
FOLLOW_UP: dict[str, Any] = {
    "kind": "flow",
    "name": "follow-up",
    "object": "contact",
    "trigger": {"type": "field_changed", "field": "stage", "to": "customer"},
    "steps": [
        {"id": "pause", "wait": {"for": "2s"}},
        {
            "id": "check_in",
            "action": "send_email",
            "to": "{{ record.email }}",
            "subject": "How is it going?",
            "text": "Hi {{ record.first_name }}, how is it going?",
        },
    ],
}

# Three steps, no external I/O: the benchmark's flow.
TOUCH: dict[str, Any] = {
    "kind": "flow",
    "name": "touch",
    "object": "contact",
    "trigger": {"type": "event", "name": "touch"},
    "steps": [
        {"id": "mark", "action": "update_record", "set": {"note": "touched"}},
        {"id": "say", "action": "log", "message": "touched {{ record.id }}"},
        {"id": "todo", "action": "create_task", "subject": "Follow up {{ record.id }}", "assignee": "li.lei"},
    ],
}

# Waits a week: the benchmark's memory figure with many waiting runs.
PARKED: dict[str, Any] = {
    "kind": "flow",
    "name": "parked",
    "object": "contact",
    "trigger": {"type": "event", "name": "park"},
    "steps": [{"id": "sleep", "wait": {"for": "7d"}}, {"id": "wake", "action": "log", "message": "awake"}],
}

APPROVAL: dict[str, Any] = {
    "kind": "flow",
    "name": "discount-approval",
    "object": "contact",
    "trigger": {"type": "event", "name": "discount.requested"},
    "steps": [
        {
            "id": "approve",
            "action": "approval",
            "title": "Discount for {{ record.first_name }}",
            "approvers": ["wang.fang"],
        },
        {"id": "done", "action": "update_record", "set": {"stage": "discounted"}},
    ],
}


def erp_sync(url: str) -> dict[str, Any]:
    """A webhook retried 3 times, then a compensation task."""
    return {
        "kind": "flow",
        "name": "erp-sync",
        "object": "contact",
        "trigger": {"type": "event", "name": "erp.sync"},
        "steps": [
            {
                "id": "push",
                "action": "webhook",
                "url": url,
                "method": "POST",
                "body": {"id": "{{ record.id }}", "email": "{{ record.email }}"},
                "retry": {"attempts": 3, "delay": "1s"},
                "timeout": "2s",
                "on_failure": "compensate",
            },
            {"id": "mark", "action": "update_record", "set": {"synced": True}},
        ],
    }


def bundle(*resources: dict[str, Any], project: str = "runner-tests") -> Bundle:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for res in resources:
        out.setdefault(res["kind"], {})[res["name"]] = copy.deepcopy(res)
    return Bundle(project=project, resources=out)


def standard_bundle(webhook_url: str = "http://127.0.0.1:9/unused") -> Bundle:
    return bundle(
        CONTACT, WELCOME_TEMPLATE, WELCOME, FOLLOW_UP, TOUCH, PARKED, APPROVAL, erp_sync(webhook_url)
    )


def contact_created(cid: str, *, key: str | None = None, **fields: Any) -> dict[str, Any]:
    record = {
        "id": cid,
        "first_name": fields.pop("first_name", cid.title()),
        "email": f"{cid}@example.com",
        **fields,
    }
    event: dict[str, Any] = {"type": "record_created", "object": "contact", "record": record}
    if key:
        event["idempotency_key"] = key
    return event


def custom(name: str, cid: str, **data: Any) -> dict[str, Any]:
    return {"type": "event", "name": name, "object": "contact", "record": {"id": cid}, "data": data}
