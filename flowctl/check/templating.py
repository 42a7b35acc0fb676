"""Templated strings against what they will see at run time (SPEC §1, §10.3).

Every `{{ … }}` in a step, an `{expr}` condition, a templated condition value
and a message template is parsed (once per distinct text) and its variables
are checked: the root must be one the runner provides (record, trigger, run,
steps, now, secrets; sla in SLA actions; team() anywhere), `record.x.y` must
be a field path of the object (through refs), `steps.<id>` must name an
earlier step, and filters and tests must exist in the sandbox. A message
template is checked for every step that uses it, with that step's object and
earlier steps; positions point inside the template file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flowctl.check.context import CheckContext, Owner
from flowctl.check.diagnostics import Diagnostic, Range
from flowctl.check.suggest import did_you_mean, one_of
from flowctl.check.walk import StepSite, flow_conditions, iter_leaves, sla_conditions, sla_steps, step_strings
from flowctl.check.walk import flow_steps as walk_flow_steps
from flowctl.lang.template_analysis import (
    TemplateAnalysis,
    VariableUse,
    analyze,
    analyze_expression,
    known_filters,
    known_globals,
    known_tests,
)
from flowctl.lang.templates import is_templated
from flowctl.resources import models as m
from flowctl.resources.yamlload import position_in_scalar

BASE_ROOTS = ("record", "trigger", "run", "steps", "now", "secrets", "team")
TRIGGER_ATTRS = ("type", "name", "data", "changed", "before")
RUN_ATTRS = ("id", "started_at", "flow", "version")
# SPEC §10.3's four, then what flowctl.engine.sla_clocks adds (docs/sla.md).
SLA_ATTRS = ("clock", "target", "due_at", "elapsed", "policy", "target_name", "status", "breached", "overdue",
             "elapsed_seconds", "overdue_seconds", "event", "level", "at", "late")


@dataclass(frozen=True)
class Scope:
    """What a template sees where it is used."""

    object: str | None  # the record's object; None: unknown (no field checks)
    sla: bool  # inside SLA actions: `sla` is defined
    earlier: frozenset[str] | None  # step ids that run before; None: not checked
    all_steps: frozenset[str] = frozenset()
    used_by: str = ""  # "step 'welcome' of flow 'x'" for diagnostics inside template files


@dataclass(frozen=True)
class Problem:
    code: str
    summary: str
    hint: str | None
    lineno: int
    needles: tuple[str, ...]


def check_templates(ctx: CheckContext) -> Iterator[Diagnostic]:
    checker = _TemplateChecker(ctx)
    for name, flow in ctx.project.flows.items():
        yield from checker.flow(ctx.owner("flow", name), flow)
    for name, policy in ctx.project.sla_policies.items():
        yield from checker.sla_policy(ctx.owner("sla_policy", name), policy)
    yield from checker.unused_templates()


class _TemplateChecker:
    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.filters = known_filters()
        self.tests = known_tests()
        self.globals = known_globals()
        self.used_templates: set[str] = set()
        # Problems of a message template per scope: templates are shared by many steps.
        self._template_cache: dict[tuple[str, Scope], list[Diagnostic]] = {}
        self._emitted: set[tuple[str, int, int, str, str]] = set()
        self._strings: dict[str, list[tuple[str, tuple[str | int, ...]]]] = {}

    # ----------------------------------------------------------------- resources

    def flow(self, owner: Owner, flow: m.Flow) -> Iterator[Diagnostic]:
        obj = flow.object if flow.object and self.ctx.resolver.has_object(flow.object) else None
        sites = list(walk_flow_steps(flow))
        all_ids = frozenset(s.id for s in sites if s.id)
        yield from self._steps(owner, sites, obj, sla=False, all_ids=all_ids)
        base = Scope(obj, False, None, all_ids)
        for tree, path in flow_conditions(flow):
            yield from self._condition(owner, tree, path, base)

    def sla_policy(self, owner: Owner, policy: m.SlaPolicy) -> Iterator[Diagnostic]:
        obj = policy.object if self.ctx.resolver.has_object(policy.object) else None
        sites = list(sla_steps(policy))
        all_ids = frozenset(s.id for s in sites if s.id)
        yield from self._steps(owner, sites, obj, sla=True, all_ids=all_ids)
        base = Scope(obj, True, None, all_ids)
        for tree, path in sla_conditions(policy):
            yield from self._condition(owner, tree, path, base)

    def _steps(
        self, owner: Owner, sites: list[StepSite], obj: str | None, *, sla: bool, all_ids: frozenset[str]
    ) -> Iterator[Diagnostic]:
        earlier: set[str] = set()
        for site in sites:
            scope = Scope(
                obj,
                sla,
                frozenset(earlier),
                all_ids,
                f"step '{site.id or '?'}' of {owner.kind} '{owner.name}'",
            )
            for text, path in step_strings(site.step, site.path):
                if is_templated(text):
                    yield from self._string(owner, path, text, analyze(text), scope)
            for tname in _templates_of(site.step):
                self.used_templates.add(tname)
                yield from self._message_template(tname, scope)
            if site.id:
                earlier.add(site.id)

    def _condition(
        self, owner: Owner, tree: Any, path: tuple[str | int, ...], scope: Scope
    ) -> Iterator[Diagnostic]:
        for leaf, lpath in iter_leaves(tree, path):
            if isinstance(leaf, m.ExprCondition):
                yield from self._string(
                    owner, (*lpath, "expr"), leaf.expr, analyze_expression(leaf.expr), scope
                )
            elif isinstance(leaf.value, str) and is_templated(leaf.value):
                yield from self._string(owner, (*lpath, "value"), leaf.value, analyze(leaf.value), scope)

    def _message_template(self, name: str, scope: Scope) -> Iterator[Diagnostic]:
        template = self.ctx.project.templates.get(name)
        if template is None:
            return  # reported by the references pass
        if template.object is not None:
            scope = Scope(
                template.object if self.ctx.resolver.has_object(template.object) else None,
                scope.sla,
                scope.earlier,
                scope.all_steps,
                scope.used_by,
            )
        if name not in self._strings:
            self._strings[name] = _template_strings(template)
        strings = self._strings[name]
        # Only a template that reads steps.<id> depends on where it is used; the
        # others are checked once per object.
        uses_steps = any(v.root == "steps" for text, _ in strings for v in analyze(text).variables)
        key_scope = scope if uses_steps else Scope(scope.object, scope.sla, None)
        key = (name, key_scope)
        if key not in self._template_cache:
            owner = self.ctx.owner("template", name)
            found: list[Diagnostic] = []
            for text, path in strings:
                found.extend(self._string(owner, path, text, analyze(text), key_scope))
            self._template_cache[key] = found
        yield from self._once(self._template_cache[key])

    def unused_templates(self) -> Iterator[Diagnostic]:
        for name, template in self.ctx.project.templates.items():
            if name in self.used_templates:
                continue
            obj = (
                template.object if template.object and self.ctx.resolver.has_object(template.object) else None
            )
            # Not used by any step (yet): check what can be checked; `sla` may be meant for SLA actions.
            yield from self._message_template(name, Scope(obj, True, None))

    def _once(self, diags: list[Diagnostic]) -> Iterator[Diagnostic]:
        for d in diags:
            key = (d.range.file, d.range.line, d.range.column, d.code, d.summary)
            if key not in self._emitted:
                self._emitted.add(key)
                yield d

    # ----------------------------------------------------------------- one string

    def _string(
        self, owner: Owner, path: tuple[str | int, ...], text: str, analysis: TemplateAnalysis, scope: Scope
    ) -> list[Diagnostic]:
        problems = list(self._problems(analysis, scope))
        if not problems:
            return []
        out = []
        for p in problems:
            rng = self._locate(owner, path, p.lineno, p.needles)
            detail = f"used by {scope.used_by}" if owner.kind == "template" and scope.used_by else None
            out.append(Diagnostic(code=p.code, summary=p.summary, hint=p.hint, detail=detail, range=rng))
        return out

    def _locate(
        self, owner: Owner, path: tuple[str | int, ...], lineno: int, needles: Sequence[str]
    ) -> Range:
        src = owner.source
        if src is None:
            return Range(file="<builtin>")
        pos = position_in_scalar(src.text, src.positions, path, lineno, needles)
        return Range(file=src.file, line=pos.line, column=pos.column)

    def _problems(self, analysis: TemplateAnalysis, scope: Scope) -> Iterator[Problem]:
        if analysis.syntax_error is not None:
            err = analysis.syntax_error
            yield Problem(
                "template-syntax",
                f"template syntax error: {err.message}",
                "check that every {{ has its }} and every {% if %}/{% for %} its end tag",
                err.lineno,
                (),
            )
            return
        for var in analysis.variables:
            yield from self._variable(var, scope)
        # The codes are spelled out: tests/check/test_docs.py finds every code in the source.
        for code, kind, uses, known in (
            ("template-unknown-filter", "filter", analysis.filters, self.filters),
            ("template-unknown-test", "test", analysis.tests, self.tests),
        ):
            for use in uses:
                if use.name not in known:
                    yield Problem(
                        code,
                        f"unknown {kind} '{use.name}'",
                        did_you_mean(use.name, known) or f"see the Jinja2 built-in {kind}s",
                        use.lineno,
                        (use.name,),
                    )
        for call, arg in analysis.calls:
            if call.name == "team":
                invalid = ("team", arg) in self.ctx.project.invalid
                if arg is not None and arg not in self.ctx.project.teams and not invalid:
                    teams = self.ctx.project.teams
                    yield Problem(
                        "unknown-team",
                        f"unknown team '{arg}'",
                        did_you_mean(arg, teams)
                        or (f"known teams: {one_of(teams)}" if teams else "no team is defined yet"),
                        call.lineno,
                        (arg, call.name),
                    )
            elif call.name not in self.globals and call.name not in BASE_ROOTS:
                yield Problem(
                    "template-undefined-variable",
                    f"undefined function '{call.name}'",
                    did_you_mean(call.name, [*self.globals, "team"])
                    or "functions: team(name), " + one_of(self.globals),
                    call.lineno,
                    (call.name,),
                )

    def _variable(self, var: VariableUse, scope: Scope) -> Iterator[Problem]:
        roots = (*BASE_ROOTS, "sla") if scope.sla else BASE_ROOTS
        root, attrs = var.root, var.attrs
        if root == "record":
            if scope.object is None or not attrs:
                return
            resolved = self.ctx.resolver.resolve(scope.object, attrs, beyond_values=True)
            if resolved.problem is not None:
                bad = next(
                    (i for i in range(len(attrs)) if not self._resolves(scope.object, attrs[: i + 1])), 0
                )
                yield Problem(
                    "template-unknown-field",
                    f"{'.'.join(('record', *attrs[: bad + 1]))}: {resolved.problem.summary}",
                    resolved.problem.hint,
                    var.lineno,
                    (".".join(("record", *attrs[: bad + 1])), attrs[bad], root),
                )
        elif root in ("trigger", "run") or (root == "sla" and scope.sla):
            allowed = {"trigger": TRIGGER_ATTRS, "run": RUN_ATTRS, "sla": SLA_ATTRS}[root]
            if attrs and attrs[0] not in allowed:
                yield Problem(
                    "template-unknown-attribute",
                    f"{root}.{attrs[0]} is not defined; {root} has {', '.join(allowed)}",
                    did_you_mean(attrs[0], allowed),
                    var.lineno,
                    (f"{root}.{attrs[0]}", attrs[0], root),
                )
        elif root == "sla":
            yield Problem(
                "template-sla-outside-sla",
                "`sla` is only defined in an SLA policy's on_warning, on_breach and escalation actions",
                "use record fields here, or move this action into the SLA policy",
                var.lineno,
                (var.dotted, root),
            )
        elif root == "steps":
            if not attrs or scope.earlier is None:
                return
            step_id = attrs[0]
            if step_id not in scope.all_steps:
                yield Problem(
                    "template-unknown-step",
                    f"steps.{step_id}: there is no step '{step_id}'",
                    did_you_mean(step_id, scope.all_steps) or "name an earlier step's id: steps.<id>.output",
                    var.lineno,
                    (f"steps.{step_id}", step_id),
                )
            elif step_id not in scope.earlier:
                yield Problem(
                    "template-step-not-earlier",
                    f"steps.{step_id}: step '{step_id}' does not run before this one",
                    "a step can only read the output of steps before it",
                    var.lineno,
                    (f"steps.{step_id}", step_id),
                )
        elif root in roots or root in self.globals:
            return
        else:
            yield Problem(
                "template-undefined-variable",
                f"undefined variable '{root}'",
                did_you_mean(root, roots) or f"templates see {', '.join(roots)}",
                var.lineno,
                (var.dotted, root),
            )

    def _resolves(self, obj: str, attrs: tuple[str, ...]) -> bool:
        return self.ctx.resolver.resolve(obj, attrs, beyond_values=True).problem is None


def _templates_of(step: Any) -> list[str]:
    names = []
    if (
        isinstance(step, m.SendEmail | m.SendSms | m.SendWhatsapp)
        and step.template
        and not is_templated(step.template)
    ):
        names.append(step.template)
    if isinstance(step, m.SendEmail):
        names += [v.template for v in step.variants or [] if not is_templated(v.template)]
    return names


_TEMPLATE_META = frozenset({"kind", "name", "description", "channel", "object"})


def _template_strings(template: m.Template) -> list[tuple[str, tuple[str | int, ...]]]:
    out: list[tuple[str, tuple[str | int, ...]]] = []

    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(value, str):
            if is_templated(value):
                out.append((value, path))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))

    data = template.model_dump(by_alias=True, exclude_none=True, exclude_unset=True)
    for key, value in data.items():
        if key not in _TEMPLATE_META:
            walk(value, (key,))
    return out
