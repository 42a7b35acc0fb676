"""Walking steps and conditions with the YAML path of every node.

Every pass needs "each step of this flow, nested branches included" and
"each condition leaf", and each diagnostic needs the YAML path that leads
to the node (for `Project.range`). This module is the one place that knows
where nested steps and conditions live in each model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from flowctl.resources import models as m

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class StepSite:
    """One step with where it is: its YAML path and the ids of its enclosing steps."""

    step: Any  # one of the Step models
    path: YamlPath
    parents: tuple[str, ...] = ()

    @property
    def kind(self) -> str | None:
        return m.step_kind(self.step)

    @property
    def id(self) -> str | None:
        step_id = getattr(self.step, "id", None)
        return step_id if isinstance(step_id, str) else None


def child_lists(step: Any) -> list[tuple[YamlPath, list[Any]]]:
    """The nested step lists of a step, each with its YAML path relative to the step."""
    out: list[tuple[YamlPath, list[Any]]] = []
    if isinstance(step, m.IfStep):
        out += [(("then",), step.then), (("else",), step.else_)]
    elif isinstance(step, m.SwitchStep):
        out += [(("switch", "cases", i, "steps"), c.steps) for i, c in enumerate(step.switch.cases)]
        out.append((("switch", "default"), step.switch.default))
    elif isinstance(step, m.Approval):
        if step.on_reject:
            out.append((("on_reject",), step.on_reject))
        if isinstance(step.on_timeout, list):
            out.append((("on_timeout",), step.on_timeout))
    return out


def iter_steps(steps: list[Any], base: YamlPath, parents: tuple[str, ...] = ()) -> Iterator[StepSite]:
    """Every step in document order (pre-order), nested branches and WhatsApp fallbacks included."""
    for i, step in enumerate(steps):
        path = (*base, i)
        site = StepSite(step, path, parents)
        yield site
        inner_parents = (*parents, site.id) if site.id else parents
        if isinstance(step, m.SendWhatsapp) and step.fallback is not None:
            yield from _single(step.fallback, (*path, "fallback"), inner_parents)
        for rel, children in child_lists(step):
            yield from iter_steps(children, (*path, *rel), inner_parents)


def _single(step: Any, path: YamlPath, parents: tuple[str, ...]) -> Iterator[StepSite]:
    site = StepSite(step, path, parents)
    yield site
    inner_parents = (*parents, site.id) if site.id else parents
    for rel, children in child_lists(step):
        yield from iter_steps(children, (*path, *rel), inner_parents)


def flow_steps(flow: m.Flow) -> Iterator[StepSite]:
    return iter_steps(flow.steps, ("steps",))


def sla_action_lists(policy: m.SlaPolicy) -> list[tuple[YamlPath, list[Any]]]:
    out: list[tuple[YamlPath, list[Any]]] = [
        (("on_warning",), policy.on_warning),
        (("on_breach",), policy.on_breach),
    ]
    out += [(("escalations", i, "actions"), e.actions) for i, e in enumerate(policy.escalations)]
    return out


def sla_steps(policy: m.SlaPolicy) -> Iterator[StepSite]:
    for base, steps in sla_action_lists(policy):
        yield from iter_steps(steps, base)


# --------------------------------------------------------------------------- conditions

Leaf = m.LeafCondition | m.ExprCondition


def iter_leaves(condition: Any, path: YamlPath) -> Iterator[tuple[Leaf, YamlPath]]:
    """Every leaf (`{field, op, value}` or `{expr}`) of a condition tree, with its path."""
    if isinstance(condition, m.LeafCondition | m.ExprCondition):
        yield condition, path
    elif isinstance(condition, m.AllCondition):
        for i, c in enumerate(condition.all):
            yield from iter_leaves(c, (*path, "all", i))
    elif isinstance(condition, m.AnyCondition):
        for i, c in enumerate(condition.any):
            yield from iter_leaves(c, (*path, "any", i))
    elif isinstance(condition, m.NotCondition):
        yield from iter_leaves(condition.not_, (*path, "not"))


def step_conditions(step: Any, path: YamlPath) -> Iterator[tuple[Any, YamlPath]]:
    """The condition trees a step holds itself (not those of nested steps)."""
    if step.when is not None:
        yield step.when, (*path, "when")
    if isinstance(step, m.IfStep):
        yield step.if_, (*path, "if")
    elif isinstance(step, m.SwitchStep):
        for i, case in enumerate(step.switch.cases):
            yield case.when, (*path, "switch", "cases", i, "when")
    elif isinstance(step, m.WaitStep) and step.wait.until_condition is not None:
        yield step.wait.until_condition, (*path, "wait", "until_condition")


def flow_conditions(flow: m.Flow) -> Iterator[tuple[Any, YamlPath]]:
    """Every condition tree of a flow: entry conditions, schedule selection, step conditions."""
    if flow.conditions is not None:
        yield flow.conditions, ("conditions",)
    if isinstance(flow.trigger, m.ScheduleTrigger) and flow.trigger.conditions is not None:
        yield flow.trigger.conditions, ("trigger", "conditions")
    for site in flow_steps(flow):
        yield from step_conditions(site.step, site.path)


def sla_conditions(policy: m.SlaPolicy) -> Iterator[tuple[Any, YamlPath]]:
    if policy.applies_when is not None:
        yield policy.applies_when, ("applies_when",)
    for i, target in enumerate(policy.targets):
        if target.when is not None:
            yield target.when, ("targets", i, "when")
    for name, clock in policy.clocks.items():
        for key in ("start_when", "pause_when", "stop_when"):
            cond = getattr(clock, key)
            if cond is not None:
                yield cond, ("clocks", name, key)
    for site in sla_steps(policy):
        yield from step_conditions(site.step, site.path)


# --------------------------------------------------------------------------- strings

# Keys of a step that hold nested steps or conditions: walked by their own passes.
_NOT_TEXT = frozenset(
    {"then", "else", "on_reject", "on_timeout", "fallback", "when", "if", "until_condition"}
)


def step_strings(step: BaseModel, path: YamlPath) -> Iterator[tuple[str, YamlPath]]:
    """Every string value a step holds itself (templated text lives there), with its path.

    Nested steps and conditions are left out: they are visited as steps and
    conditions of their own.
    """
    data = step.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)
    for key, value in data.items():
        if key in _NOT_TEXT:
            continue
        if key == "switch" and isinstance(value, dict):
            # Only the steps and conditions are in a switch; nothing textual.
            continue
        if key == "wait" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "until_condition"}
        yield from _strings(value, (*path, key))


def _strings(value: Any, path: YamlPath) -> Iterator[tuple[str, YamlPath]]:
    if isinstance(value, str):
        yield value, path
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
