"""Operating the runner: `events send`, `runs list|show|retry|cancel`, `tasks list|complete`, `run`,
`records show`, `stats`, `report failures`.

Thin wrappers over flowctl.runner.client; `--format json` prints the runner
API's answer unchanged (documented in docs/formats/api.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from flowctl.cli.common import console, err_console, handle_errors, print_json
from flowctl.errors import FlowctlError
from flowctl.runner.client import RunnerClient

RunnerOpt = typer.Option(
    None, "--runner", help="Runner URL (default: FLOWCTL_RUNNER_URL, flowctl.yaml, then :8787)."
)
TokenOpt = typer.Option(
    None, "--token", help="Bearer token (default: FLOWCTL_TOKEN, then .flowctl/admin.token)."
)


class Format(StrEnum):
    text = "text"
    json = "json"


FormatOpt = typer.Option(Format.text, "--format", "-f", help="text or json.")


def _show(renderable: Any) -> None:
    """Print a table at the terminal's width, or wide when piped (a file or a pager wraps nothing)."""
    if console.is_terminal:
        console.print(renderable)
    else:
        Console(width=200, highlight=False, soft_wrap=True).print(renderable)


def _client(runner: str | None, token: str | None) -> RunnerClient:
    return RunnerClient.from_options(runner, token)


def _ask(
    runner: str | None, token: str | None, fmt: Format, request: Callable[[RunnerClient], dict[str, Any]]
) -> dict[str, Any] | None:
    """Send one request to the runner and return its answer for the text rendering.

    With `--format json` the answer is printed unchanged instead and None comes back: nothing is left to render.
    """
    with _client(runner, token) as client:
        answer = request(client)
    if fmt == Format.json:
        print_json(answer)
        return None
    return answer


def _table(
    columns: Iterable[str],
    *,
    title: str | None = None,
    wrap: Collection[str] | None = None,
    right: Collection[str] = (),
) -> Table:
    """A borderless table; `wrap`: the only columns that may wrap (None: all may), `right`: right-justified ones."""
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for col in columns:
        table.add_column(
            col, no_wrap=wrap is not None and col not in wrap, justify="right" if col in right else "left"
        )
    return table


def _short_time(value: str | None) -> str:
    if not value:
        return "-"
    return value.replace("T", " ").split(".")[0].removesuffix("Z")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


_STATUS_STYLE = {
    "succeeded": "green",
    "succeeded_compensated": "green",
    "failed": "red",
    "cancelled": "dim",
    "waiting": "yellow",
    "running": "cyan",
    "retrying": "yellow",
    "skipped": "dim",
    "sent": "green",
    "pending": "yellow",
    "sending": "cyan",
}


def _status(value: str | None) -> str:
    if not value:
        return "-"
    style = _STATUS_STYLE.get(value)
    return f"[{style}]{value}[/]" if style else value


# --------------------------------------------------------------------------- events


events_app = typer.Typer(
    name="events",
    help="Send record events to the runner.\n\nExample:\n\n    flowctl events send samples/events/contact-created.json",
    no_args_is_help=True,
)


def read_events(path: Path) -> list[dict[str, Any]]:
    """One event or a list, from a JSON or YAML file (`-` reads stdin as JSON or YAML)."""
    import sys

    from flowctl.resources.yamlload import YamlLoadError, load_text

    name = "<stdin>" if str(path) == "-" else str(path)
    if str(path) == "-":
        text = sys.stdin.read()
    else:
        if not path.is_file():
            raise FlowctlError(
                f"no such file: {path}", hint="pass a .json or .yaml file with one event or a list"
            )
        text = path.read_text(encoding="utf-8")
    data: Any
    try:
        data = json.loads(text)
    except json.JSONDecodeError as json_error:
        if path.suffix == ".json":
            raise FlowctlError(
                f"{name}:{json_error.lineno}:{json_error.colno}: invalid JSON: {json_error.msg}"
            ) from None
        try:
            data = load_text(text).data
        except YamlLoadError as exc:
            raise FlowctlError(
                f"{name}:{exc.position.line}:{exc.position.column}: {exc.message}", hint=exc.hint
            ) from None
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FlowctlError(
                f"{name}: event {i + 1} is not an object", hint='an event is {"type": ..., "object": ...}'
            )
    return items


