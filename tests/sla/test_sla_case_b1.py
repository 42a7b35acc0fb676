"""The seeds' PowerX Case B-1 on the example repository (flows/sla/support-sla.yaml, Shanghai support hours):
a high-priority ticket created Monday 11:00 gets no response; at 14:00 (2 business hours across the lunch
break) it is escalated to the support manager, status "Pending Manager Review", with the reason and the
handler in the escalation log; the resolution clock keeps counting, and pauses while the customer is asked.
tests/flows/support-sla-b1.yaml checks the same through `flowctl test`; this looks inside the clocks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.project import load_project
from flowctl.sim.fixtures import load_records
from flowctl.sim.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC


def sh(d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, d, h, mi, tzinfo=SH).astimezone(UTC)


@pytest.fixture(scope="module")
def b1() -> Simulator:
    project = load_project(ROOT)
    sim = Simulator(TypedBundle.from_project(project), start_at=sh(2, 11),
                    flows=["support-sla", "ticket-dispatch", "duplicate-ticket-merge"])
    fixtures = load_records(project, ["tests/fixtures/users.yaml", "tests/fixtures/contacts.yaml",
                                      "tests/fixtures/new-cases.yaml"], base=ROOT / "tests/flows")
    ticket = next(r for r in fixtures if r["id"] == "t-300")
    sim.load([r for r in fixtures if r["id"] != "t-300"])
    sim.activate()
    sim.ingest({"type": "record_created", "object": "case",
                "record": {k: v for k, v in ticket.items() if k != "object"}})
    sim.run_until(sh(2, 16))
    return sim


def clock(sim: Simulator, name: str) -> dict[str, Any]:
    rt = sim.engine.rt
    rt.begin(sim.now)
    view = rt.sla.clock_view(rt, "t-300", name)
    assert view is not None
    return dict(view)


def test_no_response_escalates_to_the_manager_with_reason_and_handler(b1: Simulator) -> None:
    record = b1.store.get_record("case", "t-300")
    assert record is not None
    assert (record.fields["status"], record.fields["assignee"]) == ("pending_manager_review", "wang.fang")
    first = clock(b1, "first_response")
    assert (first["due_at"], first["breached_at"], first["status"]) == ("2026-03-02T06:00:00Z",
                                                                        "2026-03-02T06:00:00Z", "running")
    warning, breach = first["log"]
    assert (warning["kind"], warning["at"]) == ("warning", "2026-03-02T05:30:00Z")
    assert breach["kind"] == "breach" and breach["handler"] == "wang.fang" and not breach["late"]
    assert breach["reason"] == ("first_response (support-sla, targets[1]) missed its 2h target, "
                                "due 2026-03-02 14:00 +08:00")
    lines = [(e.at, e.text) for e in b1.store.timeline("case", "t-300")]
    assert (sh(2, 14), "SLA breach: first_response (support-sla, targets[1]) missed its 2h target, "
                       "due 2026-03-02 14:00 +08:00; handled by wang.fang") in lines
    assert (sh(2, 14), "SLA first_response breached (target 2h); escalated to wang.fang for review") in lines
    # The breach actions ran once, as one run of the policy's on_breach list, on the live version.
    [run] = [r for r in b1.store.list_runs() if r.flow == "sla:support-sla:on_breach"]
    assert run.status == "succeeded" and run.trigger["clock"] == "first_response"
    assert [a.step for a in b1.store.step_attempts(run.id)] == ["on_breach.0", "on_breach.1", "on_breach.2",
                                                                 "on_breach.3"]


def test_the_resolution_clock_keeps_counting(b1: Simulator) -> None:
    resolution = clock(b1, "resolution")
    # Monday 11:00-12:00 and 13:00-16:00: 4 business hours of 16, not stopped by the escalation.
    assert (resolution["status"], resolution["elapsed_seconds"], resolution["breached"]) == ("running", 4 * 3600,
                                                                                            False)
    assert resolution["due_at"] == "2026-03-04T03:00:00Z"  # Wednesday 11:00 while nothing pauses it


def test_flowctl_test_runs_case_b1() -> None:
    result = CliRunner().invoke(app, ["test", str(ROOT / "tests/flows/support-sla-b1.yaml")])
    assert result.exit_code == 0, result.output
    assert "1 passed, 0 failed" in result.output
