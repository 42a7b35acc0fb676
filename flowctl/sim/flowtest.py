"""Running flow tests (`kind: flow_test`, SPEC §7, §10.11, §10.12) on the simulator.

    report = run_flow_tests("tests/flows", name_filter="welcome")
    report.passed, [t.name for t in report.failed]

Per test: every enabled flow of the repository is active (or those in
`flows:`); fixture records load silently before `start_at`, except those a
`record_created` event creates at its time; events are applied in time order
(ties in the order written), before any timer due at the same instant; then
the clock runs to `start_at + run_for` inclusive and the expectations are
checked against that state.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowctl.engine.state import Record, TimelineEntry
from flowctl.engine.store import Store
from flowctl.errors import FlowctlError, ProjectError
from flowctl.lang.durations import Duration, is_duration
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import FlowTest, TestEvent
from flowctl.resources.project import Project, Source, load_project
from flowctl.sim.expectations import Check, World, check_expectations
from flowctl.sim.fixtures import load_records
from flowctl.sim.simulator import SimulationError, Simulator, as_utc


@dataclass
class TestResult:
    __test__ = False

    name: str
    file: str
    line: int
    passed: bool
    checks: list[Check] = field(default_factory=list)
    error: str | None = None  # the test could not run to its end
    seconds: float = 0.0
    start_at: dt.datetime | None = None
    end_at: dt.datetime | None = None
    runs: int = 0
    messages: int = 0

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


@dataclass
class TestReport:
    __test__ = False

    root: Path
    results: list[TestResult]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[TestResult]:
        return [r for r in self.results if not r.passed]


# --------------------------------------------------------------------------- events


def event_time(at: str | dt.datetime, start_at: dt.datetime) -> dt.datetime:
    """An offset from start_at (exact elapsed time: 1d = 24h) or an absolute timestamp."""
    if isinstance(at, dt.datetime):
        return as_utc(at)
    if is_duration(at):
        return start_at + Duration.parse(at).as_timedelta()
    return as_utc(dt.datetime.fromisoformat(str(at).replace("Z", "+00:00")))


def _record_ref(ev: TestEvent) -> tuple[str | None, str | None, dict[str, Any]]:
    """(object, id, extra field values) an event names through `object`/`id`/`record`."""
    extra: dict[str, Any] = {}
    object_name = ev.object
    rid = ev.id
    if isinstance(ev.record, dict):
        extra = {k: v for k, v in ev.record.items() if k not in ("id", "object")}
        rid = rid or (str(ev.record["id"]) if "id" in ev.record else None)
        object_name = object_name or ev.record.get("object")
    elif isinstance(ev.record, str):
        rid = rid or ev.record
    return object_name, rid, extra


class _Script:
    """Applies a test's events to a simulator."""

    def __init__(self, sim: Simulator, fixtures: list[dict[str, Any]], test: FlowTest) -> None:
        self.sim = sim
        self.test = test
        created = set()
        for ev in test.events:
            if ev.type == "record_created":
                obj, rid, _ = _record_ref(ev)
                created.add((obj, rid))
        self.held: dict[tuple[str, str], dict[str, Any]] = {}
        self.loaded: list[dict[str, Any]] = []
        for rec in fixtures:
            key = (str(rec["object"]), str(rec["id"]))
            if key in created or (None, key[1]) in created:
                self.held[key] = rec
            else:
                self.loaded.append(rec)

    def object_of(self, rid: str, given: str | None) -> str:
        if given:
            return given
        for (obj, held_id) in self.held:
            if held_id == rid:
                return obj
        for rec in self.loaded:
            if str(rec["id"]) == rid:
                return str(rec["object"])
        for obj in self.sim.bundle.objects:
            if self.sim.store.get_record(obj, rid) is not None:
                return obj
        raise SimulationError(f"record '{rid}' is in no fixture; give `object:` or add it to `records:`")

    def apply(self, ev: TestEvent) -> None:
        sim = self.sim
        obj, rid, extra = _record_ref(ev)
        if ev.type == "task_completed":
            task_step = ev.task or ""
            task = sim.open_task_for_step(task_step, record=rid, by=ev.by)
            if task is None:
                narrowed = "".join([f" for record {rid}" if rid else "", f" for {ev.by}" if ev.by else ""])
                raise SimulationError(f"task_completed: no open task created by step '{task_step}'{narrowed}")
            sim.complete_task(task.id, ev.decision or "done", by=ev.by, comment=ev.comment, data=ev.data)
            return
        if ev.type == "manual":
            sim.start_manual(ev.flow or "", rid, object=self.object_of(rid, obj) if rid else None)
            return
        if ev.type == "event":
            record: dict[str, Any] = {}
            if rid is not None:
                obj = self.object_of(rid, obj) if obj is None and self._known(rid) else obj
                record = {"id": rid, **extra}
            sim.ingest({"type": "event", "name": ev.name, "object": obj, "record": record, "data": ev.data or {}})
            return
        assert rid is not None
        obj = self.object_of(rid, obj)
        values = {**extra, **(ev.set or {})}
        if ev.type == "record_created":
            base = self.held.pop((obj, rid), None) or {}
            base = {k: v for k, v in base.items() if k not in ("object", "id")}
            sim.ingest({"type": "record_created", "object": obj, "record": {"id": rid, **base, **values}})
        elif ev.type == "record_updated":
            if sim.store.get_record(obj, rid) is None:
                raise SimulationError(f"record_updated: {obj} '{rid}' does not exist yet",
                                      hint="load it in `records:` or create it with a record_created event first")
            sim.ingest({"type": "record_updated", "object": obj, "record": {"id": rid, **values}})
        elif ev.type == "record_deleted":
            sim.ingest({"type": "record_deleted", "object": obj, "record": {"id": rid}})

    def _known(self, rid: str) -> bool:
        try:
            self.object_of(rid, None)
        except SimulationError:
            return False
        return True


