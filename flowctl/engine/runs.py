"""The run state machine: enter a step, execute it, apply its outcome, wait, resume, finish.

A run's position is `run.cursor` (the current step id, its attempt and
step-local progress) plus `run.waiting` (what it waits for). `advance` executes
steps until the run waits or ends and then writes the run; every resume path
(timer, delivery report, task completion, child run end, record change) first
applies the awaited outcome and then calls `advance`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flowctl.engine import condition_waits
from flowctl.engine.actions import (
    ACTIONS,
    OUTBOUND,
    StepContext,
    approval_chain,
    approval_tasks,
    on_sent,
    preview,
)
from flowctl.engine.context import condition_context, parse_instant, template_context
from flowctl.engine.messages import tpl
from flowctl.engine.outcome import Outcome, StepError
from flowctl.engine.program import Node, program_for
from flowctl.engine.runtime import MAX_DEPTH, MAX_VISITS, Runtime, run_owner
from flowctl.engine.sla_flows import flow_model
from flowctl.engine.state import (
    TERMINAL_RUN_STATUSES,
    DeliveryResult,
    Message,
    Record,
    Run,
    StepAttempt,
    StepCursor,
    Task,
    Timer,
    Waiting,
)
from flowctl.errors import FlowctlError
from flowctl.lang.conditions import evaluate
from flowctl.lang.durations import Duration
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import Flow, GotoRef, Retry


class EngineError(FlowctlError):
    """A request the engine cannot honour (unknown run or task, a task already completed, ...)."""


# --------------------------------------------------------------------------- starting


def start_run(
    rt: Runtime,
    *,
    version: int,
    flow: Flow,
    record: Record | None,
    trigger: dict[str, Any],
    depth: int = 0,
    event_id: str | None = None,
    parent: Run | None = None,
    parent_step: str | None = None,
    late: bool = False,
) -> Run:
    run = Run(
        id=rt.store.next_id("run"),
        flow=flow.name,
        version=version,
        object=record.object if record is not None else None,
        record_id=record.id if record is not None else None,
        trigger=trigger,
        event_id=event_id,
        parent_run_id=parent.id if parent else None,
        parent_step=parent_step,
        depth=depth,
        started_at=rt.now,
        updated_at=rt.now,
        late=late,
    )
    rt.trace(
        "run", run=run, status="started", version=version, trigger=trigger.get("type"),
        record=f"{record.object}/{record.id}" if record else None, parent=run.parent_run_id, depth=depth or None,
        late=late or None,
    )
    _goto(rt, run, program_for(flow).first)
    advance(rt, run)
    return run


# --------------------------------------------------------------------------- the loop


def advance(rt: Runtime, run: Run) -> None:
    """Execute steps until the run waits or ends; then write it."""
    if run.status == "running" and run.waiting is None:
        bundle = rt.bundle(run.version)
        flow = flow_model(bundle, run.flow)  # a flow, or an SLA policy's action list
        program = program_for(flow)
        while run.status == "running" and run.waiting is None:
            if run.cursor is None:
                finish(rt, run, "succeeded")
                return
            node = program.nodes.get(run.cursor.step)
            if node is None:
                finish(rt, run, "failed", error=f"step '{run.cursor.step}' does not exist in {flow.name}",
                       error_class="invalid")
                return
            outcome = _execute(rt, run, node, bundle, flow)
            _apply(rt, run, node, outcome)
            if run.status in TERMINAL_RUN_STATUSES:
                return  # finish() wrote it
    _save(rt, run)


def _save(rt: Runtime, run: Run) -> None:
    run.updated_at = rt.now
    rt.store.put_run(run)


def _goto(rt: Runtime, run: Run, step_id: str | None) -> None:
    if step_id is None:
        run.cursor = None
        return
    visits = run.visits.get(step_id, 0) + 1
    run.visits[step_id] = visits
    if visits > MAX_VISITS:
        run.cursor = StepCursor(step=step_id, started_at=rt.now, attempt_started_at=rt.now)
        finish(rt, run, "failed", error=f"loop guard: step '{step_id}' entered more than {MAX_VISITS} times",
               error_class="loop_guard")
        return
    run.path.append(step_id)
    run.cursor = StepCursor(step=step_id, started_at=rt.now, attempt_started_at=rt.now)


def _record_of(rt: Runtime, run: Run) -> Record | None:
    key = run.record_key
    if key is None:
        return None
    return rt.store.get_record(*key)


def step_context(rt: Runtime, run: Run, node: Node, bundle: TypedBundle, flow: Flow) -> StepContext:
    record = _record_of(rt, run)
    return StepContext(rt=rt, run=run, node=node, bundle=bundle, flow=flow, record=record,
                       context=template_context(rt, bundle, run=run, record=record))


def _execute(rt: Runtime, run: Run, node: Node, bundle: TypedBundle, flow: Flow) -> Outcome:
    sc = step_context(rt, run, node, bundle, flow)
    step = node.step
    cursor = run.cursor
    assert cursor is not None
    try:
        if cursor.attempt == 1 and step.when is not None:
            ctx = condition_context(rt, bundle, record=sc.record, object_name=run.object, timezone=flow.timezone,
                                    expr_context=sc.context, run=run)
            if not evaluate(step.when, ctx):
                return Outcome.skip("when false")
        if node.kind in ACTIONS:
            if rt.step_faults is not None and node.kind not in OUTBOUND:
                injected = rt.step_faults(flow.name, node.id, run.id, cursor.attempt)
                if injected:
                    return Outcome.fail(f"injected fault: {injected}", injected)
            return ACTIONS[node.kind](sc)
        handler = CONTROL.get(node.kind)
        if handler is None:
            return Outcome.fail(f"unknown step kind '{node.kind}'", "invalid", retryable=False)
        return handler(sc)
    except StepError as exc:
        return Outcome.fail(exc.message, exc.error_class)
    except FlowctlError as exc:
        return Outcome.fail(exc.message, "invalid", retryable=False)
    except Exception as exc:  # a bug must fail one step, never the engine call that carries other runs
        rt.trace("error", run=run, step=node.id, status="internal", error=f"{type(exc).__name__}: {exc}")
        return Outcome.fail(f"internal error: {type(exc).__name__}: {exc}", "internal", retryable=False)


def _attempt(rt: Runtime, run: Run, node: Node, status: str, out: Outcome | None = None) -> StepAttempt:
    cursor = run.cursor
    assert cursor is not None
    attempt = StepAttempt(
        run_id=run.id,
        flow=run.flow,
        step=node.id,
        attempt=cursor.attempt,
        status=status,
        reason=out.reason if out else None,
        started_at=cursor.attempt_started_at or cursor.started_at,
        ended_at=None if status in ("waiting", "running") else rt.now,
        output=out.output if out else None,
        error=out.error if out else None,
        error_class=out.error_class if out else None,
    )
    rt.store.put_step_attempt(attempt)
    return attempt


def _apply(rt: Runtime, run: Run, node: Node, out: Outcome) -> None:
    cursor = run.cursor
    assert cursor is not None
    kind = out.kind
    if kind in ("next", "jump", "end"):
        status = "skipped" if out.reason == "no_consent" else "succeeded"
        _attempt(rt, run, node, status, out)
        if out.output is not None:
            run.outputs[node.id] = out.output
        rt.trace("step", run=run, step=node.id, status=status, attempt=cursor.attempt, action=node.kind,
                 reason=out.reason, **out.detail)
        if kind == "end":
            finish(rt, run, out.status or "succeeded", outcome=out.outcome)
        else:
            _goto(rt, run, out.target if kind == "jump" else node.next)
    elif kind == "skip":
        _attempt(rt, run, node, "skipped", out)
        rt.trace("step", run=run, step=node.id, status="skipped", attempt=cursor.attempt, action=node.kind,
                 reason=out.reason, **out.detail)
        _goto(rt, run, node.next)
    elif kind == "wait":
        assert out.waiting is not None
        sending = out.waiting.kind == "message"
        _attempt(rt, run, node, "running" if sending else "waiting", out)
        run.waiting = out.waiting
        run.status = "running" if sending else "waiting"
        rt.trace("step", run=run, step=node.id, status="sending" if sending else "waiting", attempt=cursor.attempt,
                 action=node.kind, until=out.waiting.until.isoformat() if out.waiting.until else None,
                 waiting_for=out.waiting.kind, **out.detail)
        if out.waiting.timer_id and out.waiting.until:
            rt.trace("timer", run=run, step=node.id, status="set", timer=out.waiting.timer_id,
                     due_at=out.waiting.until.isoformat(), purpose=out.waiting.kind)
        if out.waiting.kind == "condition":
            # Indexed by every record the condition reads, so a record change looks only at those runs.
            _index_condition_wait(rt, run, node)
    elif kind == "fail":
        _failure(rt, run, node, out)


def _retry_delay(retry: Retry, attempt: int) -> dt.timedelta:
    """Delay before attempt `attempt + 1`: fixed, or doubling from `delay` up to `max_delay`."""
    base = Duration.parse(retry.delay).nominal_seconds()
    seconds = base * (2 ** (attempt - 1)) if retry.backoff == "exponential" else base
    if retry.max_delay is not None:
        seconds = min(seconds, Duration.parse(retry.max_delay).nominal_seconds())
    return dt.timedelta(seconds=seconds)


def _failure(rt: Runtime, run: Run, node: Node, out: Outcome) -> None:
    cursor = run.cursor
    assert cursor is not None
    step = node.step
    retry: Retry | None = getattr(step, "retry", None)
    attempts = retry.attempts if retry else 1
    if out.retryable and retry is not None and cursor.attempt < attempts:
        due = rt.now + _retry_delay(retry, cursor.attempt)
        timer = rt.new_timer("retry", due, run_owner(run.id), run_id=run.id,
                             payload={"step": node.id, "attempt": cursor.attempt + 1})
        _attempt(rt, run, node, "retrying", out)
        run.status = "waiting"
        run.waiting = Waiting(kind="retry", timer_id=timer.id, until=due)
        rt.trace("step", run=run, step=node.id, status="retrying", attempt=cursor.attempt, action=node.kind,
                 error=out.error, error_class=out.error_class, next_attempt_at=due.isoformat(), **out.detail)
        return
    _attempt(rt, run, node, "failed", out)
    rt.trace("step", run=run, step=node.id, status="failed", attempt=cursor.attempt, action=node.kind,
             error=out.error, error_class=out.error_class, **out.detail)
    if node.kind == "send_whatsapp" and node.branches.get("fallback") and not cursor.data.get("fallback"):
        _goto(rt, run, node.branches["fallback"])
        return
    policy = getattr(step, "on_failure", "fail")
    if policy == "continue":
        _goto(rt, run, node.next)
    elif isinstance(policy, GotoRef):
        _goto(rt, run, policy.goto)
    elif policy == "compensate":
        _compensate(rt, run, node, out)
    else:
        finish(rt, run, "failed", error=f"step {node.id}: {out.error}", error_class=out.error_class)


def _compensate(rt: Runtime, run: Run, node: Node, out: Outcome) -> None:
    record = _record_of(rt, run)
    subject = f"Please perform {node.id} manually"
    task = rt.new_task(
        run,
        node.id,
        "compensation",
        subject=subject,
        description=f"Step {node.id} of flow {run.flow} failed after its retries: {out.error_class}: {out.error}. "
        "Complete this task with `done` once it is done by hand, or `rejected` to fail the run.",
        related_to=f"{record.object}/{record.id}" if record else None,
        error=f"{out.error_class}: {out.error}",
    )
    rt.store.put_task(task)
    assert run.cursor is not None
    run.cursor.data["compensating"] = task.id
    run.status = "waiting"
    run.waiting = Waiting(kind="task", task_ids=[task.id])
    rt.trace("task", run=run, step=node.id, status="created", task=task.id, task_kind="compensation", subject=subject,
             error=task.error)
    if record is not None:
        rt.timeline(record.object, record.id, f"task created: {subject}", run=run, step=node.id)


def finish(
    rt: Runtime,
    run: Run,
    status: str,
    *,
    outcome: str | None = None,
    error: str | None = None,
    error_class: str | None = None,
) -> None:
    if status == "succeeded" and run.compensated:
        status = "succeeded_compensated"
    run.status = status  # type: ignore[assignment]
    run.outcome = outcome if outcome is not None else run.outcome
    if error is not None:
        run.error, run.error_class = error, error_class
    _end_condition_wait(rt, run)
    run.waiting = None
    run.ended_at = rt.now
    rt.store.cancel_timers(run_owner(run.id))
    for task in rt.store.list_tasks(run_id=run.id, open_only=True):
        if task.kind in ("approval", "human_task", "compensation"):
            task.status = "cancelled"
            rt.store.put_task(task)
    rt.trace("run", run=run, status=status, outcome=run.outcome, error=error, error_class=error_class)
    _save(rt, run)
    if run.parent_run_id:
        parent = rt.store.get_run(run.parent_run_id)
        if (parent is not None and parent.is_open and parent.waiting is not None
                and parent.waiting.kind == "child_run" and parent.waiting.child_run_id == run.id):
            _resume_after_child(rt, parent, run)


# --------------------------------------------------------------------------- control steps


def _wait(sc: StepContext) -> Outcome:
    spec = sc.node.step.wait
    rt = sc.rt
    due: dt.datetime | None = None
    if spec.for_ is not None:
        due = Duration.parse(spec.for_).add_to(rt.now, sc.tz)
    elif spec.until is not None:
        text = tpl(spec.until, sc.context) or ""
        try:
            due = parse_instant(text, sc.tz)
        except ValueError as exc:
            raise StepError(str(exc), "invalid") from None
    elif spec.calendar is not None:
        cal = sc.bundle.calendars.get(spec.calendar)
        if cal is None:
            raise StepError(f"unknown calendar '{spec.calendar}'", "invalid")
        from flowctl.lang.calendars import BusinessCalendar

        due = BusinessCalendar.from_model(cal).next_open(rt.now)
    else:
        if _condition_holds(sc):
            return Outcome.done(None, condition="already true")
        waiting = Waiting(kind="condition")
        limit = spec.timeout or getattr(sc.node.step, "timeout", None)
        if limit:
            until = Duration.parse(limit).add_to(rt.now, sc.tz)
            timer = rt.new_timer("timeout", until, run_owner(sc.run.id), run_id=sc.run.id,
                                 payload={"step": sc.node.id})
            waiting.timer_id, waiting.until = timer.id, until
        return Outcome.wait(waiting)
    assert due is not None
    if due <= rt.now:
        return Outcome.done(None, until=due.isoformat(), already_past=True)
    timer = rt.new_timer("wake", due, run_owner(sc.run.id), run_id=sc.run.id, payload={"step": sc.node.id})
    return Outcome.wait(Waiting(kind="timer", timer_id=timer.id, until=due))


def _condition_holds(sc: StepContext) -> bool:
    ctx = condition_context(sc.rt, sc.bundle, record=sc.record, object_name=sc.run.object, timezone=sc.tz,
                            expr_context=sc.context, run=sc.run)
    return evaluate(sc.node.step.wait.until_condition, ctx)


def _cond(sc: StepContext, condition: Any) -> bool:
    ctx = condition_context(sc.rt, sc.bundle, record=sc.record, object_name=sc.run.object, timezone=sc.tz,
                            expr_context=sc.context, run=sc.run)
    return evaluate(condition, ctx)


def _if(sc: StepContext) -> Outcome:
    branch = "then" if _cond(sc, sc.node.step.if_) else "else"
    return Outcome.jump(sc.node.branches.get(branch), {"branch": branch}, branch=branch)


def _switch(sc: StepContext) -> Outcome:
    for n, case in enumerate(sc.node.step.switch.cases):
        if _cond(sc, case.when):
            return Outcome.jump(sc.node.branches.get(f"case:{n}"), {"branch": n}, branch=f"case {n + 1}")
    return Outcome.jump(sc.node.branches.get("default"), {"branch": "default"}, branch="default")


def _goto_step(sc: StepContext) -> Outcome:
    target = sc.node.step.goto
    if target not in program_for(sc.flow).nodes:
        raise StepError(f"goto: no step '{target}' in flow {sc.flow.name}", "invalid")
    return Outcome.jump(target, goto=target)


def _call_flow(sc: StepContext) -> Outcome:
    spec = sc.node.step.call_flow
    rt = sc.rt
    child_flow = sc.bundle.flows.get(spec.flow)
    if child_flow is None:
        raise StepError(f"call_flow: unknown flow '{spec.flow}'", "invalid")
    depth = sc.run.depth + 1
    if depth > MAX_DEPTH:
        rt.trace("loop_guard", run=sc.run, step=sc.node.id, depth=depth, flow_called=spec.flow)
        raise StepError(f"call_flow: chain of flows deeper than {MAX_DEPTH}", "loop_guard")
    child = start_run(
        rt,
        version=sc.run.version,
        flow=child_flow,
        record=sc.record,
        trigger={"type": "call_flow", "parent_run": sc.run.id, "parent_flow": sc.run.flow},
        depth=depth,
        parent=sc.run,
        parent_step=sc.node.id,
    )
    if not spec.wait:
        return Outcome.done({"run_id": child.id}, child=child.id)
    child = rt.store.get_run(child.id) or child
    if child.status in TERMINAL_RUN_STATUSES:
        return _child_outcome(child)
    return Outcome.wait(Waiting(kind="child_run", child_run_id=child.id), child=child.id)


def _child_outcome(child: Run) -> Outcome:
    output = {"run_id": child.id, "status": child.status, "outcome": child.outcome}
    if child.status in ("succeeded", "succeeded_compensated"):
        return Outcome.done(output, child=child.id, child_status=child.status)
    return Outcome.fail(f"called run {child.id} ({child.flow}) ended {child.status}: {child.error or ''}".rstrip(": "),
                        "child_failed", retryable=False, child=child.id)


def _stop(sc: StepContext) -> Outcome:
    spec = sc.node.step.stop
    return Outcome.end(spec.status, spec.reason)


CONTROL: dict[str, Callable[[StepContext], Outcome]] = {
    "wait": _wait,
    "if": _if,
    "switch": _switch,
    "goto": _goto_step,
    "call_flow": _call_flow,
    "stop": _stop,
}


# --------------------------------------------------------------------------- resuming


def _node_of(rt: Runtime, run: Run) -> tuple[Node, TypedBundle, Flow] | None:
    if run.cursor is None:
        return None
    bundle = rt.bundle(run.version)
    flow = flow_model(bundle, run.flow)
    node = program_for(flow).nodes.get(run.cursor.step)
    if node is None:
        return None
    return node, bundle, flow


def _resume(rt: Runtime, run: Run, node: Node, out: Outcome) -> None:
    _end_condition_wait(rt, run)
    run.waiting = None
    run.status = "running"
    _apply(rt, run, node, out)
    if run.status not in TERMINAL_RUN_STATUSES:
        advance(rt, run)


def on_run_timer(rt: Runtime, timer: Timer) -> None:
    """A wake-up, retry or timeout timer of a run fired."""
    run = rt.store.get_run(timer.run_id or "")
    if run is None or not run.is_open or run.waiting is None or run.waiting.timer_id != timer.id:
        return  # the run moved on (completed task, condition met, cancelled): the timer is stale
    found = _node_of(rt, run)
    if found is None:
        return
    node, _, _ = found
    if timer.fired_late:
        run.late = True
    if timer.kind == "wake":
        _resume(rt, run, node, Outcome.done(None, woke_at=rt.now.isoformat(), late=timer.fired_late or None))
    elif timer.kind == "retry":
        assert run.cursor is not None
        run.cursor.attempt += 1
        run.cursor.attempt_started_at = rt.now
        run.waiting = None
        run.status = "running"
        advance(rt, run)
    elif timer.kind == "timeout":
        _on_timeout(rt, run, node)


def _on_timeout(rt: Runtime, run: Run, node: Node) -> None:
    for task in rt.store.list_tasks(run_id=run.id, step=node.id, open_only=True):
        task.status = "expired"
        rt.store.put_task(task)
        rt.trace("task", run=run, step=node.id, status="expired", task=task.id)
    if node.kind == "approval":
        on_timeout = node.step.on_timeout
        if on_timeout == "reject":
            _approval_decided(rt, run, node, "rejected", approver=None, comment="timed out")
            return
        if isinstance(on_timeout, list):
            output = _approval_output(run, node, {"decision": "timed_out"})
            _resume(rt, run, node, Outcome.jump(node.branches.get("on_timeout"), output, branch="on_timeout"))
            return
    what = {"approval": "approval", "human_task": "task"}.get(node.kind, "wait")
    _resume(rt, run, node, Outcome.fail(f"{what} timed out", "timeout", retryable=False))


def on_delivered(rt: Runtime, message: Message, result: DeliveryResult) -> None:
    """Record a delivery report on the outbox row and move the waiting step on."""
    ok = result.ok
    error_class = result.error_class
    error = result.error
    if message.channel == "webhook" and result.status is not None and ok:
        expected = message.expect_status
        good = result.status in expected if expected else 200 <= result.status < 300
        if not good:
            ok = False
            error_class = f"HTTP {result.status}"
            error = f"{message.method} {message.url} answered {result.status}"
    if not ok and error_class is None:
        error_class = f"HTTP {result.status}" if result.status else "error"
    message.status = "sent" if ok else "failed"
    message.sent_at = rt.now if ok else None
    message.error = None if ok else (error or error_class)
    message.error_class = None if ok else error_class
    message.provider_id = result.provider_id
    message.response_status = result.status
    message.response_json = result.json_
    message.response_headers = dict(result.headers)
    rt.store.put_message(message)
    rt.trace("message", flow=message.flow, step=message.step, status=message.status, attempt=message.attempt,
             message=message.id, channel=message.channel, error=message.error, error_class=message.error_class,
             http_status=result.status)
    if message.run_id is None:
        return
    run = rt.store.get_run(message.run_id)
    if run is None or not run.is_open or run.waiting is None or run.waiting.message_id != message.id:
        return
    found = _node_of(rt, run)
    if found is None:
        return
    node, bundle, flow = found
    if ok:
        sc = step_context(rt, run, node, bundle, flow)
        output = on_sent(sc, message)
        _resume(rt, run, node, Outcome.done(output, **preview(message)))
    else:
        _resume(rt, run, node, Outcome.fail(message.error or "delivery failed", error_class or "error",
                                            message=message.id))


def on_task_completed(rt: Runtime, task: Task) -> None:
    """A blocking task was completed (task already written): move its run on."""
    if task.run_id is None:
        return
    run = rt.store.get_run(task.run_id)
    if run is None or not run.is_open or run.waiting is None or task.id not in run.waiting.task_ids:
        return
    found = _node_of(rt, run)
    if found is None:
        return
    node, bundle, flow = found
    assert run.cursor is not None
    if task.kind == "compensation":
        if task.decision == "rejected":
            run.waiting = None
            finish(rt, run, "failed", error=f"compensation of step {node.id} rejected by {task.by or 'someone'}",
                   error_class="compensation_rejected")
            return
        run.compensated = True
        run.waiting = None
        run.status = "running"
        rt.trace("step", run=run, step=node.id, status="compensated", attempt=run.cursor.attempt, action=node.kind,
                 by=task.by, task=task.id)
        _goto(rt, run, node.next)
        if run.status not in TERMINAL_RUN_STATUSES:
            advance(rt, run)
        return
    if task.kind == "human_task":
        _cancel_timer(rt, run)
        output = {"decision": task.decision, "by": task.by, "comment": task.comment, "data": task.data}
        if task.decision == "rejected":
            _resume(rt, run, node, Outcome.fail(f"task rejected by {task.by or 'someone'}", "rejected",
                                                retryable=False))
        else:
            _resume(rt, run, node, Outcome.done(output, by=task.by))
        return
    if task.kind == "approval":
        _approval_progress(rt, run, node, bundle, flow, task)


def _cancel_timer(rt: Runtime, run: Run) -> None:
    if run.waiting is not None and run.waiting.timer_id:
        timer = rt.store.get_timer(run.waiting.timer_id)
        if timer is not None and timer.status == "pending":
            timer.status = "cancelled"
            rt.store.put_timer(timer)


def _approval_progress(rt: Runtime, run: Run, node: Node, bundle: TypedBundle, flow: Flow, task: Task) -> None:
    cursor = run.cursor
    assert cursor is not None and run.waiting is not None
    data = cursor.data
    decisions: list[dict[str, Any]] = data.setdefault("decisions", [])
    approver = task.by or task.assignee
    decisions.append({"task": task.id, "approver": approver, "title": task.subject, "decision": task.decision,
                      "comment": task.comment, "at": rt.now.isoformat()})
    record = _record_of(rt, run)
    if record is not None:
        rt.timeline(record.object, record.id, f"approval {task.decision} by {approver}: {task.subject}", run=run,
                    step=node.id)
    mode = node.step.mode
    approvers: list[str] = data.get("approvers", [])
    if task.decision == "rejected" or mode == "any":
        _approval_decided(rt, run, node, task.decision or "rejected", approver=approver, comment=task.comment)
        return
    approved = [d for d in decisions if d["decision"] == "approved"]
    if mode == "all":
        if len(approved) >= len(approvers):
            _approval_decided(rt, run, node, "approved", approver=approver, comment=task.comment)
        else:
            _save(rt, run)
        return
    # sequence: the next approver gets a task once the previous approved
    if len(approved) >= len(approvers):
        _approval_decided(rt, run, node, "approved", approver=approver, comment=task.comment)
        return
    sc = step_context(rt, run, node, bundle, flow)
    nxt = approval_tasks(sc, approvers, first_only=True, start=len(approved))[0]
    rt.store.put_task(nxt)
    rt.trace("task", run=run, step=node.id, status="created", task=nxt.id, task_kind="approval", subject=nxt.subject,
             assignee=nxt.assignee)
    if record is not None:
        rt.timeline(record.object, record.id, f"task created: {nxt.subject}", run=run, step=node.id)
    run.waiting.task_ids.append(nxt.id)
    _save(rt, run)


def _approval_output(run: Run, node: Node, output: dict[str, Any]) -> dict[str, Any]:
    # Plain user ids keep the output they always had; approver entries add the whole chain (PowerX C-1).
    if node.step.has_entries and run.cursor is not None:
        output["chain"] = approval_chain(run.cursor.data)
    return output


def _approval_decided(rt: Runtime, run: Run, node: Node, decision: str, *, approver: str | None,
                      comment: str | None) -> None:
    _cancel_timer(rt, run)
    for other in rt.store.list_tasks(run_id=run.id, step=node.id, open_only=True):
        other.status = "cancelled"
        rt.store.put_task(other)
    output = _approval_output(run, node, {"decision": decision, "approver": approver, "comment": comment})
    if decision == "approved":
        _resume(rt, run, node, Outcome.done(output, decision=decision, approver=approver))
    elif node.branches.get("on_reject") is not None or node.step.on_reject:
        _resume(rt, run, node, Outcome.jump(node.branches.get("on_reject"), output, decision=decision,
                                            approver=approver, branch="on_reject"))
    else:
        out = Outcome.end("succeeded", "rejected", decision=decision, approver=approver)
        out.output = output
        _resume(rt, run, node, out)


def _resume_after_child(rt: Runtime, parent: Run, child: Run) -> None:
    found = _node_of(rt, parent)
    if found is None:
        return
    node, _, _ = found
    _resume(rt, parent, node, _child_outcome(child))


def _index_condition_wait(rt: Runtime, run: Run, node: Node) -> None:
    """File a run waiting `until_condition` under its record and every record the condition reads through refs."""
    record = _record_of(rt, run)
    if record is None:
        return  # no record: no change can make the condition true, only the timeout ends the wait
    bundle = rt.bundle(run.version)
    condition_waits.register(rt, run.id, condition_waits.reads_of(rt, bundle, record, node.step.wait.until_condition))


def _end_condition_wait(rt: Runtime, run: Run) -> None:
    if run.waiting is not None and run.waiting.kind == "condition":
        condition_waits.unregister(rt, run.id)


def _waits_on_condition(rt: Runtime, run_id: str) -> bool:
    run = rt.store.get_run(run_id)
    return run is not None and run.status == "waiting" and run.waiting is not None and run.waiting.kind == "condition"


def recheck_conditions(rt: Runtime, object_name: str, record_id: str) -> None:
    """Runs whose waiting condition reads this record (their own or a related one): continue those it now holds for.

    A run that still waits is filed again, since the change may have moved one of its references to another
    record. Resuming takes a run out of the index (`_resume`); one that waits on a condition again is filed
    anew, and is not checked a second time for this change.
    """
    for run_id in condition_waits.waiting_on(rt, object_name, record_id):
        run = rt.store.get_run(run_id)
        if run is None or run.status != "waiting" or run.waiting is None or run.waiting.kind != "condition":
            continue  # it moved on (timed out, cancelled): pruned below
        found = _node_of(rt, run)
        if found is None:
            continue
        node, bundle, flow = found
        sc = step_context(rt, run, node, bundle, flow)
        if _condition_holds(sc):
            _cancel_timer(rt, run)
            _resume(rt, run, node, Outcome.done(None, condition="became true"))
        else:
            _index_condition_wait(rt, run, node)
    condition_waits.prune(rt, object_name, record_id, lambda run_id: _waits_on_condition(rt, run_id))


# --------------------------------------------------------------------------- operator actions


def cancel_run(rt: Runtime, run: Run) -> None:
    if not run.is_open:
        raise EngineError(f"run {run.id} already ended ({run.status})", hint="only running or waiting runs can be cancelled")
    for child in rt.store.list_runs(parent_run_id=run.id, statuses=("running", "waiting")):
        cancel_run(rt, child)
    for message in rt.store.list_messages(run_id=run.id):
        if message.status == "pending":
            message.status = "failed"
            message.error, message.error_class = "run cancelled", "cancelled"
            rt.store.put_message(message)
    run = rt.store.get_run(run.id) or run
    finish(rt, run, "cancelled")


def retry_run(rt: Runtime, run: Run) -> None:
    """Run a failed run's failed step again (a new attempt) and continue from there."""
    if run.status != "failed":
        raise EngineError(f"run {run.id} is {run.status}", hint="only failed runs can be retried")
    if run.cursor is None:
        raise EngineError(f"run {run.id} has no step to retry")
    run.status = "running"
    run.error = run.error_class = None
    run.ended_at = None
    run.cursor.attempt += 1
    run.cursor.attempt_started_at = rt.now
    rt.trace("run", run=run, status="retried", step=run.cursor.step)
    advance(rt, run)
