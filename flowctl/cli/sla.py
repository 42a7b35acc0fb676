"""`flowctl sla status RECORD` and `flowctl sla revert RECORD CLOCK`: SLA clocks on the runner.

Thin wrappers over flowctl.runner.client; `--format json` prints the runner
API's answer unchanged (documented in docs/sla.md). `show_figures` renders the
`sla` part of `flowctl stats`.
"""

from __future__ import annotations

from typing import Any

import typer

from flowctl.cli.common import console, handle_errors
from flowctl.cli.ops import Format, FormatOpt, RunnerOpt, TokenOpt, _ask, _short_time, _show, _table
from flowctl.engine.sla_clocks import format_seconds

sla_app = typer.Typer(
    name="sla",
    help="SLA clocks on the runner.\n\nExample:\n\n    flowctl sla status t-300\n    flowctl sla revert t-300 first_response",
    no_args_is_help=True,
)

ObjectOpt = typer.Option("case", "--object", "-o", help="The record's object (default: case).")


def _state(clock: dict[str, Any]) -> str:
    # A stopped clock is the outcome people ask about: was the target met or missed?
    if clock["status"] == "stopped":
        words = ["stopped, missed" if clock.get("breached") else "stopped, met"]
    else:
        words = [clock["status"]]
        if clock.get("breached"):
            words.append("breached")
    if clock.get("reverted_at"):
        words.append("reverted")
    return ", ".join(words)


def _left(clock: dict[str, Any]) -> str:
    if clock.get("overdue_seconds"):
        return f"{format_seconds(clock['overdue_seconds'])} overdue"
    if clock["status"] in ("stopped", "cancelled"):
        return "-"
    return f"{format_seconds(clock.get('remaining_seconds'))} left"


@sla_app.command("status")
@handle_errors
def status(
    record: str = typer.Argument(..., help="The record id, e.g. t-300."),
    object_name: str = ObjectOpt,
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """A record's SLA clocks: status, target, due time, elapsed business time, breach and escalation log.

    Example:

        flowctl sla status t-300 --object case
    """
    data = _ask(runner, token, fmt, lambda c: c.sla_status(object_name, record))
    if data is None:
        return
    if not data["clocks"]:
        console.print(f"{object_name} {record} has no SLA clocks")
        return
    console.print(f"SLA clocks of {object_name} {record} at {_short_time(data.get('at'))} UTC")
    table = _table(("CLOCK", "POLICY", "STATE", "TARGET", "DUE (UTC)", "ELAPSED", "LEFT"))
    for c in data["clocks"]:
        # A cancelled clock (applies_when turned false) has no deadline any more.
        due = "-" if c["status"] == "cancelled" else _short_time(c.get("due_at"))
        table.add_row(c["clock"], c["policy"], _state(c), f"{c['target']} ({c['target_name']})",
                      due, format_seconds(c.get("elapsed_seconds")), _left(c))
    _show(table)
    for c in data["clocks"]:
        for entry in c.get("log") or []:
            late = " (late)" if entry.get("late") else ""
            handler = f"; handler {entry['handler']}" if entry.get("handler") else ""
            console.print(f"  {_short_time(entry.get('at'))}  {c['clock']} {entry['kind']}{late}: "
                          f"{entry['reason']}{handler}")


@sla_app.command("revert")
@handle_errors
def revert(
    record: str = typer.Argument(..., help="The record id, e.g. t-300."),
    clock: str = typer.Argument(..., help="The clock (first_response), or <policy>:<clock>."),
    object_name: str = ObjectOpt,
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Undo a breach: restore the fields the clock's breach actions changed (needs an operator token).

    Fields someone changed after the breach are left alone and listed. The revert is audited with who did it.

    Example:

        flowctl sla revert t-300 first_response
    """
    data = _ask(runner, token, fmt, lambda c: c.sla_revert(object_name, record, clock))
    if data is None:
        return
    restored = ", ".join(f"{k} → {v}" for k, v in data["restored"].items()) or "nothing to restore"
    console.print(f"reverted the {data['clock']} breach of {object_name} {record} ({data['policy']}): {restored}")
    if data.get("kept"):
        console.print("left alone (changed since the breach): " + ", ".join(data["kept"]))


def show_figures(figures: dict[str, Any] | None) -> None:
    """The SLA part of `flowctl stats`: achievement rate, breach count, average overdue time."""
    if not figures or not figures.get("clocks"):
        return
    rate = "-" if figures["achievement_rate"] is None else f"{figures['achievement_rate'] * 100:.1f}%"
    reverted = f" ({figures['reverted']} reverted)" if figures.get("reverted") else ""
    console.print(
        f"SLA: {figures['clocks']} clocks, {figures['met']} met, {figures['breached']} breached{reverted}; "
        f"achievement {rate}; average overdue {format_seconds(_whole(figures['avg_overdue_seconds']))}"
    )
    numbers = ("CLOCKS", "MET", "BREACHED", "ACHIEVED", "AVG OVERDUE", "MAX OVERDUE")
    table = _table(("POLICY", "CLOCK", *numbers), right=numbers)
    for row in figures["by_clock"]:
        achieved = "-" if row["achievement_rate"] is None else f"{row['achievement_rate'] * 100:.1f}%"
        table.add_row(row["policy"], row["clock"], str(row["clocks"]), str(row["met"]), str(row["breached"]),
                      achieved, format_seconds(_whole(row["avg_overdue_seconds"])),
                      format_seconds(_whole(row["max_overdue_seconds"])))
    _show(table)


def _whole(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds)


def register(app: typer.Typer) -> None:
    app.add_typer(sla_app)
