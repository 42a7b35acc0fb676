"""The JSON shapes the runner API answers with (documented in docs/formats/api.md).

Built from the engine's state models; field order is part of the format.
Message bodies are placeholders-only (`⟦secret:NAME⟧`): secrets never reach
the database, so they cannot reach an answer either.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowctl.engine.state import Message, Record, Run, StepAttempt, Task, TimelineEntry, TraceEntry
from flowctl.store.sqlite import BundleVersion


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def bundle_view(row: BundleVersion) -> dict[str, Any]:
    """A bundle version with its content (GET /v1/bundle, GET /v1/bundle/versions/{version})."""
    return {
        "version": row.version,
        "hash": row.hash,
        "bundle": row.data,
        "applied_at": iso(row.applied_at),
        "meta": row.meta,
    }


def run_summary(run: Run) -> dict[str, Any]:
    duration = None
    if run.ended_at is not None:
        duration = round((run.ended_at - run.started_at).total_seconds(), 6)
    return {
        "id": run.id,
        "flow": run.flow,
        "version": run.version,
        "status": run.status,
        "outcome": run.outcome,
        "object": run.object,
        "record_id": run.record_id,
        "step": run.cursor.step if run.cursor else None,
        "waiting_for": run.waiting.kind if run.waiting and run.is_open else None,
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "duration_seconds": duration,
        "error_class": run.error_class,
        "late": run.late,
    }


def attempt_view(attempt: StepAttempt) -> dict[str, Any]:
    return {
        "step": attempt.step,
        "attempt": attempt.attempt,
        "status": attempt.status,
        "reason": attempt.reason,
        "started_at": iso(attempt.started_at),
        "ended_at": iso(attempt.ended_at),
        "output": attempt.output,
        "error": attempt.error,
        "error_class": attempt.error_class,
    }


def message_view(message: Message, *, bodies: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": message.id,
        "idempotency_key": message.idempotency_key,
        "channel": message.channel,
        "status": message.status,
        "run_id": message.run_id,
        "flow": message.flow,
        "step": message.step,
        "attempt": message.attempt,
        "to": message.to,
        "subject": message.subject,
        "template": message.template,
        "url": message.url,
        "created_at": iso(message.created_at),
        "sent_at": iso(message.sent_at),
        "provider_id": message.provider_id,
        "response_status": message.response_status,
        "error": message.error,
        "error_class": message.error_class,
    }
    if bodies:
        out["text"] = message.text
        out["html"] = message.html
    return out


def task_view(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "kind": task.kind,
        "subject": task.subject,
        "status": task.status,
        "decision": task.decision,
        "assignee": task.assignee,
        "approvers": task.approvers,
        "priority": task.priority,
        "due_at": iso(task.due_at),
        "related_to": task.related_to,
        "run_id": task.run_id,
        "flow": task.flow,
        "step": task.step,
        "description": task.description,
        "error": task.error,
        "attachments_required": task.attachments_required,
        "created_at": iso(task.created_at),
        "completed_at": iso(task.completed_at),
        "by": task.by,
        "comment": task.comment,
    }


def trace_view(entry: TraceEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": iso(entry.at),
        "kind": entry.kind,
        "step": entry.step,
        "status": entry.status,
        "attempt": entry.attempt,
        "detail": entry.detail,
    }


def run_detail(
    run: Run, attempts: list[StepAttempt], messages: list[Message], tasks: list[Task], trace: list[TraceEntry]
) -> dict[str, Any]:
    out = run_summary(run)
    out.update(
        {
            "error": run.error,
            "parent_run_id": run.parent_run_id,
            "event_id": run.event_id,
            "compensated": run.compensated,
            "trigger": run.trigger,
            "path": run.path,
            "waiting": run.waiting.model_dump(mode="json") if run.waiting and run.is_open else None,
            "steps": [attempt_view(a) for a in attempts],
            "messages": [message_view(m, bodies=True) for m in messages],
            "tasks": [task_view(t) for t in tasks],
            "trace": [trace_view(e) for e in trace],
        }
    )
    return out


def record_view(record: Record, timeline: list[TimelineEntry]) -> dict[str, Any]:
    return {
        "object": record.object,
        "id": record.id,
        "deleted": record.deleted,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "fields": record.fields,
        "timeline": [
            {"at": iso(e.at), "text": e.text, "run_id": e.run_id, "flow": e.flow, "step": e.step}
            for e in timeline
        ],
    }
