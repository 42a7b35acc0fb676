"""SLA actions as flows: `on_warning`, `on_breach` and each escalation level of a policy, run by the run engine.

An SLA action list runs as an ordinary run (retries, outbox, waits and
timeline lines all behave as in a flow) of a *synthetic flow* named
`sla:<policy>:<list>` — `sla:support-sla:on_breach`,
`sla:support-sla:escalations.0`. The flow is derived from the policy of the
bundle version the run is pinned to, so a run started before an apply finishes
on the actions it started with, exactly like a flow run (SPEC §10.9).

Action steps need no `id` in a policy (§10.10): top-level steps without one get
`<list>.<n>` (`on_breach.0`), so traces and step attempts read naturally.
"""

from __future__ import annotations

from typing import Any

from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import Flow, ManualTrigger, SlaPolicy

PREFIX = "sla:"

# Synthetic flows per (bundle object, name). Bundles are immutable; the program cache
# (flowctl.engine.program) is keyed by the flow object, so the same name must give the same object.
_FLOWS: dict[tuple[int, str], tuple[TypedBundle, Flow]] = {}
_CACHE_LIMIT = 4096


def action_flow_name(policy: str, kind: str, level: int | None = None) -> str:
    """`sla:<policy>:on_warning|on_breach` or `sla:<policy>:escalations.<level>`."""
    if kind == "escalation":
        return f"{PREFIX}{policy}:escalations.{level}"
    return f"{PREFIX}{policy}:on_{kind}"


def is_sla_flow(name: str) -> bool:
    return name.startswith(PREFIX)


def action_steps(policy: SlaPolicy, list_name: str) -> list[Any] | None:
    """The steps of `on_warning`, `on_breach` or `escalations.<n>`; None when the policy has no such list."""
    if list_name == "on_warning":
        return list(policy.on_warning)
    if list_name == "on_breach":
        return list(policy.on_breach)
    if list_name.startswith("escalations."):
        try:
            level = int(list_name.split(".", 1)[1])
        except ValueError:
            return None
        if 0 <= level < len(policy.escalations):
            return list(policy.escalations[level].actions)
    return None


def _named(steps: list[Any], list_name: str) -> list[Any]:
    return [s if getattr(s, "id", None) else s.model_copy(update={"id": f"{list_name}.{i}"})
            for i, s in enumerate(steps)]


def flow_model(bundle: TypedBundle, name: str) -> Flow:
    """The flow called `name` in `bundle`: a real flow, or the synthetic flow of an SLA action list.

    Raises KeyError when neither exists (as `bundle.flows[name]` does).
    """
    flow = bundle.flows.get(name)
    if flow is not None:
        return flow
    if not is_sla_flow(name):
        raise KeyError(name)
    key = (id(bundle), name)
    hit = _FLOWS.get(key)
    if hit is not None and hit[0] is bundle:
        return hit[1]
    policy_name, _, list_name = name[len(PREFIX):].partition(":")
    policy = bundle.sla_policies.get(policy_name)
    steps = action_steps(policy, list_name) if policy is not None else None
    if policy is None or not steps:
        raise KeyError(name)
    calendar = bundle.calendars.get(policy.calendar) if policy.calendar else None
    # Validated pieces put together without re-validation: the synthetic name is not a resource name.
    synthetic = Flow.model_construct(
        kind="flow",
        name=name,
        description=f"{list_name} actions of SLA policy {policy_name}",
        object=policy.object,
        enabled=True,
        timezone=calendar.timezone if calendar is not None else "UTC",
        trigger=ManualTrigger(type="manual"),
        conditions=None,
        reentry="always",
        dedupe=None,
        steps=_named(steps, list_name),
    )
    if len(_FLOWS) > _CACHE_LIMIT:
        _FLOWS.clear()
    _FLOWS[key] = (bundle, synthetic)
    return synthetic
