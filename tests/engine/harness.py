"""A small world for engine tests: bundles written as Python dicts, run on the real simulator shell."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowctl.engine.state import IngestResult, Message, Record, Run, StepAttempt, Task, TraceEntry
from flowctl.lang.durations import Duration
from flowctl.resources.bundle import Bundle, TypedBundle
from flowctl.resources.models import Fault, Stub
from flowctl.sim.simulator import Simulator

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # a Monday

CONTACT: dict[str, Any] = {
    "kind": "object",
    "name": "contact",
    "fields": {
        "first_name": {"type": "string"},
        "email": {"type": "email"},
        "phone": {"type": "phone"},
        "tier": {"type": "enum", "values": ["standard", "premium", "gold"]},
        "stage": {"type": "string"},
        "status": {"type": "string"},
        "birthday": {"type": "date"},
        "renewal_at": {"type": "datetime"},
        "owner": {"type": "ref", "object": "user"},
        "account": {"type": "ref", "object": "account"},
        "email_opt_out": {"type": "boolean"},
        "sms_opt_in": {"type": "boolean"},
        "whatsapp_opt_in": {"type": "boolean"},
        "locale": {"type": "string"},
        "score": {"type": "integer"},
        "tags": {"type": "list", "items": "string"},
        "language": {"type": "string"},
        "subject": {"type": "string"},
        "risk": {"type": "string"},
        "merged_into": {"type": "string"},
        "dispatch_rule": {"type": "string"},
        "last_contacted_at": {"type": "datetime"},
    },
    "consent": {
        "email": {"field": "email_opt_out", "op": "ne", "value": True},
        "sms": {"field": "sms_opt_in", "op": "eq", "value": True},
        "whatsapp": {"field": "whatsapp_opt_in", "op": "eq", "value": True},
    },
}
ACCOUNT: dict[str, Any] = {
    "kind": "object",
    "name": "account",
    "fields": {"name": {"type": "string"}, "industry": {"type": "string"}, "tier": {"type": "string"}},
}
USERS = [
    {"object": "user", "id": "li.lei", "name": "Li Lei", "email": "li.lei@acme.example", "role": "agent"},
    {"object": "user", "id": "han.meimei", "name": "Han Meimei", "email": "han@acme.example", "role": "agent"},
    {"object": "user", "id": "wang.fang", "name": "Wang Fang", "email": "wang@acme.example", "role": "manager"},
]
SUPPORT_TEAM: dict[str, Any] = {
    "kind": "team",
    "name": "support",
    "manager": "wang.fang",
    "members": [
        {"user": "li.lei", "skills": ["api-integration", "sso"], "languages": ["zh", "en"]},
        {"user": "han.meimei", "skills": ["billing"], "languages": ["zh"]},
    ],
}


def flow(name: str, steps: list[dict[str, Any]], trigger: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": "flow", "name": name, "object": "contact",
                            "trigger": trigger or {"type": "record_created"}, "steps": steps}
    data.update(extra)
    return data


def make_bundle(*resources: dict[str, Any]) -> TypedBundle:
    """Resources as dicts; the contact and account objects and the support team are always there."""
    items: dict[str, dict[str, dict[str, Any]]] = {}
    for res in (CONTACT, ACCOUNT, SUPPORT_TEAM, *resources):
        items.setdefault(res["kind"], {})[res["name"]] = res
    return Bundle(resources=items).typed()


class Harness:
    def __init__(
        self,
        *resources: dict[str, Any],
        start: dt.datetime = T0,
        faults: list[dict[str, Any]] | None = None,
        stubs: list[dict[str, Any]] | None = None,
        records: list[dict[str, Any]] | None = None,
    ) -> None:
        self.sim = Simulator(
            make_bundle(*resources),
            start_at=start,
            faults=[Fault(**f) for f in faults or []],
            stubs=[Stub.model_validate(s) for s in stubs or []],
        )
        self.start = start
        self.sim.load([*USERS, *(records or [])])
        self.sim.activate()

    # ------------------------------------------------------------- input
    @property
    def now(self) -> dt.datetime:
        return self.sim.now

    def at(self, offset: str) -> Harness:
        """Move the clock to start + offset (exact elapsed), firing timers due before it."""
        self.sim.advance_to(self.start + Duration.parse(offset).as_timedelta())
        return self

    def run(self, duration: str) -> Harness:
        """Run the clock for `duration` from now, firing timers due up to and including the end."""
        self.sim.run_until(self.sim.now + Duration.parse(duration).as_timedelta())
        return self

    def create(self, record_id: str, object: str = "contact", **fields: Any) -> IngestResult:
        return self.sim.ingest({"type": "record_created", "object": object, "record": {"id": record_id, **fields}})

    def update(self, record_id: str, object: str = "contact", **fields: Any) -> IngestResult:
        return self.sim.ingest({"type": "record_updated", "object": object, "record": {"id": record_id, **fields}})

    def delete(self, record_id: str, object: str = "contact") -> IngestResult:
        return self.sim.ingest({"type": "record_deleted", "object": object, "record": {"id": record_id}})

    def event(self, name: str, record_id: str | None = None, **data: Any) -> IngestResult:
        record = {"id": record_id} if record_id else {}
        return self.sim.ingest({"type": "event", "name": name, "object": "contact" if record_id else None,
                                "record": record, "data": data})

    def complete(self, step: str, decision: str, by: str | None = None, **kw: Any) -> Task:
        task = self.sim.open_task_for_step(step, by=by)
        assert task is not None, f"no open task of step {step}"
        return self.sim.complete_task(task.id, decision, by=by, **kw)

    # ------------------------------------------------------------- output
    @property
    def runs(self) -> list[Run]:
        return self.sim.store.list_runs()

    def run_of(self, flow_name: str) -> Run:
        found = [r for r in self.runs if r.flow == flow_name]
        assert len(found) == 1, f"{len(found)} runs of {flow_name}"
        return found[0]

    def sent(self, channel: str | None = None) -> list[tuple[dt.datetime, Message]]:
        return [(d.at, d.message) for d in self.sim.connectors.sent if channel is None or d.message.channel == channel]

    def attempts(self, run: Run) -> list[StepAttempt]:
        return self.sim.store.step_attempts(run.id)

    def statuses(self, run: Run) -> list[tuple[str, str]]:
        return [(a.step, a.status) for a in self.attempts(run)]

    @property
    def tasks(self) -> list[Task]:
        return self.sim.store.list_tasks()

    def trace(self, kind: str | None = None) -> list[TraceEntry]:
        return [e for e in self.sim.store.trace() if kind is None or e.kind == kind]

    def timeline(self, record_id: str, object: str = "contact") -> list[str]:
        return [e.text for e in self.sim.store.timeline(object, record_id)]

    def record(self, record_id: str, object: str = "contact") -> Record:
        rec = self.sim.store.get_record(object, record_id)
        assert rec is not None
        return rec
