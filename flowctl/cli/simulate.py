"""`flowctl simulate FLOW --record FILE_OR_ID ...`: a step-by-step trace on a virtual clock.

A thin wrapper over flowctl.sim.simulate; rendering lives in flowctl.render.trace.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path

import typer

from flowctl.cli.common import console, handle_errors, print_json
from flowctl.errors import ProjectError
from flowctl.render.trace import render_text, trace_json
from flowctl.sim.simulate import EVENTS, parse_sets, simulate_flow


class TraceFormat(StrEnum):
    text = "text"
    json = "json"


def _start(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ProjectError(f"--start: '{value}' is not a timestamp", hint="e.g. 2026-03-06T09:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@handle_errors
def simulate(
    flow: str = typer.Argument(..., help="The flow to simulate (its name)."),
    record: str | None = typer.Option(
        None, "--record", "-r", help="A fixture file (its first record), FILE#id, or an id found in tests/fixtures/."
    ),
    event: str | None = typer.Option(
        None, "--event", "-e", help=f"What happens to the record: {', '.join(EVENTS)} (default: what the trigger listens to)."
    ),
    sets: list[str] = typer.Option([], "--set", "-s", help="field=value, repeatable: values for the update (or the new record)."),
    run_for: str = typer.Option("7d", "--for", help="How long the virtual clock runs, e.g. 7d, 12h."),
    fmt: TraceFormat = typer.Option(TraceFormat.text, "--format", "-f", help="text (for people) or json (documented)."),
    start: str | None = typer.Option(None, "--start", help="Virtual start time (ISO 8601; default 2026-01-05T09:00:00Z)."),
    faults: list[str] = typer.Option(
        [], "--fault", help="STEP=ERROR or STEP=ERROR*TIMES, repeatable: fail a step's first attempts (e.g. 'push=HTTP 503*3')."
    ),
    project: Path = typer.Option(Path("."), "--project", "-p", help="The flows repository."),
) -> None:
    """Run one flow against a fixture record on a virtual clock and print every step.

    Nothing is sent and nothing leaves the machine: messages go to recording
    connectors. The trace shows each step with its virtual time, status and
    attempt, the rendered messages, record changes, timers, retries and
    suppressed triggers. Exit 0 when the simulation ran, 1 on an error.

    Example:

        flowctl simulate welcome-new-customer --record tests/fixtures/new-contacts.yaml#c-101
        flowctl simulate erp-order-sync --record d-2 --set stage=won --fault 'push_order_to_erp=HTTP 503*3'
        flowctl simulate birthday-greeting --record c-1 --for 365d --format json
    """
    result = simulate_flow(project, flow, record, event=event, sets=parse_sets(sets), run_for=run_for,
                           start_at=_start(start), faults=faults)
    if fmt == TraceFormat.json:
        print_json(trace_json(result))
    else:
        render_text(result, console)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
