"""`flowctl simulate` as a library: one flow, one record, one triggering event, a virtual clock.

    result = simulate_flow(".", "welcome-new-customer", "tests/fixtures/contacts.yaml#c-1", run_for="7d")
    result.trace, result.runs, result.messages

Only the named flow starts on triggers (flows it calls still run). The other
records of the fixture file (users, accounts) are loaded silently as context.
The event defaults to what the flow's trigger listens to: record_created
creates the record at the start; record_updated / field_changed load it and
apply `--set` as an update; record_deleted deletes it; date and schedule flows
just run the clock; event flows post the custom event; manual flows start.
`faults` (`STEP=ERROR*TIMES`) fail a step's first attempts, as `faults:` do in flow tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from flowctl.check.fields import FieldResolver, value_problem
from flowctl.connectors.recording import Delivery
from flowctl.engine.program import program_for
from flowctl.engine.state import Record, Run, Task, TimelineEntry, TraceEntry
from flowctl.errors import ProjectError
from flowctl.lang.durations import Duration
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import DEFAULT_TEST_START, Fault, Flow
from flowctl.resources.project import Project, load_project
from flowctl.sim.fixtures import find_record
from flowctl.sim.simulator import Simulator, as_utc

EVENTS = ("record_created", "record_updated", "record_deleted", "event", "manual", "none")


@dataclass
class SimulationResult:
    flow: str
    event: str
    record: Record | None
    start_at: dt.datetime
    end_at: dt.datetime
    trace: list[TraceEntry]
    runs: list[Run]
    messages: list[Delivery]
    tasks: list[Task]
    timeline: list[TimelineEntry] = field(default_factory=list)


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs; values read as YAML scalars (`5` is a number, `true` a boolean, `[a, b]` a list)."""
    yaml = YAML(typ="safe", pure=True)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ProjectError(f"--set needs key=value, got '{pair}'", hint="e.g. --set stage=won --set amount=9000")
        try:
            value = yaml.load(raw) if raw.strip() else ""
        except Exception:
            value = raw
        out[key] = value
    return out


def parse_faults(flow: str, specs: list[str]) -> list[Fault]:
    """`STEP=ERROR` or `STEP=ERROR*TIMES` (e.g. `push=HTTP 503*3`): fail that step's first attempts."""
    out: list[Fault] = []
    for spec in specs:
        step, sep, rest = spec.partition("=")
        times = 1
        if "*" in rest:
            rest, _, count = rest.rpartition("*")
            if not count.strip().isdigit() or int(count) < 1:
                raise ProjectError(f"--fault: '{count}' is not a number of attempts", hint="e.g. --fault 'push=HTTP 503*3'")
            times = int(count)
        if not sep or not step.strip() or not rest.strip():
            raise ProjectError(f"--fault needs STEP=ERROR, got '{spec}'", hint="e.g. --fault 'push=HTTP 503*3' or --fault mail=timeout")
        out.append(Fault(flow=flow, step=step.strip(), error=rest.strip(), times=times))
    return out


def check_faults(flow: Flow, faults: list[Fault]) -> None:
    """A fault on a step the flow does not have would silently inject nothing; say so instead."""
    steps = program_for(flow).order
    for fault in faults:
        if fault.step not in steps:
            raise ProjectError(f"--fault: flow '{flow.name}' has no step '{fault.step}'",
                               hint="its steps: " + ", ".join(steps))


def check_sets(project: Project, object_name: str, sets: dict[str, Any]) -> None:
    """`--set` values go into the record: hold them to the object schema, as a flow test's `set:` is."""
    resolver = FieldResolver(project)
    for key, value in sets.items():
        resolved = resolver.resolve(object_name, (key,))
        problem = resolved.problem or (value_problem(resolved.field, value) if resolved.field else None)
        if problem is not None:
            raise ProjectError(f"--set {key}: {problem.summary}", hint=problem.hint)


def default_event(flow: Flow) -> str:
    t = flow.trigger.type
    if t in ("record_created", "record_updated", "record_deleted", "event", "manual"):
        return t
    if t == "field_changed":
        return "record_updated"
    return "none"  # date and schedule: the clock starts them


