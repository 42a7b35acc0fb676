"""End to end: SLA clocks in `flowctl runner serve` (a real subprocess on SQLite, wall clock).

A case is created; its clock is visible through `flowctl sla status`; the runner is killed (-9) before
the short target passes and restarted after: the breach fires exactly once, its actions change the case;
`flowctl sla revert` (operator only) restores it and is audited with who reverted; `flowctl stats` counts it.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

# The runner process helper lives with the e2e tests (tests/e2e/conftest.py); make `e2e` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e.conftest import RunnerProcess

from flowctl.resources.bundle import Bundle
from flowctl.runner.client import RunnerClient

pytestmark = pytest.mark.e2e

TARGET_SECONDS = 4

BUNDLE: dict[str, Any] = {
    "object": {"case": {
        "kind": "object", "name": "case",
        "fields": {"subject": {"type": "string"}, "status": {"type": "string"}, "priority": {"type": "string"},
                   "assignee": {"type": "ref", "object": "user"}, "first_response_at": {"type": "datetime"}},
    }},
    "team": {"support": {"kind": "team", "name": "support", "manager": "wang.fang",
                         "members": [{"user": "li.lei"}, {"user": "han.meimei"}]}},
    "sla_policy": {"support-sla": {
        "kind": "sla_policy", "name": "support-sla", "object": "case",
        "targets": [{"default": True, "first_response": f"{TARGET_SECONDS}s", "resolution": "8h"}],
        "clocks": {"first_response": {"stop_when": {"field": "first_response_at", "op": "is_set"}}},
        "on_breach": [
            {"action": "update_record", "set": {"status": "pending_manager_review"}},
            {"action": "assign_record", "strategy": "fixed", "user": "{{ team('support').manager }}",
             "field": "assignee"},
            {"action": "notify", "to": "{{ team('support').manager }}",
             "message": "{{ record.subject }} missed {{ sla.clock }} ({{ sla.target }})"},
        ],
    }},
}


def _iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _wait(proc: RunnerProcess, what: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with proc.client() as c:
            data = c.get("/v1/sla/case/t-1").json()
        if what(data):
            return data
        time.sleep(0.1)
    raise AssertionError(f"SLA clocks did not get there: {json.dumps(data, indent=2)}\n{proc.log()[-3000:]}")


def test_clock_status_breach_after_restart_revert_and_stats(tmp_path: Path) -> None:
    proc = RunnerProcess(tmp_path, {})
    try:
        proc.start()
        with RunnerClient(proc.url, proc.token) as client:
            client.put_bundle(Bundle(resources=BUNDLE), 0, {"tag": "flows/v1", "publisher": "e2e"})
        with proc.client() as c:
            r = c.post("/v1/events", json={"type": "record_created", "object": "case", "idempotency_key": "k-1",
                                           "record": {"id": "t-1", "subject": "Login broken", "status": "in_progress",
                                                      "assignee": "li.lei"}})
            assert r.status_code == 202, r.text

        shown = proc.cli("sla", "status", "t-1", "--format", "json")
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        clocks = {c["clock"]: c for c in status["clocks"]}
        first = clocks["first_response"]
        assert (first["status"], first["breached"], first["target"]) == ("running", False, f"{TARGET_SECONDS}s")
        assert _iso(first["due_at"]) - _iso(first["started_at"]) == dt.timedelta(seconds=TARGET_SECONDS)
        text = proc.cli("sla", "status", "t-1")
        assert text.returncode == 0 and "first_response" in text.stdout and "running" in text.stdout

        # Down across the due time: the timer is in SQLite and fires once after the restart.
        proc.kill9()
        time.sleep(max(0.0, (_iso(first["due_at"]) - dt.datetime.now(dt.UTC)).total_seconds()) + 0.5)
        proc.start()
        data = _wait(proc, lambda d: any(c["clock"] == "first_response" and c["breached"] for c in d["clocks"]))
        time.sleep(1.0)  # anything that would fire twice has had its chance
        with proc.client() as c:
            runs = c.get("/v1/runs", params={"flow": "sla:support-sla:on_breach"}).json()["runs"]
            record = c.get("/v1/records/case/t-1").json()
        assert len(runs) == 1 and runs[0]["status"] == "succeeded", runs
        fields = record["fields"]
        assert (fields["status"], fields["assignee"]) == ("pending_manager_review", "wang.fang")
        assert any(line["text"].startswith("SLA breach: first_response") for line in record["timeline"])
        [breached] = [c for c in data["clocks"] if c["clock"] == "first_response"]
        assert [e["kind"] for e in breached["log"]] == ["breach"] and breached["log"][0]["handler"] == "wang.fang"

        # Revert: viewers may not, operators may; the audit says who.
        viewer = proc.cli("runner", "token", "create", "--role", "viewer").stdout.strip().splitlines()[-1]
        operator = proc.cli("runner", "token", "create", "--role", "operator").stdout.strip().splitlines()[-1]
        denied = proc.cli("sla", "revert", "t-1", "first_response", token=viewer)
        assert denied.returncode == 1 and "operator" in denied.stderr, denied.stderr
        done = proc.cli("sla", "revert", "t-1", "first_response", token=operator)
        assert done.returncode == 0, done.stderr
        assert "reverted the first_response breach of case t-1" in done.stdout
        assert "status → in_progress" in done.stdout and "assignee → li.lei" in done.stdout
        again = proc.cli("sla", "revert", "t-1", "first_response", token=operator)
        assert again.returncode == 1 and "already reverted" in again.stderr
        missing = proc.cli("sla", "revert", "t-1", "no_such_clock", token=operator)
        assert missing.returncode == 1 and "no SLA clock 'no_such_clock'" in missing.stderr
        with proc.client() as c:
            fields = c.get("/v1/records/case/t-1").json()["fields"]
            audit = c.get("/v1/audit", params={"action": "sla.revert"}).json()["entries"]
            unknown = c.get("/v1/sla/case/nope")
        assert (fields["status"], fields["assignee"]) == ("in_progress", "li.lei")
        [entry] = audit
        assert entry["role"] == "operator" and entry["target"] == "case/t-1/first_response"
        assert entry["detail"]["restored"] == {"status": "in_progress", "assignee": "li.lei"}
        assert unknown.status_code == 404 and unknown.json()["field"] == "path.record_id"

        stats = proc.cli("stats", "--format", "json")
        assert stats.returncode == 0, stats.stderr
        sla = json.loads(stats.stdout)["sla"]
        assert (sla["clocks"], sla["breached"], sla["reverted"], sla["met"]) == (2, 1, 1, 0)
        [row] = [r for r in sla["by_clock"] if r["clock"] == "first_response"]
        assert row["achievement_rate"] == 0.0 and row["avg_overdue_seconds"] >= 1
        assert "SLA: 2 clocks, 0 met, 1 breached (1 reverted)" in proc.cli("stats").stdout
        assert proc.terminate() == 0
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(10)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{proc.url}/v1/health", timeout=1)
