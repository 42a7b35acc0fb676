"""Showing a simulation: a readable step-by-step trace, and its JSON document (format_version 1).

The text is one line per thing that happened, prefixed with its virtual time
(UTC), with indented detail lines for messages and record changes. The JSON
layout is documented in docs/formats/trace-json.md and is stable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.markup import escape

from flowctl.engine.state import TraceEntry
from flowctl.sim.simulate import SimulationResult

FORMAT_VERSION = 1

_STYLE = {"✓": "green", "✗": "red", "↻": "yellow", "⊘": "yellow", "⚠": "bold red", "⏸": "cyan", "–": "dim",
          "▶": "bold", "■": "bold", "●": "blue", "⏲": "cyan", "☐": "magenta", "✉": "red", "⏱": "cyan"}


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short_time(text: str | None) -> str:
    if not text:
        return "?"
    try:
        return _time(dt.datetime.fromisoformat(text))
    except ValueError:
        return text


def _val(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_val(v) for v in value) + "]"
    return str(value)


def _message_line(d: dict[str, Any]) -> str | None:
    channel = d.get("channel")
    if not channel:
        return None
    to = ", ".join(d.get("to") or [])
    if channel == "webhook":
        line = f"webhook {d.get('request', '')}"
    elif channel == "notification":
        line = f"notification to {to}"
    else:
        line = f"{channel} to {to}"
    if d.get("subject"):
        line += f': "{d["subject"]}"'
    if d.get("template") and channel == "whatsapp":
        line += f" (template {d['template']})"
    if d.get("variant"):
        line += f" [variant {d['variant']}]"
    if d.get("first_line"):
        line += f" — {d['first_line']}"
    return line


def describe(e: TraceEntry) -> tuple[str, str, list[str]] | None:
    """(symbol, headline, detail lines) for one trace entry; None for entries the text view leaves out."""
    d = e.detail
    step = e.step or ""
    action = d.get("action", "")
    attempt = f" attempt {e.attempt}" if e.attempt and e.attempt > 1 else ""
    if e.kind == "run":
        if e.status == "started":
            record = f" on {d['record']}" if d.get("record") else ""
            parent = f", called by {d['parent']}" if d.get("parent") else ""
            late = " (late)" if d.get("late") else ""
            return "▶", f"{e.run_id} started: {e.flow}{record} (trigger {d.get('trigger')}{parent}){late}", []
        if e.status == "retried":
            return "↻", f"{e.run_id} retried from step {d.get('step')}", []
        outcome = f" (outcome {d['outcome']})" if d.get("outcome") else ""
        error = [f"error: {d['error_class']}: {d['error']}"] if d.get("error") else []
        return "■", f"{e.run_id} {e.status}{outcome}", error
    if e.kind == "step":
        if e.status == "sending":
            return None  # the succeeded/failed line that follows shows the message
        if e.status == "succeeded":
            extra: list[str] = []
            head = f"{step} ({action}){attempt}"
            msg = _message_line(d)
            if msg:
                extra.append(msg)
            if d.get("branch") is not None:
                head += f" → {d['branch']}"
            if d.get("goto"):
                head += f" → {d['goto']}"
            if d.get("assignee"):
                head += f" → {d['assignee']} ({d.get('rule')})"
            if d.get("task") and action == "create_task":
                head += f" → {d['task']}"
            if d.get("child"):
                head += f" → {d['child']}" + (f" {d['child_status']}" if d.get("child_status") else "")
            if d.get("decision"):
                head += f" → {d['decision']}" + (f" by {d['approver']}" if d.get("approver") else "")
            if action == "wait":
                head += " woke" if d.get("woke_at") else (" condition met" if d.get("condition") else "")
            if action == "log" and d.get("message"):
                extra.append(f'log: "{d["message"]}"')
            if e.detail.get("reason") == "no_consent":
                return "–", f"{step} ({action}) skipped: no consent → fallback", []
            return "✓", head, extra
        if e.status == "skipped":
            return "–", f"{step} ({action}) skipped: {d.get('reason')}", []
        if e.status == "waiting":
            what = d.get("waiting_for")
            if what in ("timer", "retry") and d.get("until"):
                return "⏸", f"{step} ({action}) waiting until {_short_time(d.get('until'))}", []
            if what == "task":
                tasks = ", ".join(d.get("tasks") or [])
                until = f", timeout {_short_time(d.get('until'))}" if d.get("until") else ""
                return "⏸", f"{step} ({action}) waiting for {tasks}{until}", []
            if what == "condition":
                until = f" (timeout {_short_time(d.get('until'))})" if d.get("until") else ""
                return "⏸", f"{step} (wait) waiting for its condition{until}", []
            if what == "child_run":
                return "⏸", f"{step} (call_flow) waiting for {d.get('child')}", []
            return "⏸", f"{step} ({action}) waiting", []
        if e.status == "retrying":
            return ("↻", f"{step} ({action}) attempt {e.attempt} failed: {d.get('error_class')}; "
                    f"retry at {_short_time(d.get('next_attempt_at'))}", [])
        if e.status == "failed":
            return "✗", f"{step} ({action}) failed{attempt}: {d.get('error_class')}: {d.get('error')}", []
        if e.status == "compensated":
            return "✓", f"{step} ({action}) compensated by {d.get('by') or 'someone'} ({d.get('task')})", []
        return "·", f"{step} {e.status}", []
    if e.kind == "record":
        where = f"{d.get('object')}/{d.get('record')}"
        if e.status == "updated":
            changes = d.get("changes") or {}
            lines = [f"{k}: {_val(v[0])} → {_val(v[1])}" for k, v in changes.items()]
            return "·", f"record {where} updated", lines
        return "·", f"record {where} {e.status}", []
    if e.kind == "task":
        who = f" for {d['assignee']}" if d.get("assignee") else ""
        if e.status == "created":
            subject = f': "{d["subject"]}"' if d.get("subject") else ""
            due = f", due {_short_time(d.get('due_at'))}" if d.get("due_at") else ""
            return "☐", f"task {d.get('task')} created{subject}{who}{due}", []
        if e.status == "completed":
            by = f" by {d['by']}" if d.get("by") else ""
            return "☐", f"task {d.get('task')} completed: {d.get('decision')}{by}", []
        return "☐", f"task {d.get('task')} {e.status}", []
    if e.kind == "message":
        if e.status == "failed":
            return "✉", f"{step}: {d.get('channel')} delivery failed{attempt}: {d.get('error_class')}", []
        return None
    if e.kind == "suppressed":
        extra_info = ""
        if d.get("reason") == "dedupe":
            extra_info = f" (window until {_short_time(d.get('window_ends'))})"
        elif d.get("reason") == "reentry":
            extra_info = f" (reentry {d.get('policy')}, last run {_short_time(d.get('last_started'))})"
        elif d.get("reason") == "conditions" and d.get("why"):
            extra_info = f" ({d['why']})"
        record = f" for {d['record']}" if d.get("record") else ""
        return "⊘", f"{e.flow} not started{record}: {d.get('reason')}{extra_info}", []
    if e.kind == "timer":
        if e.status == "late":
            return "⚠", f"timer {d.get('timer')} fired late (due {_short_time(d.get('due_at'))})", []
        return None  # the waiting line shows the time
    if e.kind == "date_plan":
        planned = d.get("record")
        if e.status == "dropped":
            return "⏲", f"{e.flow}: planned start for {planned} dropped ({d.get('field')} empty or past)", []
        return "⏲", f"{e.flow}: start for {planned} {e.status} at {_short_time(d.get('due_at'))}", []
    if e.kind == "event":
        if e.status == "activated":
            return None
        what = d.get("name") or e.status
        record = f" {d['object']}/{d['record']}" if d.get("record") and d.get("object") else ""
        return "●", f"event {what}{record}", []
    if e.kind == "loop_guard":
        return "⚠", f"loop guard: {d.get('reason') or 'chain too deep'} (depth {d.get('depth')})", []
    if e.kind == "sla":
        return _sla_line(e)
    if e.kind == "error":
        return "⚠", f"{d.get('reason') or d.get('error') or e.status}", []
    return None


def _sla_line(e: TraceEntry) -> tuple[str, str, list[str]]:
    """An SLA clock transition (flowctl.engine.sla_clocks): what happened and the due time it leads to."""
    d = e.detail
    head = f"SLA {d.get('clock')} ({d.get('policy')}) on {d.get('record')}"
    due = f"due {_short_time(d.get('due_at'))}" if d.get("due_at") else "no due time while paused"
    progress = ""
    if d.get("elapsed"):
        left = f"{d['overdue']} overdue" if d.get("overdue") else f"{d.get('remaining')} left"
        progress = f"{d['elapsed']} elapsed, {left}"
    late = " (late)" if d.get("late") else ""
    status = e.status
    if status == "started":
        return "⏱", f"{head} started: target {d.get('target')}, {due}", []
    if status == "paused":
        return "⏱", f"{head} paused: {progress}", []
    if status == "resumed":
        return "⏱", f"{head} resumed: {progress}, {due}", []
    if status == "retargeted":
        return "⏱", f"{head} re-targeted {d.get('previous')} → {d.get('target')}: {progress}, {due}", []
    if status == "warned":
        return "⏱", f"{head} warning: {due}{late}", []
    if status == "breached":
        return "⚠", f"{head} breached: target {d.get('target')} missed, {due}{late}", [str(d.get("reason"))]
    if status == "escalated":
        return "⚠", f"{head} escalation {d.get('level')}: {progress}{late}", [str(d.get("reason"))]
    if status == "stopped":
        breached = ", breached" if d.get("breached") else ", met"
        return "⏱", f"{head} stopped: {progress}{breached}", []
    if status == "cancelled":
        return "⏱", f"{head} cancelled: {d.get('reason')}", []
    if status == "reverted":
        return "⏱", f"{head} breach reverted by {d.get('by') or 'an operator'}", []
    return "⏱", f"{head} {status}", []


def trace_lines(result: SimulationResult) -> list[tuple[str, str]]:
    """(style, text) lines of the text view, without colour codes."""
    record = f" on {result.record.object} {result.record.id}" if result.record else ""
    span = result.end_at - result.start_at
    lines: list[tuple[str, str]] = [
        ("bold", f"Simulating {result.flow}{record} ({result.event}) from {_time(result.start_at)} UTC "
                 f"for {_span(span)}"),
        ("", ""),
    ]
    for e in result.trace:
        shown = describe(e)
        if shown is None:
            continue
        symbol, head, details = shown
        lines.append((_STYLE.get(symbol, ""), f"{_time(e.at)}  {symbol} {head}"))
        lines.extend(("dim", f"{'':19}      {line}") for line in details)
    lines.append(("", ""))
    lines.append(("bold", summary(result)))
    return lines


def _span(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


def summary(result: SimulationResult) -> str:
    statuses: dict[str, int] = {}
    for run in result.runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    runs = ", ".join(f"{n} {s}" for s, n in statuses.items()) or "none started"
    sent = sum(1 for m in result.messages if m.ok)
    failed = len(result.messages) - sent
    changes = sum(1 for e in result.trace if e.kind == "record" and e.status == "updated")
    parts = [
        f"runs: {runs}",
        f"messages: {sent} sent" + (f", {failed} failed attempt{'s' if failed != 1 else ''}" if failed else ""),
        f"tasks: {len(result.tasks)}",
        f"record updates: {changes}",
    ]
    return "; ".join(parts)


def render_text(result: SimulationResult, console: Console) -> None:
    for style, text in trace_lines(result):
        console.print(f"[{style}]{escape(text)}[/]" if style else escape(text))


# --------------------------------------------------------------------------- JSON


def _iso(at: dt.datetime | None) -> str | None:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if at else None


def trace_json(result: SimulationResult) -> dict[str, Any]:
    record = result.record
    return {
        "format_version": FORMAT_VERSION,
        "flow": result.flow,
        "event": result.event,
        "record": {"object": record.object, "id": record.id} if record else None,
        "start_at": _iso(result.start_at),
        "end_at": _iso(result.end_at),
        "trace": [
            {
                "seq": e.seq,
                "at": _iso(e.at),
                "kind": e.kind,
                "run": e.run_id,
                "flow": e.flow,
                "step": e.step,
                "status": e.status,
                "attempt": e.attempt,
                "detail": e.detail,
            }
            for e in result.trace
        ],
        "runs": [
            {
                "id": r.id,
                "flow": r.flow,
                "version": r.version,
                "record": {"object": r.object, "id": r.record_id} if r.record_id else None,
                "status": r.status,
                "outcome": r.outcome,
                "started_at": _iso(r.started_at),
                "ended_at": _iso(r.ended_at),
                "path": r.path,
                "error": r.error,
                "error_class": r.error_class,
            }
            for r in result.runs
        ],
        "messages": [
            {
                "id": d.message.id,
                "channel": d.message.channel,
                "flow": d.message.flow,
                "step": d.message.step,
                "attempt": d.message.attempt,
                "at": _iso(d.at),
                "ok": d.ok,
                "error_class": d.error_class,
                "to": d.message.to,
                "subject": d.message.subject,
                "template": d.message.template,
                "variant": d.message.variant,
                "text": d.message.text,
                "html": d.message.html,
                "whatsapp": d.message.whatsapp,
                "request": {"method": d.message.method, "url": d.message.url, "body": d.message.body}
                if d.message.channel == "webhook" else None,
                "status": d.status,
            }
            for d in result.messages
        ],
        "tasks": [
            {
                "id": t.id,
                "kind": t.kind,
                "step": t.step,
                "subject": t.subject,
                "assignee": t.assignee,
                "status": t.status,
                "decision": t.decision,
                "due_at": _iso(t.due_at),
                "created_at": _iso(t.created_at),
            }
            for t in result.tasks
        ],
        "record_after": record.as_fields() if record else None,
        "timeline": [{"at": _iso(e.at), "text": e.text, "run": e.run_id, "step": e.step} for e in result.timeline],
    }
