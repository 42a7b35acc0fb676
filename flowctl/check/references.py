"""Names and references: every name a resource uses must exist, with the right shape.

Unknown templates, calendars, teams, objects, flows (call_flow) and goto
targets; step ids (present and unique within a flow, nested branches
included); fields that steps and triggers read or write; a message step's
template on the right channel. Templated values (`{{ … }}`) are only known at
run time and are skipped here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flowctl.check.context import CheckContext, Owner, is_dynamic
from flowctl.check.diagnostics import Diagnostic
from flowctl.check.fields import value_problem
from flowctl.check.suggest import did_you_mean, one_of
from flowctl.check.walk import StepSite, flow_steps, sla_steps
from flowctl.resources import models as m

# The template channel each message step needs.
STEP_CHANNELS = {"send_email": "email", "send_sms": "sms", "send_whatsapp": "whatsapp"}


def check_references(ctx: CheckContext) -> Iterator[Diagnostic]:
    project = ctx.project
    for name, flow in project.flows.items():
        yield from _flow(ctx, ctx.owner("flow", name), flow)
    for name, policy in project.sla_policies.items():
        owner = ctx.owner("sla_policy", name)
        yield from _object_name(ctx, owner, policy.object, ("object",))
        if policy.calendar is not None and policy.calendar not in project.calendars:
            yield from _unknown(ctx, owner, ("calendar",), "calendar", policy.calendar, project.calendars)
        obj = policy.object if ctx.resolver.has_object(policy.object) else None
        for site in sla_steps(policy):
            yield from _step(ctx, owner, obj, site, flow=None)
    for name, template in project.templates.items():
        if template.object is not None:
            yield from _object_name(ctx, ctx.owner("template", name), template.object, ("object",))
    for name, schema in project.defined_objects.items():
        yield from _object_schema(ctx, ctx.owner("object", name), schema)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _unknown(
    ctx: CheckContext, owner: Owner, path: tuple[str | int, ...], kind: str, value: str, known: Any
) -> Iterator[Diagnostic]:
    if (kind, value) in ctx.project.invalid:
        return  # it exists but does not validate; its own diagnostics say why
    names = list(known)
    hint = did_you_mean(value, names) or (
        f"known {kind}s: {one_of(names)}" if names else f"no {kind} is defined yet"
    )
    yield ctx.diag(owner, path, f"unknown-{kind}", f"unknown {kind} '{value}'", hint=hint)


def _object_name(
    ctx: CheckContext, owner: Owner, name: str | None, path: tuple[str | int, ...]
) -> Iterator[Diagnostic]:
    if name is not None and not ctx.resolver.has_object(name) and ("object", name) not in ctx.project.invalid:
        names = list(ctx.resolver.objects)
        yield ctx.diag(
            owner,
            path,
            "unknown-object",
            f"unknown object '{name}'",
            hint=did_you_mean(name, names)
            or f"define it in schemas/objects/{name}.yaml (known: {one_of(names)})",
        )


def _field(
    ctx: CheckContext,
    owner: Owner,
    obj: str | None,
    field: str | None,
    path: tuple[str | int, ...],
    what: str,
) -> Iterator[Diagnostic]:
    """A (possibly dotted) field path must exist on `obj`."""
    if obj is None or not field or is_dynamic(field):
        return
    resolved = ctx.resolver.resolve(obj, field)
    if resolved.problem is not None:
        yield ctx.from_problem(owner, path, resolved.problem, what)


# --------------------------------------------------------------------------- flows


def _flow(ctx: CheckContext, owner: Owner, flow: m.Flow) -> Iterator[Diagnostic]:
    yield from _object_name(ctx, owner, flow.object, ("object",))
    obj = flow.object if flow.object is not None and ctx.resolver.has_object(flow.object) else None
    yield from _trigger(ctx, owner, obj, flow.trigger)

    seen: dict[str, StepSite] = {}
    sites = list(flow_steps(flow))
    for site in sites:
        if site.id is None:
            yield ctx.diag(
                owner,
                site.path,
                "missing-step-id",
                "step has no `id`",
                hint="give every step of a flow a unique id (goto, tests and traces name steps by it)",
            )
        elif site.id in seen:
            first = owner.range((*seen[site.id].path, "id"))
            yield ctx.diag(
                owner,
                (*site.path, "id"),
                "duplicate-step-id",
                f"step id '{site.id}' is used twice in flow '{flow.name}'",
                detail=f"first used at {first.file}:{first.line}:{first.column}",
                hint="step ids are unique within a flow, nested branches included; rename one",
            )
        else:
            seen[site.id] = site
    for site in sites:
        yield from _step(ctx, owner, obj, site, flow=flow, step_ids=seen)


def _trigger(ctx: CheckContext, owner: Owner, obj: str | None, trigger: Any) -> Iterator[Diagnostic]:
    if obj is None:
        return
    if isinstance(trigger, m.DateTrigger):
        resolved = ctx.resolver.resolve(obj, trigger.field)
        if resolved.problem is not None:
            yield ctx.from_problem(owner, ("trigger", "field"), resolved.problem, "date trigger")
        elif resolved.field is not None and resolved.field.type not in ("date", "datetime"):
            yield ctx.diag(
                owner,
                ("trigger", "field"),
                "date-trigger-not-date",
                f"date trigger on '{trigger.field}', a field of type {resolved.field.type}",
                hint="a date trigger needs a date or datetime field (renewal_date, birthday, …)",
            )
    elif isinstance(trigger, m.RecordUpdatedTrigger):
        for i, name in enumerate(trigger.fields or []):
            yield from _field(ctx, owner, obj, name, ("trigger", "fields", i), "trigger")
    elif isinstance(trigger, m.FieldChangedTrigger):
        resolved = ctx.resolver.resolve(obj, trigger.field)
        if resolved.problem is not None:
            yield ctx.from_problem(owner, ("trigger", "field"), resolved.problem, "trigger")
        elif resolved.field is not None:
            for key, present, value in (
                ("from", trigger.has_from, trigger.from_),
                ("to", trigger.has_to, trigger.to),
            ):
                problem = value_problem(resolved.field, value) if present else None
                if problem is not None:
                    yield ctx.from_problem(owner, ("trigger", key), problem, f"trigger `{key}`")


# --------------------------------------------------------------------------- steps


def _step(
    ctx: CheckContext,
    owner: Owner,
    obj: str | None,
    site: StepSite,
    *,
    flow: m.Flow | None,
    step_ids: dict[str, StepSite] | None = None,
) -> Iterator[Diagnostic]:
    project = ctx.project
    step, path = site.step, site.path
    kind = site.kind

    # Message templates: they must exist and be of the step's channel.
    if kind in STEP_CHANNELS:
        refs: list[tuple[str, tuple[str | int, ...]]] = []
        if getattr(step, "template", None):
            refs.append((step.template, (*path, "template")))
        for i, variant in enumerate(getattr(step, "variants", None) or []):
            refs.append((variant.template, (*path, "variants", i, "template")))
        for name, tpath in refs:
            if is_dynamic(name):
                continue
            template = project.templates.get(name)
            if template is None:
                yield from _unknown(ctx, owner, tpath, "template", name, project.templates)
            elif template.channel != STEP_CHANNELS[kind]:
                same = [n for n, t in project.templates.items() if t.channel == STEP_CHANNELS[kind]]
                yield ctx.diag(
                    owner,
                    tpath,
                    "template-wrong-channel",
                    f"{kind} uses template '{name}', {_article(template.channel)} {template.channel} template",
                    hint=f"{kind} needs {_article(STEP_CHANNELS[kind])} {STEP_CHANNELS[kind]} template"
                    + (f" ({one_of(same, limit=5)})" if same else ""),
                )
            elif template.object is not None and obj is not None and template.object != obj:
                yield ctx.diag(
                    owner,
                    tpath,
                    "template-object-mismatch",
                    f"template '{name}' is written for {template.object} records; this runs on {obj}",
                    hint="use a template for this object, or remove `object:` from the template",
                )

    if isinstance(step, m.AssignRecord):
        if step.team and not is_dynamic(step.team) and step.team not in project.teams:
            yield from _unknown(ctx, owner, (*path, "team"), "team", step.team, project.teams)
        yield from _field(ctx, owner, obj, step.skills_from, (*path, "skills_from"), "skills_from")
        yield from _field(ctx, owner, obj, step.language_from, (*path, "language_from"), "language_from")
        yield from _field(ctx, owner, obj, step.field, (*path, "field"), "assign_record field")
    elif isinstance(step, m.UpdateRecord):
        yield from _update_record(ctx, owner, obj, step, path)
    elif isinstance(step, m.CreateRecord):
        if not is_dynamic(step.object):
            yield from _object_name(ctx, owner, step.object, (*path, "object"))
            if ctx.resolver.has_object(step.object):
                yield from _set_values(ctx, owner, step.object, step.values, (*path, "values"))
    elif isinstance(step, m.MergeDuplicates):
        for i, name in enumerate(step.match):
            yield from _field(ctx, owner, obj, name, (*path, "match", i), "merge_duplicates match")
        if step.mark and obj is not None:
            yield from _set_values(ctx, owner, obj, step.mark, (*path, "mark"))
    elif isinstance(step, m.WaitStep):
        cal = step.wait.calendar
        if cal is not None and not is_dynamic(cal) and cal not in project.calendars:
            yield from _unknown(ctx, owner, (*path, "wait", "calendar"), "calendar", cal, project.calendars)
    elif isinstance(step, m.CallFlowStep):
        target = step.call_flow.flow
        if not is_dynamic(target) and target not in project.flows:
            yield from _unknown(ctx, owner, (*path, "call_flow", "flow"), "flow", target, project.flows)
        elif flow is not None and target in project.flows:
            child = project.flows[target]
            if child.object is not None and flow.object is not None and child.object != flow.object:
                yield ctx.diag(
                    owner,
                    (*path, "call_flow", "flow"),
                    "call-flow-object-mismatch",
                    f"flow '{target}' runs on {child.object} records; this flow runs on {flow.object}",
                    hint="call_flow starts the flow for the same record, so both must run on the same object",
                )

    if step_ids is not None:
        if isinstance(step, m.GotoStep) and step.goto not in step_ids:
            yield _unknown_goto(ctx, owner, (*path, "goto"), step.goto, step_ids)
        if isinstance(step.on_failure, m.GotoRef) and step.on_failure.goto not in step_ids:
            yield _unknown_goto(ctx, owner, (*path, "on_failure", "goto"), step.on_failure.goto, step_ids)


def _unknown_goto(
    ctx: CheckContext, owner: Owner, path: tuple[str | int, ...], target: str, ids: dict[str, StepSite]
) -> Diagnostic:
    return ctx.diag(
        owner,
        path,
        "unknown-goto-target",
        f"goto target '{target}' is not a step of this flow",
        hint=did_you_mean(target, ids) or f"step ids: {one_of(ids)}",
    )


def _update_record(
    ctx: CheckContext, owner: Owner, obj: str | None, step: m.UpdateRecord, path: tuple[str | int, ...]
) -> Iterator[Diagnostic]:
    if obj is None:
        return
    target = obj
    if step.record is not None and not is_dynamic(step.record):
        resolved = ctx.resolver.resolve(obj, step.record)
        if resolved.problem is not None:
            yield ctx.from_problem(owner, (*path, "record"), resolved.problem, "update_record record")
            return
        if resolved.field is None:
            return
        if resolved.field.type != "ref" or not resolved.field.object:
            yield ctx.diag(
                owner,
                (*path, "record"),
                "field-not-a-ref",
                f"update_record `record: {step.record}` is a field of type {resolved.field.type}, not a ref",
                hint="`record` names a ref field (e.g. account) whose related record is updated",
            )
            return
        target = resolved.field.object
        if not ctx.resolver.has_object(target):
            return
    elif step.record is not None:
        return
    yield from _set_values(ctx, owner, target, step.set, (*path, "set"))


def _set_values(
    ctx: CheckContext, owner: Owner, obj: str, values: dict[str, Any], path: tuple[str | int, ...]
) -> Iterator[Diagnostic]:
    """Keys of `set:` / `values:` / `mark:` are fields of `obj`; constant values fit the field."""
    for key, value in values.items():
        resolved = ctx.resolver.resolve(obj, key)
        if resolved.problem is not None:
            yield ctx.from_problem(owner, (*path, key), resolved.problem, prefer_key=True)
            continue
        if resolved.field is not None:
            problem = value_problem(resolved.field, value)
            if problem is not None:
                yield ctx.from_problem(owner, (*path, key), problem, key)


# --------------------------------------------------------------------------- objects


def _object_schema(ctx: CheckContext, owner: Owner, obj: m.ObjectSchema) -> Iterator[Diagnostic]:
    for fname, fdef in obj.fields.items():
        if fdef.type == "ref" and fdef.object:
            yield from _object_name(ctx, owner, fdef.object, ("fields", fname, "object"))
    for channel, rule in obj.consent.items():
        resolved = ctx.resolver.resolve(obj.name, rule.field)
        if resolved.problem is not None:
            yield ctx.from_problem(
                owner, ("consent", channel, "field"), resolved.problem, f"consent rule for {channel}"
            )
        elif resolved.field is not None and rule.op not in ("is_set", "is_empty"):
            problem = value_problem(resolved.field, rule.value)
            if problem is not None:
                yield ctx.from_problem(
                    owner, ("consent", channel, "value"), problem, f"consent rule for {channel}"
                )
