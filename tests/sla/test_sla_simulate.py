"""`flowctl simulate` shows SLA clocks next to the flow: started, paused, resumed, warned, breached, due times."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.render.trace import describe

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")


def simulate(*args: str) -> str:
    result = CliRunner().invoke(app, ["simulate", "ticket-dispatch", "--record", "tests/fixtures/new-cases.yaml#t-100",
                                      *args, "--for", "3d"], catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_text_trace_shows_the_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = simulate()
    # Created Monday 17:00 Shanghai (09:00 UTC): 2 business hours are Monday 17-18 and Tuesday 09-10.
    assert ("2026-01-05 09:00:00  ⏱ SLA first_response (support-sla) on case/t-100 started: target 2h, "
            "due 2026-01-06 02:00:00") in out
    assert "2026-01-06 01:30:00  ⏱ SLA first_response (support-sla) on case/t-100 warning: due 2026-01-06 02:00:00" \
        in out
    assert ("2026-01-06 02:00:00  ⚠ SLA first_response (support-sla) on case/t-100 breached: target 2h missed, "
            "due 2026-01-06 02:00:00") in out
    assert "run-4 started: sla:support-sla:on_breach on case/t-100 (trigger sla)" in out
    assert "escalation 1: 6h elapsed, 4h overdue" in out


def test_the_json_trace_has_sla_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    trace = json.loads(simulate("--format", "json"))["trace"]
    sla = [(e["status"], e["detail"]["clock"], e["detail"].get("due_at")) for e in trace if e["kind"] == "sla"]
    assert sla[:2] == [("started", "first_response", "2026-01-06T02:00:00Z"),
                       ("started", "resolution", "2026-01-07T09:00:00Z")]
    assert ("breached", "first_response", "2026-01-06T02:00:00Z") in sla


def test_pause_resume_retarget_and_stop_lines(sla_world: Callable[..., Any],
                                              make_policy: Callable[..., dict[str, Any]]) -> None:
    world = sla_world(make_policy("ny-office"), dt.datetime(2026, 1, 9, 10, tzinfo=NY))
    world.create("t-1")
    world.at(dt.datetime(2026, 1, 9, 12, tzinfo=NY)).update("t-1", priority="high")
    world.at(dt.datetime(2026, 1, 9, 15, tzinfo=NY)).update("t-1", status="pending_customer")
    world.at(dt.datetime(2026, 1, 10, 12, tzinfo=NY)).update("t-1", status="in_progress")
    world.at(dt.datetime(2026, 1, 12, 10, tzinfo=NY)).update("t-1", status="resolved")
    lines = [shown[1] for e in world.sla_trace() if e.detail["clock"] == "resolution"
             and (shown := describe(e)) is not None]
    head = "SLA resolution (support-sla) on case/t-1"
    assert lines == [
        f"{head} started: target 40h, due 2026-01-15 19:00:00",  # Thursday 14:00 New York
        f"{head} re-targeted 40h → 8h: 2h elapsed, 6h left, due 2026-01-09 23:00:00",
        f"{head} paused: 5h elapsed, 3h left",
        f"{head} resumed: 5h elapsed, 3h left, due 2026-01-12 17:00:00",
        f"{head} stopped: 6h elapsed, 2h left, met",
    ]