def simulate_flow(
    path: Path | str,
    flow_name: str,
    record_ref: str | None,
    *,
    event: str | None = None,
    sets: dict[str, Any] | None = None,
    run_for: str = "7d",
    start_at: dt.datetime | None = None,
    faults: list[str] | None = None,
) -> SimulationResult:
    from flowctl.check.validate import check_project

    project = load_project(path)
    flow = project.flows.get(flow_name)
    if flow is None:
        known = ", ".join(sorted(project.flows)) or "none"
        raise ProjectError(f"no flow named '{flow_name}'", hint=f"flows in this repository: {known}")
    errors = [d for d in check_project(project) if d.severity == "error"]
    if errors:
        shown = "\n".join(f"  {d.location}: {d.summary}" for d in errors[:10])
        raise ProjectError(f"the repository has {len(errors)} error(s):\n{shown}", hint="run `flowctl validate`")
    sets = dict(sets or {})
    chosen = event or default_event(flow)
    if chosen not in EVENTS:
        raise ProjectError(f"unknown --event '{chosen}'", hint="one of: " + ", ".join(EVENTS))
    try:
        duration = Duration.parse(run_for)
    except ValueError as exc:
        raise ProjectError(f"--for: {exc}") from None
    if duration.amount <= 0:
        raise ProjectError(f"--for needs a positive duration, got '{run_for}'", hint="e.g. --for 7d or --for 12h")
    fault_list = parse_faults(flow_name, faults or [])
    check_faults(flow, fault_list)
    if flow.object is not None and chosen != "event":  # an event's --set is its data, not record fields
        check_sets(project, flow.object, sets)
    start = as_utc(start_at) if start_at is not None else DEFAULT_TEST_START
    end = start + duration.as_timedelta()

    target: dict[str, Any] | None = None
    context: list[dict[str, Any]] = []
    if record_ref is not None:
        target, context = find_record(project, record_ref, object_name=flow.object)
    elif flow.object is not None and chosen not in ("none",):
        raise ProjectError(f"flow '{flow_name}' runs on {flow.object} records; pass --record FILE_OR_ID")

    # SLA policies on the flow's object stay active, so the trace shows their clocks next to the flow.
    policies = [n for n, p in project.sla_policies.items() if flow.object is not None and p.object == flow.object]
    sim = Simulator(TypedBundle.from_project(project), start_at=start, flows=[flow_name, *policies],
                    faults=fault_list)
    target_key = (str(target["object"]), str(target["id"])) if target else None
    others = [r for r in context if (str(r["object"]), str(r["id"])) != target_key]
    if target is not None and chosen != "record_created":
        values = dict(target)
        if chosen == "none" or chosen in ("manual", "event", "record_deleted"):
            values.update(sets)
        others.append(values)
    sim.load(others)
    sim.activate()
    if target is not None and target_key is not None:
        obj, rid = target_key
        if chosen == "record_created":
            values = {k: v for k, v in target.items() if k not in ("object", "id")}
            sim.ingest({"type": "record_created", "object": obj, "record": {"id": rid, **values, **sets}})
        elif chosen == "record_updated":
            if not sets:
                raise ProjectError("an update needs the values that change", hint="add --set field=value")
            sim.ingest({"type": "record_updated", "object": obj, "record": {"id": rid, **sets}})
        elif chosen == "record_deleted":
            sim.ingest({"type": "record_deleted", "object": obj, "record": {"id": rid}})
        elif chosen == "event":
            sim.ingest({"type": "event", "name": getattr(flow.trigger, "name", None), "object": obj,
                        "record": {"id": rid}, "data": sets})
        elif chosen == "manual":
            sim.start_manual(flow_name, rid, object=obj)
    elif chosen == "event":
        sim.ingest({"type": "event", "name": getattr(flow.trigger, "name", None), "data": sets})
    elif chosen == "manual":
        sim.start_manual(flow_name, None)
    sim.run_until(end)

    record = sim.store.get_record(*target_key) if target_key else None
    timeline = sim.store.timeline(*target_key) if target_key else []
    trace = [e for e in sim.store.trace() if not (e.kind == "event" and e.status == "activated")]
    return SimulationResult(
        flow=flow_name,
        event=chosen,
        record=record,
        start_at=start,
        end_at=end,
        trace=trace,
        runs=sim.store.list_runs(),
        messages=list(sim.connectors.deliveries),
        tasks=sim.store.list_tasks(),
        timeline=timeline,
    )
