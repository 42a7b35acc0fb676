"""A flow compiled into a step graph.

Every step, nested ones included (then/else, switch cases and default,
approval on_reject/on_timeout, a whatsapp fallback), becomes a `Node` found by
its id. `next` is where execution goes when the step is done: the following
step in its list or, when a branch ends, the continuation after the enclosing
if/switch/approval/whatsapp step. A run stores only the current step id, so
it continues after a restart from the graph alone.

Steps without an id (SLA actions need none, SPEC §10.10) get a synthetic id
`#<path>` so the graph stays keyed by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from flowctl.resources.models import (
    Approval,
    IfStep,
    SendWhatsapp,
    SwitchStep,
    step_kind,
)


@dataclass
class Node:
    id: str
    step: Any  # the resource model of the step
    kind: str  # action name or control key (wait, if, switch, goto, call_flow, stop)
    next: str | None  # continuation when the step is done; None ends the run
    branches: dict[str, str | None] = field(default_factory=dict)  # then/else/case:N/default/on_reject/...
    parent: str | None = None
    path: str = ""  # YAML path inside the flow, e.g. steps.3.then.0


@dataclass
class Program:
    name: str
    first: str | None
    nodes: dict[str, Node]
    order: list[str]  # every step id in document order

    def node(self, step_id: str) -> Node:
        return self.nodes[step_id]

    def successors(self, step_id: str) -> set[str | None]:
        """Where execution may go from a step (None = the run ends); used to check run paths."""
        node = self.nodes[step_id]
        out: set[str | None] = {node.next}
        out.update(node.branches.values())
        if node.kind == "goto":
            out = {node.step.goto}
        elif node.kind == "stop":
            out = {None}
        on_failure = getattr(node.step, "on_failure", None)
        goto = getattr(on_failure, "goto", None)
        if goto:
            out.add(goto)
        out.add(None)  # any step may end the run by failing
        return out


def _step_id(step: BaseModel, path: str) -> str:
    sid = getattr(step, "id", None)
    return sid if sid else f"#{path}"


def compile_steps(name: str, steps: list[Any], path: str = "steps") -> Program:
    """Compile a list of steps (a flow's, or an SLA action list) into a Program."""
    nodes: dict[str, Node] = {}
    order: list[str] = []

    def walk(items: list[Any], base: str, continuation: str | None, parent: str | None) -> str | None:
        ids = [_step_id(s, f"{base}.{i}") for i, s in enumerate(items)]
        for i, step in enumerate(items):
            sid = ids[i]
            nxt = ids[i + 1] if i + 1 < len(items) else continuation
            kind = step_kind(step) or "unknown"
            node = Node(id=sid, step=step, kind=kind, next=nxt, parent=parent, path=f"{base}.{i}")
            if sid in nodes:
                # validate reports duplicate ids; the engine keeps the first so
                # that a run on an unvalidated bundle still behaves predictably.
                continue
            nodes[sid] = node
            order.append(sid)
            here = f"{base}.{i}"
            if isinstance(step, IfStep):
                node.branches["then"] = walk(step.then, f"{here}.then", nxt, sid)
                node.branches["else"] = walk(step.else_, f"{here}.else", nxt, sid)
            elif isinstance(step, SwitchStep):
                for n, case in enumerate(step.switch.cases):
                    node.branches[f"case:{n}"] = walk(case.steps, f"{here}.switch.cases.{n}.steps", nxt, sid)
                node.branches["default"] = walk(step.switch.default, f"{here}.switch.default", nxt, sid)
            elif isinstance(step, Approval):
                if step.on_reject:
                    node.branches["on_reject"] = walk(step.on_reject, f"{here}.on_reject", nxt, sid)
                if isinstance(step.on_timeout, list):
                    node.branches["on_timeout"] = walk(step.on_timeout, f"{here}.on_timeout", nxt, sid)
            elif isinstance(step, SendWhatsapp) and step.fallback is not None:
                node.branches["fallback"] = walk([step.fallback], f"{here}.fallback", nxt, sid)
        return ids[0] if ids else continuation

    first = walk(steps, path, None, None)
    return Program(name=name, first=first, nodes=nodes, order=order)


_CACHE: dict[int, tuple[Any, Program]] = {}


def program_for(flow: Any) -> Program:
    """The compiled program of a Flow model, cached per model object (bundles are immutable)."""
    key = id(flow)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is flow:
        return hit[1]
    program = compile_steps(flow.name, flow.steps)
    if len(_CACHE) > 4096:
        _CACHE.clear()
    _CACHE[key] = (flow, program)
    return program
