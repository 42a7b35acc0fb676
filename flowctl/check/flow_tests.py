"""Flow tests: the flows, steps, objects and templates they name exist; their fixtures fit the schemas.

Fixture files (tests/fixtures/*.yaml) are data, not resources (§10.2): they are
read when a test names them, and each record is checked against its
object's schema, with positions in the fixture file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flowctl.check.context import CheckContext, Owner
from flowctl.check.diagnostics import Diagnostic, Range
from flowctl.check.fields import value_problem
from flowctl.check.suggest import did_you_mean, one_of
from flowctl.check.walk import flow_steps, sla_steps
from flowctl.resources import models as m
from flowctl.resources.project import Source
from flowctl.resources.yamlload import YamlLoadError, load_file

# Keys of a fixture record that are not fields of its object.
RECORD_META = frozenset({"object", "id"})


def check_flow_tests(ctx: CheckContext) -> Iterator[Diagnostic]:
    checker = _TestChecker(ctx)
    for test, source in zip(ctx.project.tests, ctx.project.test_sources, strict=False):
        yield from checker.test(test, Owner("flow_test", test.name, source))
    for rel in ctx.extra_fixtures:
        yield from checker.fixture_file(rel, None)


class _TestChecker:
    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        project = ctx.project
        self.flows = project.flows
        self.runnable = {**project.flows, **project.sla_policies}
        self.flow_step_ids = {
            name: {s.id for s in flow_steps(f) if s.id} for name, f in project.flows.items()
        }
        self.all_step_ids = set().union(*self.flow_step_ids.values()) if self.flow_step_ids else set()
        for policy in project.sla_policies.values():
            self.all_step_ids |= {s.id for s in sla_steps(policy) if s.id}
        self.fixtures_done: set[str] = set()

    def _invalid(self, kind: str, name: str, other_kind: str | None = None) -> bool:
        """The resource exists but failed validation: not "unknown" (its own diagnostics say why)."""
        invalid = self.ctx.project.invalid
        return (kind, name) in invalid or (other_kind is not None and (other_kind, name) in invalid)

    def _unknown_flow(
        self, owner: Owner, path: tuple[str | int, ...], name: str, *, sla_ok: bool = False
    ) -> Diagnostic:
        known = self.runnable if sla_ok else self.flows
        return self.ctx.diag(
            owner,
            path,
            "unknown-flow",
            f"unknown flow '{name}'",
            hint=did_you_mean(name, known)
            or (f"flows: {one_of(known)}" if known else "no flow is defined yet"),
        )

    def _object(self, owner: Owner, path: tuple[str | int, ...], name: str | None) -> Iterator[Diagnostic]:
        if name is not None and not self.ctx.resolver.has_object(name) and not self._invalid("object", name):
            objects = self.ctx.resolver.objects
            yield self.ctx.diag(
                owner,
                path,
                "unknown-object",
                f"unknown object '{name}'",
                hint=did_you_mean(name, objects) or f"objects: {one_of(objects)}",
            )

    def _fields(
        self,
        owner: Owner,
        path: tuple[str | int, ...],
        obj: str | None,
        values: dict[str, Any],
        skip: frozenset[str],
    ) -> Iterator[Diagnostic]:
        if obj is None or not self.ctx.resolver.has_object(obj):
            return
        for key, value in values.items():
            if key in skip:
                continue
            resolved = self.ctx.resolver.resolve(obj, key)
            if resolved.problem is not None:
                yield self.ctx.from_problem(owner, (*path, key), resolved.problem, prefer_key=True)
            elif resolved.field is not None:
                problem = value_problem(resolved.field, value)
                if problem is not None:
                    yield self.ctx.from_problem(owner, (*path, key), problem, key)

    def _step(self, owner: Owner, path: tuple[str | int, ...], flow: str, step: str) -> Iterator[Diagnostic]:
        ids = self.flow_step_ids.get(flow)
        if ids is not None and step not in ids:
            yield self.ctx.diag(
                owner,
                path,
                "unknown-step",
                f"flow '{flow}' has no step '{step}'",
                hint=did_you_mean(step, ids) or f"steps: {one_of(ids)}",
            )

    def test(self, test: m.FlowTest, owner: Owner) -> Iterator[Diagnostic]:
        for i, name in enumerate(test.flows or []):
            if name not in self.runnable and not self._invalid("flow", name, "sla_policy"):
                yield self._unknown_flow(owner, ("flows", i), name, sla_ok=True)
        for i, rec in enumerate(test.records):
            if isinstance(rec, str):
                yield from self.fixture_file(rec, (owner, ("records", i)))
            else:
                obj = rec.get("object")
                if not isinstance(obj, str) or "id" not in rec:
                    yield self.ctx.diag(
                        owner,
                        ("records", i),
                        "fixture-bad-record",
                        "an inline record needs `object` and `id`",
                        hint="e.g. {object: user, id: li.lei, name: Li Lei}",
                    )
                    continue
                yield from self._object(owner, ("records", i, "object"), obj)
                yield from self._fields(owner, ("records", i), obj, rec, RECORD_META)
        for i, event in enumerate(test.events):
            path: tuple[str | int, ...] = ("events", i)
            yield from self._object(owner, (*path, "object"), event.object)
            if event.set and event.object:
                yield from self._fields(owner, (*path, "set"), event.object, event.set, frozenset())
            if (
                event.flow is not None
                and event.flow not in self.flows
                and not self._invalid("flow", event.flow)
            ):
                yield self._unknown_flow(owner, (*path, "flow"), event.flow)
            if event.task is not None and event.task not in self.all_step_ids:
                yield self.ctx.diag(
                    owner,
                    (*path, "task"),
                    "unknown-step",
                    f"no flow has a step '{event.task}' to complete a task of",
                    hint=did_you_mean(event.task, self.all_step_ids)
                    or "name the approval or human_task step's id",
                )
        targets: list[tuple[str, int, str, str]] = [
            ("faults", i, f.flow, f.step) for i, f in enumerate(test.faults)
        ]
        targets += [("stubs", i, s.flow, s.step) for i, s in enumerate(test.stubs)]
        for key, i, flow_name, step_id in targets:
            if flow_name not in self.flows and not self._invalid("flow", flow_name):
                yield self._unknown_flow(owner, (key, i, "flow"), flow_name)
            else:
                yield from self._step(owner, (key, i, "step"), flow_name, step_id)
        for i, run in enumerate(test.expect.runs):
            if (
                run.flow is not None
                and run.flow not in self.runnable
                and not self._invalid("flow", run.flow, "sla_policy")
            ):
                yield self._unknown_flow(owner, ("expect", "runs", i, "flow"), run.flow)
        for i, msg in enumerate(test.expect.messages):
            if (
                msg.template is not None
                and msg.template not in self.ctx.project.templates
                and not self._invalid("template", msg.template)
            ):
                templates = self.ctx.project.templates
                yield self.ctx.diag(
                    owner,
                    ("expect", "messages", i, "template"),
                    "unknown-template",
                    f"unknown template '{msg.template}'",
                    hint=did_you_mean(msg.template, templates) or f"templates: {one_of(templates)}",
                )
        for i, expected in enumerate(test.expect.records):
            yield from self._object(owner, ("expect", "records", i, "object"), expected.object)
            yield from self._fields(
                owner, ("expect", "records", i, "fields"), expected.object, expected.fields, frozenset()
            )

    def fixture_file(
        self, rel: str, named_at: tuple[Owner, tuple[str | int, ...]] | None
    ) -> Iterator[Diagnostic]:
        root = self.ctx.project.root
        path = (root / rel) if not Path(rel).is_absolute() else Path(rel)
        if not path.is_file():
            if named_at is not None:
                owner, at = named_at
                yield self.ctx.diag(
                    owner,
                    at,
                    "missing-fixture-file",
                    f"fixture file '{rel}' does not exist",
                    hint="paths are relative to the repository root, e.g. tests/fixtures/contacts.yaml",
                )
            return
        try:
            shown = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            shown = rel
        if shown in self.fixtures_done:
            return
        self.fixtures_done.add(shown)
        self.ctx.fixture_files.append(shown)
        try:
            doc = load_file(path)
        except YamlLoadError as exc:
            yield Diagnostic(
                code=exc.code,
                summary=exc.message,
                hint=exc.hint,
                range=Range(file=shown, line=exc.position.line, column=exc.position.column),
            )
            return
        owner = Owner("fixture", shown, Source(shown, doc.positions, doc.text))
        data = doc.data
        records = [data] if isinstance(data, dict) else data
        if not isinstance(records, list):
            yield self.ctx.diag(
                owner, (), "fixture-bad-record", "a fixture file must be a list of records",
                hint="e.g. - {object: contact, id: c-1, email: a@example.com}",
            )  # fmt: skip
            return
        for i, rec in enumerate(records):
            rpath: tuple[str | int, ...] = (i,) if isinstance(data, list) else ()
            if not isinstance(rec, dict) or not isinstance(rec.get("object"), str) or "id" not in rec:
                yield self.ctx.diag(
                    owner,
                    rpath,
                    "fixture-bad-record",
                    "each fixture record needs `object` and `id`",
                    hint="e.g. - {object: contact, id: c-1, email: a@example.com}",
                )
                continue
            yield from self._object(owner, (*rpath, "object"), rec["object"])
            yield from self._fields(owner, rpath, rec["object"], rec, RECORD_META)
