"""The step graph of a flow: steps that can never run, and goto loops that never wait.

Each step is a node (keyed by its YAML path, so even a step without an id is
one); edges follow what the engine does next: the next step of the list, the
first step of each branch, a branch's end back to what follows its parent
step, a goto's target, an `on_failure: {goto}`'s target, a `stop` to the end.
A step with `when` may be skipped, so it also leads to the next step.

A loop is a set of steps that reach each other; one with no wait, approval,
human task or waiting call_flow in it spins until the runner's loop guard
(100 visits to one step) stops the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flowctl.check.context import CheckContext, Owner
from flowctl.check.cycles import cyclic_components
from flowctl.check.diagnostics import Diagnostic
from flowctl.check.walk import YamlPath, child_lists, flow_steps
from flowctl.resources import models as m

END: YamlPath = ("<end>",)


@dataclass
class StepGraph:
    succ: dict[YamlPath, set[YamlPath]] = field(default_factory=dict)
    steps: dict[YamlPath, Any] = field(default_factory=dict)
    order: list[YamlPath] = field(default_factory=list)  # document order
    parent: dict[YamlPath, YamlPath | None] = field(default_factory=dict)
    previous: dict[YamlPath, YamlPath | None] = field(default_factory=dict)  # previous sibling
    gotos: set[tuple[YamlPath, YamlPath, YamlPath]] = field(
        default_factory=set
    )  # (from, to, yaml path of the goto)
    entry: YamlPath = END


def build_graph(flow: m.Flow) -> StepGraph:
    ids = {site.id: site.path for site in flow_steps(flow) if site.id}
    graph = StepGraph()

    def link(items: list[tuple[Any, YamlPath]], cont: YamlPath, parent: YamlPath | None) -> YamlPath:
        keys = [key for _, key in items]
        for i, (step, key) in enumerate(items):
            nxt = keys[i + 1] if i + 1 < len(keys) else cont
            graph.steps[key] = step
            graph.order.append(key)
            graph.parent[key] = parent
            graph.previous[key] = keys[i - 1] if i else None
            out = graph.succ.setdefault(key, set())
            if isinstance(step, m.GotoStep):
                target = ids.get(step.goto)
                if target is not None:
                    out.add(target)
                    graph.gotos.add((key, target, (*key, "goto")))
            elif isinstance(step, m.StopStep):
                out.add(END)
            else:
                branches = child_lists(step)
                for rel, children in branches:
                    out.add(link([(c, (*key, *rel, j)) for j, c in enumerate(children)], nxt, key))
                if isinstance(step, m.SendWhatsapp) and step.fallback is not None:
                    out.add(link([(step.fallback, (*key, "fallback"))], nxt, key))
                # Control continues after the step unless every way out is a branch
                # (if/else and switch always take one of their branches).
                takes_branch = isinstance(step, m.IfStep | m.SwitchStep)
                if not takes_branch:
                    out.add(nxt)
            if step.when is not None:
                out.add(nxt)  # skipped
            if isinstance(step.on_failure, m.GotoRef):
                target = ids.get(step.on_failure.goto)
                if target is not None:
                    out.add(target)
                    graph.gotos.add((key, target, (*key, "on_failure", "goto")))
        return keys[0] if keys else cont

    graph.entry = link([(s, ("steps", i)) for i, s in enumerate(flow.steps)], END, None)
    return graph


def reachable(graph: StepGraph) -> set[YamlPath]:
    seen: set[YamlPath] = set()
    todo = [graph.entry]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(graph.succ.get(node, ()))
    return seen


def _blocks(step: Any) -> bool:
    """Steps that make a run wait for time or people, so a loop through them does not spin."""
    if isinstance(step, m.WaitStep | m.Approval | m.HumanTask):
        return True
    return isinstance(step, m.CallFlowStep) and step.call_flow.wait


def _label(step: Any, key: YamlPath) -> str:
    step_id = getattr(step, "id", None)
    return f"'{step_id}'" if step_id else "/".join(str(k) for k in key)


def check_graph(ctx: CheckContext) -> Iterator[Diagnostic]:
    for name, flow in ctx.project.flows.items():
        owner = ctx.owner("flow", name)
        graph = build_graph(flow)
        yield from _unreachable(ctx, owner, graph)
        yield from _spinning_loops(ctx, owner, graph)


def _unreachable(ctx: CheckContext, owner: Owner, graph: StepGraph) -> Iterator[Diagnostic]:
    live = reachable(graph)
    reported: set[YamlPath] = set()
    for key in graph.order:
        if key in live or key in reported:
            continue
        parent = graph.parent[key]
        prev = graph.previous[key]
        # Report where dead code starts: not inside a dead parent, not after a dead sibling.
        if (parent is not None and parent not in live) or (prev is not None and prev not in live):
            continue
        run = [key]
        siblings = [k for k in graph.order if graph.parent[k] == parent and k[:-1] == key[:-1]]
        for other in siblings[siblings.index(key) + 1 :]:
            if other in live:
                break
            run.append(other)
        reported.update(run)
        labels = ", ".join(_label(graph.steps[k], k) for k in run)
        what = f"step {labels} can" if len(run) == 1 else f"steps {labels} can"
        yield ctx.diag(
            owner,
            key,
            "unreachable-step",
            f"{what} never run",
            detail="it follows a goto or stop, and no goto leads to it",
            hint="remove it, or add a goto to it (or move it before the goto/stop)",
            severity="warning",
        )


def _spinning_loops(ctx: CheckContext, owner: Owner, graph: StepGraph) -> Iterator[Diagnostic]:
    moving = [k for k in graph.order if not _blocks(graph.steps[k])]
    allowed = set(moving)
    succ = {k: [n for n in graph.succ.get(k, ()) if n in allowed] for k in moving}
    for component in cyclic_components(moving, succ):
        members = set(component)
        gotos = sorted(
            (g for g in graph.gotos if g[0] in members and g[1] in members),
            key=lambda g: graph.order.index(g[0]),
        )
        if not gotos:
            continue
        _, dst, goto_path = gotos[0]
        loop = [k for k in graph.order if k in members]
        names = [_label(graph.steps[k], k) for k in loop]
        if len(names) > 12:
            names = [*names[:5], f"… ({len(names) - 10} more)", *names[-5:]]
        labels = " → ".join(names)
        yield ctx.diag(
            owner,
            goto_path,
            "goto-loop-without-wait",
            f"goto {_label(graph.steps[dst], dst)} makes a loop with no wait, approval or human task in it",
            detail=f"the loop: {labels}",
            hint="add a wait step inside the loop (or an approval/human_task); "
            "the runner stops a run that visits one step more than 100 times",
        )