@events_app.command("send")
@handle_errors
def events_send(
    files: list[Path] = typer.Argument(
        ..., help="JSON or YAML files, each one event or a list (`-` for stdin)."
    ),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Post events to the runner (the same shape the CRM posts, SPEC §9) and show what each started.

    Example:

        flowctl events send samples/events/*.json

        echo '{"type": "record_created", "object": "contact", "record": {"id": "c-9"}}' | flowctl events send -
    """
    batches = [(f, read_events(f)) for f in files]
    answers: list[dict[str, Any]] = []
    with _client(runner, token) as client:
        for path, events in batches:
            result = client.send_events(events)
            for event, answer in zip(events, result, strict=False):
                answers.append({"file": str(path), "event": event, "answer": answer})
    if fmt == Format.json:
        print_json([{"file": a["file"], **a["answer"]} for a in answers])
        return
    failed = 0
    for a in answers:
        ev, ans = a["event"], a["answer"]
        what = (
            ev.get("name")
            if ev.get("type") == "event"
            else f"{ev.get('object')}/{(ev.get('record') or {}).get('id')}"
        )
        label = f"{a['file']}: {ev.get('type')} {what}"
        if "error" in ans:
            failed += 1
            console.print(f"[red]✗[/] {label}: {ans['error']}")
        elif ans.get("duplicate"):
            console.print(f"[dim]= {label}: duplicate of {ans['event_id']} (ignored)[/]")
        else:
            runs = ", ".join(ans.get("runs") or []) or "no run started"
            console.print(f"[green]✓[/] {label} → {ans['event_id']}: {runs}")
            for s in ans.get("suppressed") or []:
                console.print(f"    [dim]{s.get('flow')}: not started ({s.get('reason')})[/]")
    if failed:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- runs


runs_app = typer.Typer(
    name="runs",
    help="Runs on the runner.\n\nExample:\n\n    flowctl runs list --status failed\n\n    flowctl runs show run-12",
    no_args_is_help=True,
)


@runs_app.command("list")
@handle_errors
def runs_list(
    flow: str | None = typer.Option(None, "--flow", help="Only this flow."),
    status: str | None = typer.Option(None, "--status", help="Comma-separated: running,waiting,failed,..."),
    record: str | None = typer.Option(None, "--record", help="Only runs on this record id."),
    obj: str | None = typer.Option(None, "--object", help="Only runs on records of this object."),
    since: str | None = typer.Option(
        None, "--since", help="Started within this duration (24h) or after a timestamp."
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="At most this many (newest first)."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """List runs, newest first.

    Example:

        flowctl runs list --flow welcome-new-customer --status waiting,failed
    """
    page = _ask(
        runner, token, fmt, lambda c: c.runs(flow=flow, status=status, record=record, object=obj, since=since, limit=limit)
    )
    if page is None:
        return
    runs = page["runs"]
    if not runs:
        console.print("no runs")
        return
    table = _table(
        ("RUN", "FLOW", "V", "RECORD", "STATUS", "STEP", "STARTED", "DURATION", "ERROR"), wrap=("ERROR",)
    )
    for r in runs:
        record_label = f"{r['object']}/{r['record_id']}" if r.get("record_id") else "-"
        step = r["step"] or "-"
        if r.get("waiting_for"):
            step += f" ({r['waiting_for']})"
        table.add_row(
            r["id"],
            r["flow"],
            str(r["version"]),
            record_label,
            _status(r["status"]),
            step,
            _short_time(r["started_at"]),
            _duration(r["duration_seconds"]),
            r.get("error_class") or "",
        )
    _show(table)
    if page.get("next") is not None:
        err_console.print(
            f"[dim]more runs: use --limit or filters (next cursor {page['next']})[/]", markup=True
        )


@runs_app.command("show")
@handle_errors
def runs_show(
    run_id: str = typer.Argument(..., help="The run id, e.g. run-12."),
    trace: bool = typer.Option(False, "--trace", help="Also print the run's trace."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Show a run: every step attempt with its status and error, the messages it sent and its tasks.

    Example:

        flowctl runs show run-12 --trace
    """
    run = _ask(runner, token, fmt, lambda c: c.run(run_id))
    if run is None:
        return
    record = f"{run['object']}/{run['record_id']}" if run.get("record_id") else "no record"
    console.print(
        f"[bold]{run['id']}[/]  {run['flow']} v{run['version']}  {record}  {_status(run['status'])}"
        + (f" ({run['outcome']})" if run.get("outcome") else "")
    )
    console.print(
        f"started {_short_time(run['started_at'])}  ended {_short_time(run['ended_at'])}  "
        f"duration {_duration(run['duration_seconds'])}" + ("  [yellow]late[/]" if run.get("late") else "")
    )
    if run.get("error"):
        console.print(f"[red]error[/] ({run.get('error_class') or 'error'}): {run['error']}")
    if run.get("waiting"):
        w = run["waiting"]
        until = f" until {_short_time(w.get('until'))}" if w.get("until") else ""
        console.print(f"waiting for {w.get('kind')}{until} at step {run.get('step')}")
    steps = _table(("STEP", "TRY", "STATUS", "STARTED", "ENDED", "DETAIL"), title="steps", wrap=("DETAIL",))
    for s in run["steps"]:
        detail = ""
        if s.get("error"):
            detail = f"{s.get('error_class') or 'error'}: {s['error']}"
        elif s.get("reason"):
            detail = s["reason"]
        elif s.get("output") is not None:
            detail = json.dumps(s["output"], ensure_ascii=False, default=str)[:100]
        steps.add_row(
            s["step"],
            str(s["attempt"]),
            _status(s["status"]),
            _short_time(s["started_at"]),
            _short_time(s["ended_at"]),
            detail,
        )
    _show(steps)
    if run["messages"]:
        msgs = _table(("ID", "CHANNEL", "TO", "SUBJECT", "STATUS", "KEY"), title="messages")
        for m in run["messages"]:
            msgs.add_row(
                m["id"],
                m["channel"],
                ", ".join(m.get("to") or []) or (m.get("url") or "-"),
                m.get("subject") or m.get("template") or "-",
                _status(m["status"]),
                m["idempotency_key"],
            )
        _show(msgs)
    if run["tasks"]:
        _print_tasks(run["tasks"], title="tasks")
    if trace:
        console.print("[bold]trace[/]")
        for e in run["trace"]:
            detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items())
            console.print(
                f"  {_short_time(e['at'])}  {e['kind']:<8} {e.get('step') or '':<16} "
                f"{e.get('status') or '':<12} {detail}"
            )


def _run_action(action: str, run_id: str, runner: str | None, token: str | None, fmt: Format) -> None:
    run = _ask(runner, token, fmt, lambda c: c.retry_run(run_id) if action == "retry" else c.cancel_run(run_id))
    if run is None:
        return
    console.print(
        f"{run['id']}: {_status(run['status'])}" + (f" at step {run['step']}" if run.get("step") else "")
    )


@runs_app.command("retry")
@handle_errors
def runs_retry(
    run_id: str = typer.Argument(..., help="A failed run."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Retry a failed run from the step that failed (operator).

    Example:

        flowctl runs retry run-12
    """
    _run_action("retry", run_id, runner, token, fmt)


@runs_app.command("cancel")
@handle_errors
def runs_cancel(
    run_id: str = typer.Argument(..., help="A running or waiting run."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Cancel a running or waiting run (operator).

    Example:

        flowctl runs cancel run-12
    """
    _run_action("cancel", run_id, runner, token, fmt)


# --------------------------------------------------------------------------- tasks


tasks_app = typer.Typer(
    name="tasks",
    help=(
        "Human tasks: approvals, human tasks, compensation tasks.\n\n"
        "Example:\n\n    flowctl tasks list\n\n    flowctl tasks complete task-3 --decision approved"
    ),
    no_args_is_help=True,
)


def _print_tasks(tasks: list[dict[str, Any]], title: str | None = None) -> None:
    table = _table(("TASK", "KIND", "SUBJECT", "ASSIGNEE", "STATUS", "DUE", "RUN"), title=title, wrap=("SUBJECT",))
    for t in tasks:
        status = t["status"] + (f" ({t['decision']})" if t.get("decision") else "")
        assignee = t.get("assignee") or ", ".join(t.get("approvers") or []) or "-"
        table.add_row(
            t["id"],
            t["kind"],
            t["subject"],
            assignee,
            status,
            _short_time(t.get("due_at")),
            t.get("run_id") or "-",
        )
    _show(table)


@tasks_app.command("list")
@handle_errors
def tasks_list(
    status: str = typer.Option("open", "--status", help="open, completed, cancelled, expired or all."),
    assignee: str | None = typer.Option(None, "--assignee", help="Only tasks assigned to this user."),
    run_id: str | None = typer.Option(None, "--run", help="Only tasks of this run."),
    kind: str | None = typer.Option(None, "--kind", help="approval, human_task, compensation, task, ..."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """List tasks (open ones by default).

    Example:

        flowctl tasks list --kind compensation
    """
    with _client(runner, token) as client:
        tasks = client.tasks(status=status, assignee=assignee, run_id=run_id, kind=kind)
    if fmt == Format.json:
        print_json({"tasks": tasks})
        return
    if not tasks:
        console.print(f"no {status if status != 'all' else ''} tasks".replace("  ", " "))
        return
    _print_tasks(tasks)


@tasks_app.command("complete")
@handle_errors
def tasks_complete(
    task_id: str = typer.Argument(..., help="The task id, e.g. task-3."),
    decision: str = typer.Option(
        ..., "--decision", "-d", help="approved | rejected (approvals), done | rejected."
    ),
    comment: str | None = typer.Option(None, "--comment", "-m", help="A comment kept with the task."),
    by: str | None = typer.Option(None, "--by", help="Who decided (default: the token's name)."),
    data: list[str] = typer.Option([], "--data", help="key=value kept as completion data (repeatable)."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Complete a task; the run waiting on it continues (operator).

    Example:

        flowctl tasks complete task-3 --decision approved --by wang.fang -m "ok for 12% discount"
    """
    values: dict[str, Any] = {}
    for item in data:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FlowctlError(f"--data {item!r}: expected key=value")
        values[key] = value
    task = _ask(runner, token, fmt, lambda c: c.complete_task(task_id, decision, comment=comment, by=by, data=values))
    if task is None:
        return
    console.print(
        f"{task['id']}: {task['status']} ({task['decision']}) by {task.get('by') or '-'}"
        # A plain create_task task is a to-do: its run never waits on it, so completing it moves nothing.
        + (f"; run {task['run_id']} continues" if task.get("run_id") and task.get("kind") != "task" else "")
    )


# --------------------------------------------------------------------------- run, records


@handle_errors
def run_flow(
    flow: str = typer.Argument(..., help="A flow with a manual trigger."),
    record: str | None = typer.Option(None, "--record", "-r", help="The record id to run on."),
    obj: str | None = typer.Option(None, "--object", help="The record's object (default: the flow's)."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Start a flow on the runner by hand (operator).

    Example:

        flowctl run send-renewal-quote --record d-17
    """
    result = _ask(runner, token, fmt, lambda c: c.start_run(flow, record, obj))
    if result is None:
        return
    if result["runs"]:
        console.print(f"started {', '.join(result['runs'])} ({flow})")
    else:
        reasons = ", ".join(str(s.get("reason")) for s in result.get("suppressed") or []) or "no run started"
        console.print(f"{flow}: not started ({reasons})")


records_app = typer.Typer(
    name="records",
    help="Records the runner keeps.\n\nExample:\n\n    flowctl records show contact c-1",
    no_args_is_help=True,
)


@records_app.command("show")
@handle_errors
def records_show(
    obj: str = typer.Argument(..., metavar="OBJECT", help="The object, e.g. contact."),
    record_id: str = typer.Argument(..., metavar="ID", help="The record id."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Show a record's fields and its timeline.

    Example:

        flowctl records show contact c-1
    """
    rec = _ask(runner, token, fmt, lambda c: c.record(obj, record_id))
    if rec is None:
        return
    console.print(f"[bold]{rec['object']}/{rec['id']}[/]" + ("  [red]deleted[/]" if rec["deleted"] else ""))
    for key, value in rec["fields"].items():
        console.print(f"  {key}: {json.dumps(value, ensure_ascii=False, default=str)}")
    if rec["timeline"]:
        console.print("[bold]timeline[/]")
        for e in rec["timeline"]:
            console.print(
                f"  {_short_time(e['at'])}  {e['text']}"
                + (f"  [dim]({e['flow']})[/]" if e.get("flow") else "")
            )


# --------------------------------------------------------------------------- stats and reports


@handle_errors
def stats(
    flow: str | None = typer.Option(None, "--flow", help="Only this flow."),
    since: str | None = typer.Option(
        None, "--since", help="Runs started within this duration (7d) or after a timestamp."
    ),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Per flow: triggered, succeeded, failed, compensated, success rate, average and p95 duration, actions;
    then SLA clocks: achievement rate, breach count, average overdue time.

    Example:

        flowctl stats --since 7d
    """
    from flowctl.cli.sla import show_figures  # imported here: flowctl.cli.sla builds on this module

    data = _ask(runner, token, fmt, lambda c: c.stats(flow=flow, since=since))
    if data is None:
        return
    if not data["flows"]:
        console.print("no runs yet")
        show_figures(data.get("sla"))
        return
    numbers = ("TRIGGERED", "OK", "COMPENSATED", "FAILED", "OPEN", "SUCCESS", "AVG", "P95")
    table = _table(("FLOW", *numbers, "ACTIONS"), right=numbers)
    for f in data["flows"]:
        rate = "-" if f["success_rate"] is None else f"{f['success_rate'] * 100:.1f}%"
        actions = ", ".join(f"{k} {v}" for k, v in f["actions"].items()) or "-"
        table.add_row(
            f["flow"],
            str(f["triggered"]),
            str(f["succeeded"]),
            str(f["compensated"]),
            str(f["failed"]),
            str(f["running"] + f["waiting"]),
            rate,
            _duration(f["avg_duration_seconds"]),
            _duration(f["p95_duration_seconds"]),
            actions,
        )
    _show(table)
    show_figures(data.get("sla"))


report_app = typer.Typer(
    name="report",
    help="Reports over the runner's execution logs.\n\nExample:\n\n    flowctl report failures --since 7d",
    no_args_is_help=True,
)


@report_app.command("failures")
@handle_errors
def report_failures(
    flow: str | None = typer.Option(None, "--flow", help="Only this flow."),
    since: str | None = typer.Option(None, "--since", help="Within this duration (7d) or after a timestamp."),
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Failures by flow, step and error class; retry success rate; time to human compensation.

    Example:

        flowctl report failures --flow erp-sync
    """
    data = _ask(runner, token, fmt, lambda c: c.failures(flow=flow, since=since))
    if data is None:
        return
    if not data["failures"]:
        console.print("no failed step attempts")
    else:
        table = _table(
            ("FLOW", "STEP", "ACTION", "ERROR CLASS", "CATEGORY", "ATTEMPTS"), title="failed attempts", right=("ATTEMPTS",)
        )
        for f in data["failures"]:
            table.add_row(
                f["flow"],
                f["step"],
                f.get("action") or "-",
                f.get("error_class") or "-",
                f["category"],
                str(f["attempts"]),
            )
        _show(table)
    r = data["retries"]
    rate = "-" if r["retry_success_rate"] is None else f"{r['retry_success_rate'] * 100:.1f}%"
    console.print(
        f"retries: {r['steps_retried']} step(s) retried, {r['recovered']} recovered (success rate {rate})"
    )
    c = data["compensation"]
    console.print(
        f"compensation: {c['tasks']} task(s), {c['open']} open, {c['done']} done, {c['rejected']} rejected; "
        f"time to human avg {_duration(c['avg_seconds_to_human'])}, p95 {_duration(c['p95_seconds_to_human'])}"
    )
    if data["messages"]:
        console.print(
            "failed messages: "
            + ", ".join(f"{m['channel']} {m['error_class']} ×{m['count']}" for m in data["messages"])
        )
    crm = data["crm_forwards"]
    if crm["failed"] or crm["pending"]:
        console.print(f"CRM forwards: {crm['failed']} failed, {crm['pending']} pending")


def register(app: typer.Typer) -> None:
    app.add_typer(events_app)
    app.add_typer(runs_app)
    app.add_typer(tasks_app)
    app.add_typer(records_app)
    app.add_typer(report_app)
    app.command("run")(run_flow)
    app.command("stats")(stats)
