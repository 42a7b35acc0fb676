"""A world for SLA tests through the engine: a `case` object, users, a support team, calendars and one
SLA policy, run on the real simulator shell (the same Engine the runner uses, in-memory store)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from flowctl.engine.state import IngestResult, Message, Run, TraceEntry
from flowctl.resources.bundle import Bundle
from flowctl.sim.simulator import Simulator

UTC = dt.UTC

CASE: dict[str, Any] = {
    "kind": "object",
    "name": "case",
    "fields": {
        "subject": {"type": "string"},
        "type": {"type": "enum", "values": ["question", "incident", "spam"]},
        "priority": {"type": "enum", "values": ["low", "normal", "high", "urgent"]},
        "status": {"type": "string"},
        "tier": {"type": "string"},
        "assignee": {"type": "ref", "object": "user"},
        "first_response_at": {"type": "datetime"},
    },
}
USERS: list[dict[str, Any]] = [
    {"object": "user", "id": "li.lei", "name": "Li Lei", "email": "li.lei@acme.example"},
    {"object": "user", "id": "han.meimei", "name": "Han Meimei", "email": "han@acme.example"},
    {"object": "user", "id": "wang.fang", "name": "Wang Fang", "email": "wang@acme.example"},
]
TEAM: dict[str, Any] = {
    "kind": "team",
    "name": "support",
    "manager": "wang.fang",
    "members": [{"user": "li.lei"}, {"user": "han.meimei"}],
}


def calendar(name: str, timezone: str, weekly: dict[str, list[str]], **extra: Any) -> dict[str, Any]:
    return {"kind": "calendar", "name": name, "timezone": timezone, "weekly": weekly, **extra}


CALENDARS = [
    calendar("ny-office", "America/New_York", {"mon-fri": ["09:00-18:00"]}, holidays=["2026-01-19"]),
    calendar("us-public", "America/New_York", {"mon-fri": ["09:00-18:00"]}, holidays_country="US"),
    calendar("shanghai", "Asia/Shanghai", {"mon-fri": ["09:00-12:00", "13:00-18:00"]}),
    calendar("ny-24x7", "America/New_York", {"mon-sun": ["00:00-24:00"]}),
    calendar("ny-night", "America/New_York", {"mon-sun": ["01:00-03:00"]}),
    calendar("berlin-24x7", "Europe/Berlin", {"mon-sun": ["00:00-24:00"]}),
    calendar("berlin-office", "Europe/Berlin", {"mon-fri": ["09:00-17:00"]}),
]

HIGH = {"field": "priority", "op": "in", "value": ["high", "urgent"]}
DEFAULT_TARGETS: list[dict[str, Any]] = [
    {"when": HIGH, "first_response": "2h", "resolution": "8h"},
    {"default": True, "first_response": "8h", "resolution": "40h"},
]
DEFAULT_CLOCKS: dict[str, Any] = {
    "first_response": {"stop_when": {"field": "first_response_at", "op": "is_set"}},
    "resolution": {
        "pause_when": {"field": "status", "op": "in", "value": ["pending_customer"]},
        "stop_when": {"field": "status", "op": "in", "value": ["resolved", "closed"]},
    },
}


def policy(calendar_name: str | None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "sla_policy",
        "name": "support-sla",
        "object": "case",
        "applies_when": {"field": "type", "op": "ne", "value": "spam"},
        "targets": DEFAULT_TARGETS,
        "clocks": DEFAULT_CLOCKS,
    }
    if calendar_name is not None:
        data["calendar"] = calendar_name
    data.update(extra)
    return data


class SlaWorld:
    """One policy on the simulator; times are absolute aware datetimes."""

    def __init__(self, sla_policy: dict[str, Any], start: dt.datetime, *extra: dict[str, Any]) -> None:
        resources: dict[str, dict[str, Any]] = {}
        for res in (CASE, TEAM, *CALENDARS, sla_policy, *extra):
            resources.setdefault(res["kind"], {})[res["name"]] = res
        self.sim = Simulator(Bundle(resources=resources).typed(), start_at=start)
        self.sim.load(USERS)
        self.sim.activate()

    # ------------------------------------------------------------- input
    def at(self, instant: dt.datetime) -> SlaWorld:
        """Move the clock to `instant`, firing what falls due before it (scripted input goes first)."""
        self.sim.advance_to(instant)
        return self

    def run_until(self, instant: dt.datetime) -> SlaWorld:
        self.sim.run_until(instant)
        return self

    def create(self, record_id: str, **fields: Any) -> IngestResult:
        values = {"subject": f"Case {record_id}", "type": "incident", "status": "new", "priority": "normal",
                  "assignee": "li.lei", **fields}
        return self.sim.ingest({"type": "record_created", "object": "case", "record": {"id": record_id, **values}})

    def update(self, record_id: str, **fields: Any) -> IngestResult:
        return self.sim.ingest({"type": "record_updated", "object": "case", "record": {"id": record_id, **fields}})

    # ------------------------------------------------------------- output
    @property
    def rt(self) -> Any:
        return self.sim.engine.rt

    def clock(self, record_id: str, clock: str) -> dict[str, Any]:
        self.rt.begin(self.sim.now)  # elapsed and overdue as of the simulator's clock, not the last engine call
        view = self.rt.sla.clock_view(self.rt, record_id, clock)
        assert view is not None, f"no {clock} clock on {record_id}"
        return dict(view)

    def due(self, record_id: str, clock: str) -> dt.datetime | None:
        value = self.clock(record_id, clock)["due_at"]
        return None if value is None else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))

    def sla_trace(self, status: str | None = None) -> list[TraceEntry]:
        return [e for e in self.sim.store.trace() if e.kind == "sla" and (status is None or e.status == status)]

    def runs(self, flow: str) -> list[Run]:
        return [r for r in self.sim.store.list_runs() if r.flow == flow]

    def sent(self) -> list[tuple[dt.datetime, Message]]:
        return [(d.at, d.message) for d in self.sim.connectors.sent]

    def timeline(self, record_id: str) -> list[str]:
        return [e.text for e in self.sim.store.timeline("case", record_id)]

    def fields(self, record_id: str) -> dict[str, Any]:
        record = self.sim.store.get_record("case", record_id)
        assert record is not None
        return record.fields


@pytest.fixture
def sla_world() -> Callable[..., SlaWorld]:
    """`sla_world(policy_dict, start)`: a fresh world (factory, so a test can build several)."""
    return SlaWorld


@pytest.fixture
def make_policy() -> Callable[..., dict[str, Any]]:
    return policy
