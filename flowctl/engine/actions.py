"""Action steps (SPEC §3 step table): what each `action:` does.

Each handler takes a `StepContext` and returns an `Outcome`; raising
`StepError` fails the step with its error class. Handlers never advance the
run themselves: `flowctl.engine.runs` applies the outcome (next step, wait,
retry, on_failure).

Outbound actions (email, sms, whatsapp, notify, webhook) write an outbox
`Message` and wait for the shell's delivery report; their timeline line is
written when the message is sent (`on_sent`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flowctl.engine import assignment
from flowctl.engine.context import parse_instant, ref_id
from flowctl.engine.messages import (
    email_content,
    first_line,
    has_consent,
    sms_body,
    tpl,
    tpl_list,
    whatsapp_payload,
)
from flowctl.engine.outcome import Outcome, StepError
from flowctl.engine.program import Node
from flowctl.engine.records import create_record, describe_changes, new_record, normalize, update_fields
from flowctl.engine.runtime import Runtime
from flowctl.engine.state import Message, Record, Run, Task, Waiting
from flowctl.errors import TemplateRenderError
from flowctl.lang.durations import Duration, is_duration
from flowctl.lang.templates import render_value
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import (
    Approval,
    ApproverEntry,
    AssignRecord,
    CreateEvent,
    CreateRecord,
    CreateTask,
    Flow,
    HumanTask,
    Log,
    MergeDuplicates,
    Notify,
    SendEmail,
    SendSms,
    SendWhatsapp,
    UpdateRecord,
    Webhook,
)


@dataclass
class StepContext:
    rt: Runtime
    run: Run
    node: Node
    bundle: TypedBundle
    flow: Flow
    record: Record | None  # read afresh for this step
    context: dict[str, Any]  # the template context

    @property
    def tz(self) -> str:
        return self.flow.timezone

    @property
    def attempt(self) -> int:
        return self.run.cursor.attempt if self.run.cursor else 1

    def timeline(self, text: str, record: Record | None = None) -> None:
        target = record or self.record
        if target is None:
            return
        custom = getattr(self.node.step, "timeline", None)
        if custom is not None and (record is None or record.key == (self.record.key if self.record else None)):
            text = tpl(custom, self.context) or text
        self.rt.timeline(target.object, target.id, text, run=self.run, step=self.node.id)


# --------------------------------------------------------------------------- helpers


def render_values(values: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    try:
        return render_value(values, context)
    except TemplateRenderError as exc:
        raise StepError(exc.message, "template") from None


def when_from_now(sc: StepContext, value: str | None) -> dt.datetime | None:
    """`2d` (a duration from now, calendar days in the flow's zone) or a templated timestamp."""
    if value is None:
        return None
    if is_duration(value):
        return Duration.parse(value).add_to(sc.rt.now, sc.tz)
    text = tpl(value, sc.context) or ""
    if is_duration(text.strip()):
        return Duration.parse(text.strip()).add_to(sc.rt.now, sc.tz)
    try:
        return parse_instant(text, sc.tz)
    except ValueError as exc:
        raise StepError(str(exc), "invalid") from None


def _related(record: Record | None) -> str | None:
    return f"{record.object}/{record.id}" if record is not None else None


def new_message(sc: StepContext, channel: str, **fields: Any) -> Message:
    rt, run = sc.rt, sc.run
    attempt = sc.attempt
    step = getattr(sc.node.step, "timeout", None)
    message = Message(
        id=rt.store.next_id("msg"),
        idempotency_key=f"{run.id}:{sc.node.id}:{attempt}",
        channel=channel,
        run_id=run.id,
        flow=run.flow,
        step=sc.node.id,
        attempt=attempt,
        object=sc.record.object if sc.record else None,
        record_id=sc.record.id if sc.record else None,
        created_at=rt.now,
        timeout_seconds=float(Duration.parse(step).nominal_seconds()) if isinstance(step, str) else None,
        **fields,
    )
    rt.store.put_message(message)
    return message


def _send(sc: StepContext, message: Message) -> Outcome:
    sc.run.cursor.data["message_id"] = message.id  # type: ignore[union-attr]
    return Outcome.wait(Waiting(kind="message", message_id=message.id), **preview(message))


def preview(message: Message) -> dict[str, Any]:
    """What a trace shows of a message: channel, recipients, subject, first line."""
    out: dict[str, Any] = {"message": message.id, "channel": message.channel, "to": list(message.to)}
    if message.subject:
        out["subject"] = message.subject
    if message.channel == "webhook":
        out["request"] = f"{message.method} {message.url}"
    elif message.channel == "whatsapp" and message.whatsapp:
        out["template"] = message.whatsapp.get("name")
    line = first_line(message.text) or first_line(message.html)
    if line:
        out["first_line"] = line
    if message.variant:
        out["variant"] = message.variant
    return out


def _no_consent(sc: StepContext, channel: str) -> Outcome:
    return Outcome.skip("no_consent", channel=channel)


# --------------------------------------------------------------------------- outbound


def send_email(sc: StepContext) -> Outcome:
    step: SendEmail = sc.node.step
    if not has_consent(sc.rt, sc.bundle, sc.record, "email", sc.tz):
        return _no_consent(sc, "email")
    content = email_content(sc.bundle, step, flow=sc.flow.name, record=sc.record, context=sc.context)
    to = tpl_list(step.to, sc.context)
    if not to:
        raise StepError("send_email: `to` rendered empty", "invalid")
    message = new_message(
        sc, "email", to=to, cc=tpl_list(step.cc, sc.context), bcc=tpl_list(step.bcc, sc.context),
        sender=tpl(step.from_, sc.context), attachments=[tpl(a, sc.context) or "" for a in step.attachments or []],
        **content,
    )
    return _send(sc, message)


def send_sms(sc: StepContext) -> Outcome:
    step: SendSms = sc.node.step
    if not has_consent(sc.rt, sc.bundle, sc.record, "sms", sc.tz):
        return _no_consent(sc, "sms")
    body, locale = sms_body(sc.bundle, step.template, step.body, record=sc.record, context=sc.context)
    to = tpl_list(step.to, sc.context)
    if not to:
        raise StepError("send_sms: `to` rendered empty", "invalid")
    message = new_message(sc, "sms", to=to, text=body, template=step.template, locale=locale,
                          sender=tpl(step.sender_id, sc.context))
    return _send(sc, message)


def send_whatsapp(sc: StepContext) -> Outcome:
    step: SendWhatsapp = sc.node.step
    if not has_consent(sc.rt, sc.bundle, sc.record, "whatsapp", sc.tz):
        if "fallback" in sc.node.branches:
            out = Outcome.jump(sc.node.branches["fallback"], branch="fallback")
            out.reason = "no_consent"
            return out
        return _no_consent(sc, "whatsapp")
    payload = whatsapp_payload(sc.bundle, step.template, sc.context)
    to = tpl_list(step.to, sc.context)
    if not to:
        raise StepError("send_whatsapp: `to` rendered empty", "invalid")
    message = new_message(sc, "whatsapp", to=to, template=step.template, whatsapp=payload)
    return _send(sc, message)


def expand_recipients(sc: StepContext, names: list[str]) -> list[str]:
    """notify `to`: team names expand to their members, roles to the users holding them, the rest are users."""
    out: list[str] = []
    for name in names:
        team = sc.bundle.teams.get(name)
        if team is not None:
            out.extend(m.user for m in team.members)
            continue
        holders = [u.id for u in sc.rt.store.records_of("user") if u.fields.get("role") == name]
        out.extend(holders or [name])
    seen: set[str] = set()
    return [u for u in out if not (u in seen or seen.add(u))]  # type: ignore[func-returns-value]


def notify(sc: StepContext) -> Outcome:
    step: Notify = sc.node.step
    users = expand_recipients(sc, tpl_list(step.to, sc.context))
    if not users:
        raise StepError("notify: no recipients", "invalid")
    text = tpl(step.message, sc.context)
    message = new_message(sc, "notification", to=users, text=text, priority=tpl(step.priority, sc.context))
    return _send(sc, message)


def webhook(sc: StepContext) -> Outcome:
    step: Webhook = sc.node.step
    url = tpl(step.url, sc.context) or ""
    headers = {k: tpl(v, sc.context) or "" for k, v in (step.headers or {}).items()}
    body = render_values({"body": step.body}, sc.context)["body"] if step.body is not None else None
    expect = step.expect_status
    expected = [expect] if isinstance(expect, int) else list(expect or [])
    message = new_message(sc, "webhook", url=url, method=step.method, headers=headers, body=body,
                          expect_status=expected)
    return _send(sc, message)


def on_sent(sc: StepContext, message: Message) -> Any:
    """A message was delivered: the step's output and its timeline line."""
    channel = message.channel
    if channel == "email":
        sc.timeline(f"email sent: {message.subject or ''}".rstrip())
        return {"message_id": message.id, "variant": message.variant}
    if channel == "sms":
        sc.timeline("sms sent")
        return {"message_id": message.id}
    if channel == "whatsapp":
        sc.timeline(f"whatsapp sent: {message.template}")
        return {"message_id": message.id}
    if channel == "notification":
        sc.timeline(f"notified {', '.join(message.to)}")
        return {"notification_id": message.id}
    sc.timeline(f"webhook {message.method} {message.response_status}")
    return {"status": message.response_status, "headers": message.response_headers, "json": message.response_json}


# --------------------------------------------------------------------------- tasks and records


def create_task(sc: StepContext) -> Outcome:
    step: CreateTask = sc.node.step
    subject = tpl(step.subject, sc.context) or ""
    task = sc.rt.new_task(
        sc.run,
        sc.node.id,
        "task",
        subject=subject,
        description=tpl(step.description, sc.context),
        assignee=tpl(step.assignee, sc.context) or None,
        status=tpl(step.status, sc.context) or "not_started",
        priority=tpl(step.priority, sc.context),
        due_at=when_from_now(sc, step.due),
        related_to=tpl(step.related_to, sc.context) if step.related_to else _related(sc.record),
        attachments_required=list(step.attachments_required or []),
    )
    sc.rt.store.put_task(task)
    sc.rt.trace("task", run=sc.run, step=sc.node.id, status="created", task=task.id, subject=subject,
                assignee=task.assignee, due_at=task.due_at.isoformat() if task.due_at else None)
    sc.timeline(f"task created: {subject}")
    return Outcome.done({"task_id": task.id}, task=task.id)


def create_event(sc: StepContext) -> Outcome:
    step: CreateEvent = sc.node.step
    subject = tpl(step.subject, sc.context) or ""
    start = when_from_now(sc, step.start)
    assert start is not None
    if step.end is not None:
        end = when_from_now(sc, step.end)
    elif step.duration is not None:
        end = Duration.parse(step.duration).add_to(start, sc.tz)
    else:
        end = start + dt.timedelta(hours=1)
    values = {
        "subject": subject,
        "start": start,
        "end": end,
        "location": tpl(step.location, sc.context),
        "attendees": tpl_list(step.attendees, sc.context) if step.attendees else [],
        "related_to": _related(sc.record),
    }
    event = new_record("event", sc.rt.store.next_id("event"), {k: v for k, v in values.items() if v is not None},
                       sc.rt.now, sc.rt.fields_of(sc.bundle, "event"))
    create_record(sc.rt, event, run=sc.run)
    sc.timeline(f"event created: {subject}")
    return Outcome.done({"event_id": event.id}, event=event.id)


def _target_record(sc: StepContext, ref_field: str | None) -> Record:
    if sc.record is None:
        raise StepError("this flow has no record to update", "not_found")
    if ref_field is None or ref_field in ("record", "self"):
        return sc.record
    fields = sc.rt.fields_of(sc.bundle, sc.record.object) or {}
    fdef = fields.get(ref_field)
    if fdef is None or fdef.type != "ref" or not fdef.object:
        raise StepError(f"`{ref_field}` is not a reference field of {sc.record.object}", "invalid")
    rid = ref_id(sc.record.fields.get(ref_field))
    if rid is None:
        raise StepError(f"{sc.record.object} {sc.record.id} has no {ref_field}", "not_found")
    target = sc.rt.store.get_record(fdef.object, rid)
    if target is None or target.deleted:
        raise StepError(f"{fdef.object} {rid} (the record's {ref_field}) is not known", "not_found")
    return target


def update_record(sc: StepContext) -> Outcome:
    step: UpdateRecord = sc.node.step
    target = _target_record(sc, step.record)
    values = render_values(step.set, sc.context)
    changed = update_fields(sc.rt, target, values, run=sc.run, fields=sc.rt.fields_of(sc.bundle, target.object))
    shown = changed or normalize(values, sc.rt.fields_of(sc.bundle, target.object))
    sc.timeline(f"record updated: {describe_changes(shown)}", record=target)
    return Outcome.done(changed)


def create_record_step(sc: StepContext) -> Outcome:
    step: CreateRecord = sc.node.step
    values = render_values(step.values, sc.context)
    record_id = str(values.pop("id", "") or sc.rt.store.next_id(step.object))
    if sc.rt.store.get_record(step.object, record_id) is not None:
        raise StepError(f"{step.object} {record_id} already exists", "invalid")
    record = new_record(step.object, record_id, values, sc.rt.now, sc.rt.fields_of(sc.bundle, step.object))
    record.created_at = record.updated_at = sc.rt.now
    create_record(sc.rt, record, run=sc.run)
    sc.timeline(f"record created: {step.object} {record_id}")
    return Outcome.done({"record_id": record_id}, record=f"{step.object}/{record_id}")


def assign_record(sc: StepContext) -> Outcome:
    step: AssignRecord = sc.node.step
    if sc.record is None:
        raise StepError("this flow has no record to assign", "not_found")
    team = None
    if step.strategy != "fixed":
        team = sc.bundle.teams.get(step.team or "")
        if team is None:
            raise StepError(f"unknown team '{step.team}'", "invalid")
    user = tpl(step.user, sc.context) if step.user else None
    fallback = tpl(step.fallback, sc.context) if step.fallback else None
    choice = assignment.choose(sc.rt, step, team, sc.record, user, fallback)
    if choice.user is None and choice.fallback == "manual_dispatch":
        manager = team.manager if team else None
        task = sc.rt.new_task(
            sc.run,
            sc.node.id,
            "manual_dispatch",
            subject=f"Dispatch {sc.record.object} {sc.record.id} manually",
            description=choice.rule,
            assignee=manager,
            related_to=_related(sc.record),
            data={"field": step.field, "team": team.name if team else None},
        )
        sc.rt.store.put_task(task)
        sc.rt.trace("task", run=sc.run, step=sc.node.id, status="created", task=task.id, subject=task.subject,
                    assignee=manager)
        sc.timeline(f"manual dispatch: {choice.rule}")
        return Outcome.done({"assignee": None, "rule": choice.rule, "task_id": task.id}, rule=choice.rule)
    if choice.user is None:
        raise StepError(f"nobody to assign: {choice.rule}", "no_assignee")
    values: dict[str, Any] = {step.field: choice.user}
    if step.strategy == "skills":
        values["dispatch_rule"] = choice.rule
    fields = sc.rt.fields_of(sc.bundle, sc.record.object)
    assignment.record_assignment(sc.rt, sc.record, step.field, choice.user)
    update_fields(sc.rt, sc.record, values, run=sc.run, fields=fields)
    suffix = f" ({choice.rule})" if step.strategy == "skills" else ""
    sc.timeline(f"assigned to {choice.user}{suffix}")
    return Outcome.done({"assignee": choice.user, "rule": choice.rule}, assignee=choice.user, rule=choice.rule)


def merge_duplicates(sc: StepContext) -> Outcome:
    """Records of the same object with equal `match` values created within `window` merge into the oldest.

    The duplicate gets `status: merged` and `merged_into: <original id>`; once
    `mark_after` duplicates were merged into the original it gets `mark`. The
    step's output is the original's id (the record's own id when it is the
    original), so `steps.<id>.output != record.id` tells a duplicate.
    """
    step: MergeDuplicates = sc.node.step
    record = sc.record
    if record is None:
        raise StepError("this flow has no record to merge", "not_found")
    window = Duration.parse(step.window)
    since = Duration(-window.amount, window.unit).add_to(record.created_at, sc.tz)
    key = [record.fields.get(f) for f in step.match]
    if any(v in (None, "", []) for v in key):
        # `reason` is an Outcome field, not trace detail (as detail it collided with the trace's own `reason`).
        return Outcome("next", output=record.id, reason="match fields empty", detail={"original": record.id})
    original: Record | None = None
    for other in sc.rt.store.records_of(record.object):
        if other.id == record.id or other.fields.get("status") == "merged":
            continue
        if not (since <= other.created_at <= record.created_at):
            continue
        if other.created_at == record.created_at and other.id > record.id:
            continue
        if [other.fields.get(f) for f in step.match] != key:
            continue
        if original is None or (other.created_at, other.id) < (original.created_at, original.id):
            original = other
    if original is None:
        return Outcome.done(record.id, original=record.id)
    fields = sc.rt.fields_of(sc.bundle, record.object)
    update_fields(sc.rt, record, {"status": "merged", "merged_into": original.id}, run=sc.run, fields=fields)
    sc.timeline(f"merged into {original.id}")
    counter = f"{original.object}:{original.id}"
    count = int(sc.rt.store.kv_get("merged", counter) or 0) + 1
    sc.rt.store.kv_put("merged", counter, count)
    sc.rt.timeline(original.object, original.id, f"duplicate {record.id} merged ({count} so far)", run=sc.run,
                   step=sc.node.id)
    marked = bool(step.mark and step.mark_after and count == step.mark_after)
    if marked and step.mark:
        mark = render_values(step.mark, sc.context)
        changed = update_fields(sc.rt, original, mark, run=sc.run, fields=fields)
        sc.rt.timeline(original.object, original.id, f"record updated: {describe_changes(changed or mark)}",
                       run=sc.run, step=sc.node.id)
    return Outcome.done(original.id, original=original.id, duplicates=count, marked=marked or None)


def log(sc: StepContext) -> Outcome:
    step: Log = sc.node.step
    text = tpl(step.message, sc.context) or ""
    if sc.record is not None:
        sc.rt.timeline(sc.record.object, sc.record.id, text, run=sc.run, step=sc.node.id)
    return Outcome.done(None, message=text)


# --------------------------------------------------------------------------- people


def approval_tasks(sc: StepContext, approvers: list[str], *, first_only: bool, start: int = 0) -> list[Task]:
    """Tasks for `approvers[start:]` (only the first of them with `first_only`, as `mode: sequence` goes).

    With approver entries, `entry_of` in the step's progress maps each position to its entry in the
    step's `approvers`: that task gets the entry's title, attachment list and instructions.
    """
    step: Approval = sc.node.step
    entry_of: list[int | None] = (sc.run.cursor.data.get("entry_of") if sc.run.cursor else None) or []
    title = tpl(step.title, sc.context) or ""
    due = Duration.parse(step.timeout).add_to(sc.rt.now, sc.tz) if step.timeout else None
    out: list[Task] = []
    positions = range(start, min(start + 1, len(approvers)) if first_only else len(approvers))
    for position in positions:
        approver = approvers[position]
        index = entry_of[position] if position < len(entry_of) else None
        entry = step.approvers[index] if index is not None and isinstance(step.approvers, list) else None
        own = entry if isinstance(entry, ApproverEntry) else None
        out.append(
            sc.rt.new_task(
                sc.run,
                sc.node.id,
                "approval",
                subject=(tpl(own.title, sc.context) or "") if own and own.title is not None else title,
                description=tpl(own.instructions if own and own.instructions is not None else step.instructions,
                                sc.context),
                assignee=approver,
                approvers=[approver],
                mode=step.mode,
                due_at=due,
                related_to=_related(sc.record),
                attachments_required=list(
                    own.attachments_required if own and own.attachments_required is not None
                    else step.attachments_required or []
                ),
            )
        )
    return out


def _approvers(sc: StepContext) -> tuple[list[str], list[int | None]]:
    """The approvers in order, and for each the index of its entry in the step's list (None: a plain user id).

    A plain item may render to several users ("a, b"); an entry is exactly one user, one task.
    """
    step: Approval = sc.node.step
    users: list[str] = []
    entry_of: list[int | None] = []
    if isinstance(step.approvers, str):
        users = tpl_list(step.approvers, sc.context)
        return users, [None] * len(users)
    for index, item in enumerate(step.approvers):
        if isinstance(item, ApproverEntry):
            user = (tpl(item.user, sc.context) or "").strip()
            if not user:
                raise StepError(f"approval: approvers[{index}].user rendered empty", "invalid")
            users.append(user)
            entry_of.append(index)
        else:
            rendered = tpl_list(item, sc.context)
            users += rendered
            entry_of += [None] * len(rendered)
    return users, entry_of


def approval_chain(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every decision taken on an approval step, in the order taken (the step output's `chain`)."""
    return [{"approver": d.get("approver"), "title": d.get("title"), "decision": d.get("decision"),
             "comment": d.get("comment"), "at": d.get("at")} for d in data.get("decisions", [])]


def approval(sc: StepContext) -> Outcome:
    step: Approval = sc.node.step
    approvers, entry_of = _approvers(sc)
    if not approvers:
        raise StepError("approval: no approvers", "invalid")
    if step.has_entries:
        sc.run.cursor.data["entry_of"] = entry_of  # type: ignore[union-attr]
    tasks = approval_tasks(sc, approvers, first_only=step.mode == "sequence")
    return _wait_for_tasks(sc, tasks, {"approvers": approvers, "decisions": [], "title": tasks[0].subject})


def human_task(sc: StepContext) -> Outcome:
    step: HumanTask = sc.node.step
    due = Duration.parse(step.timeout).add_to(sc.rt.now, sc.tz) if step.timeout else None
    task = sc.rt.new_task(
        sc.run,
        sc.node.id,
        "human_task",
        subject=tpl(step.title, sc.context) or "",
        description=tpl(step.instructions, sc.context),
        assignee=tpl(step.assignee, sc.context) or None,
        due_at=due,
        related_to=_related(sc.record),
        attachments_required=list(step.attachments_required or []),
    )
    return _wait_for_tasks(sc, [task], {})


def _wait_for_tasks(sc: StepContext, tasks: list[Task], data: dict[str, Any]) -> Outcome:
    for task in tasks:
        sc.rt.store.put_task(task)
        sc.rt.trace("task", run=sc.run, step=sc.node.id, status="created", task=task.id, task_kind=task.kind,
                    subject=task.subject, assignee=task.assignee)
        sc.timeline(f"task created: {task.subject}")
    sc.run.cursor.data.update(data)  # type: ignore[union-attr]
    waiting = Waiting(kind="task", task_ids=[t.id for t in tasks])
    timeout = getattr(sc.node.step, "timeout", None)
    if timeout:
        due = Duration.parse(timeout).add_to(sc.rt.now, sc.tz)
        timer = sc.rt.new_timer("timeout", due, f"run:{sc.run.id}", run_id=sc.run.id, payload={"step": sc.node.id})
        waiting.timer_id = timer.id
        waiting.until = due
    return Outcome.wait(waiting, tasks=[t.id for t in tasks])


ACTIONS: dict[str, Callable[[StepContext], Outcome]] = {
    "send_email": send_email,
    "send_sms": send_sms,
    "send_whatsapp": send_whatsapp,
    "notify": notify,
    "webhook": webhook,
    "create_task": create_task,
    "create_event": create_event,
    "update_record": update_record,
    "create_record": create_record_step,
    "assign_record": assign_record,
    "merge_duplicates": merge_duplicates,
    "log": log,
    "approval": approval,
    "human_task": human_task,
}
OUTBOUND = frozenset({"send_email", "send_sms", "send_whatsapp", "notify", "webhook"})