# --------------------------------------------------------------------------- one test


def _world(sim: Simulator) -> World:
    store = sim.store
    hook = sim.engine.rt.sla

    def record(object_name: str, record_id: str) -> Record | None:
        rec = store.get_record(object_name, record_id)
        return rec

    def timeline(record_id: str) -> list[TimelineEntry]:
        lines: list[TimelineEntry] = []
        for obj in sim.bundle.objects:
            lines.extend(store.timeline(obj, record_id))
        return sorted(lines, key=lambda e: e.seq)

    runs = store.list_runs()
    tasks = store.list_tasks()
    sla = None
    if hook.supported:
        def sla(record_id: str, clock: str) -> dict[str, Any] | None:
            return hook.clock_view(sim.engine.rt, record_id, clock)
    return World(runs=runs, sent=sim.connectors.sent, tasks=tasks, record=record, timeline=timeline, sla=sla)


def run_flow_test(
    project: Project, bundle: TypedBundle, test: FlowTest, source: Source, *, store: Store | None = None
) -> TestResult:
    """Run one flow test; `store` (default: a fresh MemoryStore) must be empty and is left with the end state."""
    started = time.perf_counter()
    line = source.range(("name",)).line
    result = TestResult(name=test.name, file=source.file, line=line, passed=False)
    start_at = as_utc(test.start_at)
    end_at = start_at + Duration.parse(test.run_for).as_timedelta()
    result.start_at, result.end_at = start_at, end_at
    sim: Simulator | None = None
    try:
        fixtures = load_records(project, test.records, base=(project.root / source.file).parent)
        sim = Simulator(bundle, start_at=start_at, faults=test.faults, stubs=test.stubs, flows=test.flows,
                        store=store)
        script = _Script(sim, fixtures, test)
        sim.load(script.loaded)
        sim.activate()
        timed = sorted(
            ((event_time(ev.at, start_at), i, ev) for i, ev in enumerate(test.events)), key=lambda t: (t[0], t[1])
        )
        for at, index, ev in timed:
            if at > end_at:
                break
            sim.advance_to(at)
            try:
                script.apply(ev)
            except FlowctlError as exc:
                where = source.range(("events", index))
                raise SimulationError(f"{where.file}:{where.line}:{where.column}: events[{index}] ({ev.type}): "
                                      f"{exc.message}", hint=exc.hint) from None
        sim.run_until(end_at)
        result.checks = check_expectations(test.expect, _world(sim))
        result.passed = all(c.ok for c in result.checks)
    except FlowctlError as exc:
        result.error = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
    except Exception as exc:  # a bug must fail this test, not hide the results of the others
        result.error = f"internal error while running the test: {type(exc).__name__}: {exc}"
    if sim is not None:
        result.runs = len(sim.store.list_runs())
        result.messages = len(sim.connectors.sent)
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------- many tests


def _in_scope(file: str, scope: str) -> bool:
    return not scope or file == scope or file.startswith(scope.rstrip("/") + "/")


def run_flow_tests(
    path: Path | str = ".", *, name_filter: str | None = None, store_factory: Callable[[], Store] | None = None
) -> TestReport:
    """Run the flow tests under `path` (a repository, a folder of tests or one test file).

    `store_factory` makes each test's (empty) store; default a fresh MemoryStore per test.

    Raises ProjectError when the repository does not load or validate: tests of
    an invalid tree would test something other than what the files say.
    """
    from flowctl.check.validate import check_project
    from flowctl.resources.project import add_resource
    from flowctl.resources.yamlload import YamlLoadError, load_file

    began = time.perf_counter()
    start = Path(path)
    if not start.exists():
        raise ProjectError(f"no such file or directory: {start}", hint="pass the flows repository or a test file")
    project = load_project(start)
    root = project.root
    try:
        scope = start.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        scope = start.as_posix()
    scope = "" if scope == "." else scope
    if start.is_file() and scope not in project.files:
        # A test file outside the configured tests folder.
        try:
            doc = load_file(start)
        except YamlLoadError as exc:
            raise ProjectError(f"{scope}:{exc.position.line}:{exc.position.column}: {exc.message}") from None
        add_resource(doc.data, Source(scope, doc.positions), project)
    errors = [d for d in check_project(project) if d.severity == "error"]
    if errors:
        shown = "\n".join(f"  {d.location}: {d.summary}" for d in errors[:10])
        more = f"\n  … and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ProjectError(
            f"the repository has {len(errors)} error{'s' if len(errors) != 1 else ''}; flow tests need a valid tree:\n"
            f"{shown}{more}",
            hint="run `flowctl validate` and fix them first",
        )
    bundle = TypedBundle.from_project(project)
    results: list[TestResult] = []
    for test, source in zip(project.tests, project.test_sources, strict=True):
        if not _in_scope(source.file, scope):
            continue
        if name_filter and name_filter.lower() not in test.name.lower():
            continue
        store = store_factory() if store_factory is not None else None
        results.append(run_flow_test(project, bundle, test, source, store=store))
    return TestReport(root=root, results=results, seconds=time.perf_counter() - began)
