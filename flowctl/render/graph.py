"""Flow diagrams: Mermaid (for pull requests and Markdown) and Graphviz DOT.

A flow is first turned into a small graph model (`FlowGraph`: nodes with a
shape and a label, edges with a label and a style), then printed by one of two
renderers, so both formats always show the same thing:

- the trigger and the entry conditions (with the "no run" exit);
- every step, in order, including the ones nested in `if` / `switch` branches,
  approval outcomes and WhatsApp fallbacks;
- labelled edges: then/else, switch cases, approved/rejected/timeout, goto;
- failure paths: the retry policy on the step, `on_failure: continue | goto |
  compensate` as dashed edges, compensation as a "manual task" node whose
  outcome is done (the run goes on) or rejected (the run fails).

`render_mermaid(flow)` and `render_dot(flow)` are the public API (the plan
renderer uses them too).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from flowctl.resources.models import (
    AllCondition,
    AnyCondition,
    Approval,
    ApproverEntry,
    AssignRecord,
    CallFlowStep,
    CreateEvent,
    CreateRecord,
    CreateTask,
    DateTrigger,
    EventTrigger,
    ExprCondition,
    FieldChangedTrigger,
    Flow,
    GotoRef,
    GotoStep,
    HumanTask,
    IfStep,
    LeafCondition,
    Log,
    ManualTrigger,
    MergeDuplicates,
    NotCondition,
    Notify,
    RecordCreatedTrigger,
    RecordDeletedTrigger,
    RecordUpdatedTrigger,
    ScheduleTrigger,
    SendEmail,
    SendSms,
    SendWhatsapp,
    StepBase,
    StopStep,
    SwitchStep,
    UpdateRecord,
    WaitStep,
    Webhook,
    child_step_lists,
    step_kind,
)

Shape = Literal[
    "trigger", "decision", "action", "wait", "approval", "task", "call", "stop", "end", "failed", "manual"
]
EdgeStyle = Literal["normal", "branch", "failure", "goto"]

# Labels are for reading, not for reproducing the YAML: long templated strings are cut.
MAX_LINE = 60


@dataclass
class Node:
    id: str
    label: list[str]
    shape: Shape


@dataclass
class Edge:
    source: str
    target: str
    label: str | None = None
    style: EdgeStyle = "normal"


@dataclass
class FlowGraph:
    name: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


# --------------------------------------------------------------------------- text for conditions and triggers

_OP_TEXT = {
    "eq": "=",
    "ne": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "in": "in",
    "not_in": "not in",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "matches": "matches",
    "changed_from": "changed from",
    "changed_to": "changed to",
    "within_last": "within last",
    "before": "before",
    "after": "after",
}


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def condition_text(condition: Any) -> str:
    """A condition as one readable line: `tier in [premium, gold] AND email is set`."""
    if isinstance(condition, LeafCondition):
        op = condition.op
        if op == "is_set":
            return f"{condition.field} is set"
        if op == "is_empty":
            return f"{condition.field} is empty"
        if op == "changed":
            return f"{condition.field} changed"
        if op == "more_than_ago":
            return f"{condition.field} more than {condition.value} ago"
        if op == "between" and isinstance(condition.value, list) and len(condition.value) == 2:
            low, high = condition.value
            return f"{condition.field} between {_value_text(low)} and {_value_text(high)}"
        return f"{condition.field} {_OP_TEXT.get(op, op)} {_value_text(condition.value)}"
    if isinstance(condition, AllCondition):
        return " AND ".join(_grouped(c) for c in condition.all)
    if isinstance(condition, AnyCondition):
        return " OR ".join(_grouped(c) for c in condition.any)
    if isinstance(condition, NotCondition):
        return f"NOT ({condition_text(condition.not_)})"
    if isinstance(condition, ExprCondition):
        return f"expr: {condition.expr}"
    return str(condition)


def _grouped(condition: Any) -> str:
    text = condition_text(condition)
    if isinstance(condition, AllCondition | AnyCondition) and (
        len(condition.all if isinstance(condition, AllCondition) else condition.any) > 1
    ):
        return f"({text})"
    return text


def _condition_lines(condition: Any) -> list[str]:
    """Top-level AND/OR parts on their own lines, so decision nodes stay narrow."""
    if isinstance(condition, AllCondition) and len(condition.all) > 1:
        parts = [_grouped(c) for c in condition.all]
        return [parts[0], *(f"AND {p}" for p in parts[1:])]
    if isinstance(condition, AnyCondition) and len(condition.any) > 1:
        parts = [_grouped(c) for c in condition.any]
        return [parts[0], *(f"OR {p}" for p in parts[1:])]
    return [condition_text(condition)]


def trigger_lines(flow: Flow) -> list[str]:
    """What starts the flow, e.g. ["trigger: field_changed", "stage changes to won"]."""
    t = flow.trigger
    obj = flow.object or "record"
    lines = [f"trigger: {t.type}"]
    if isinstance(t, RecordCreatedTrigger):
        lines.append(f"a {obj} is created")
    elif isinstance(t, RecordUpdatedTrigger):
        text = f"a {obj} is updated"
        if t.fields:
            text += f" ({', '.join(t.fields)} changed)"
        lines.append(text)
        if t.when_conditions_become_true:
            lines.append("only when the conditions become true")
    elif isinstance(t, FieldChangedTrigger):
        text = f"{t.field} changes"
        if t.has_from:
            text += f" from {_value_text(t.from_)}"
        if t.has_to:
            text += f" to {_value_text(t.to)}"
        lines.append(text)
    elif isinstance(t, RecordDeletedTrigger):
        lines.append(f"a {obj} is deleted")
    elif isinstance(t, DateTrigger):
        text = f"{obj}.{t.field}"
        if t.offset:
            text += f" {t.offset}" if t.offset.startswith("-") else f" +{t.offset}"
        text += f" at {t.at or '00:00'}"
        lines.append(text)
        lines.append(
            f"time zone {t.timezone or flow.timezone}" + (", every year" if t.repeat == "yearly" else "")
        )
    elif isinstance(t, ScheduleTrigger):
        lines.append(f"cron {t.cron} ({t.timezone or flow.timezone})")
        if t.conditions is not None:
            lines.append(f"one run per {obj} where {condition_text(t.conditions)}")
    elif isinstance(t, EventTrigger):
        lines.append(f"event {t.name}")
    elif isinstance(t, ManualTrigger):
        lines.append("flowctl run / call_flow")
    extras = []
    if flow.reentry != "always":
        extras.append(f"reentry {flow.reentry}")
    if flow.dedupe:
        extras.append(f"dedupe {flow.dedupe}")
    if not flow.enabled:
        extras.append("DISABLED")
    if extras:
        lines.append(", ".join(extras))
    return lines


# --------------------------------------------------------------------------- step labels


def _targets(value: str | list[str] | None) -> str:
    if value is None:
        return ""
    return ", ".join(value) if isinstance(value, list) else value


def _action_lines(step: Any) -> list[str]:
    """Details of an action step, after its `id: action` line."""
    if isinstance(step, SendEmail):
        lines = [f"to {_targets(step.to)}"]
        if step.template:
            lines.append(f"template {step.template}")
        elif step.variants:
            lines.append("A/B " + ", ".join(f"{v.template} ({v.weight:g})" for v in step.variants))
        elif step.subject:
            lines.append(f"subject {step.subject}")
        if step.attachments:
            lines.append(f"{len(step.attachments)} attachment(s)")
        return lines
    if isinstance(step, SendSms):
        return [f"to {step.to}", f"template {step.template}" if step.template else f"body {step.body}"]
    if isinstance(step, SendWhatsapp):
        return [f"to {step.to}", f"template {step.template}"]
    if isinstance(step, CreateTask):
        lines = [step.subject]
        if step.assignee:
            lines.append(f"assignee {step.assignee}")
        if step.due:
            lines.append(f"due {step.due}")
        if step.attachments_required:
            lines.append("requires " + ", ".join(step.attachments_required))
        return lines
    if isinstance(step, CreateEvent):
        return [step.subject, f"start {step.start}"]
    if isinstance(step, UpdateRecord):
        target = f" on {step.record}" if step.record else ""
        return [f"set{target} " + ", ".join(f"{k}={_value_text(v)}" for k, v in step.set.items())]
    if isinstance(step, CreateRecord):
        return [f"new {step.object}"]
    if isinstance(step, AssignRecord):
        lines = [
            f"{step.strategy}"
            + (f" in team {step.team}" if step.team else "")
            + (f" → {step.user}" if step.user else "")
        ]
        if step.skills_from or step.language_from:
            lines.append(
                ", ".join(
                    x for x in (
                        f"skills from {step.skills_from}" if step.skills_from else "",
                        f"language from {step.language_from}" if step.language_from else "",
                    ) if x
                )
            )  # fmt: skip
        if step.field != "owner":
            lines.append(f"field {step.field}")
        if step.fallback:
            lines.append(f"fallback {step.fallback}")
        return lines
    if isinstance(step, MergeDuplicates):
        lines = [f"same {', '.join(step.match)} within {step.window}"]
        if step.mark:
            after = f" after {step.mark_after}" if step.mark_after else ""
            lines.append(f"mark {_value_text(step.mark)}{after}")
        return lines
    if isinstance(step, Notify):
        return [f"to {_targets(step.to)}", step.message]
    if isinstance(step, Webhook):
        return [f"{step.method} {step.url}"]
    if isinstance(step, Log):
        return [step.message]
    if isinstance(step, Approval):
        if step.has_entries:
            # The tasks are nodes of their own (`_Builder.approval_tasks`); this node says how they run.
            count = len(step.approvers)
            return [*([step.title] if step.title else []), _APPROVAL_MODE_TEXT[step.mode].format(n=count)]
        users = step.approvers if isinstance(step.approvers, str) else [str(a) for a in step.approvers]
        lines = [
            step.title or "",
            f"approvers {_targets(users)}" + (f" ({step.mode})" if step.mode != "any" else ""),
        ]
        if step.attachments_required:
            lines.append("requires " + ", ".join(step.attachments_required))
        return lines
    if isinstance(step, HumanTask):
        return [step.title, f"assignee {step.assignee}"]
    return []


_APPROVAL_MODE_TEXT = {
    "all": "{n} tasks at once, all must approve",
    "any": "{n} tasks at once, the first decision decides",
    "sequence": "{n} tasks one after another",
}
_APPROVAL_JOIN_TEXT = {
    "all": "all approved? (one rejection rejects)",
    "any": "first decision",
    "sequence": "each approved in turn? (one rejection rejects)",
}


def _approver_lines(step: Approval, item: str | ApproverEntry) -> list[str]:
    """One approver's task: its title, who, the documents it needs (the entry's, else the step's)."""
    if isinstance(item, ApproverEntry):
        required = item.attachments_required if item.attachments_required is not None else step.attachments_required
        lines = [item.title or step.title or "", f"approver {item.user}"]
    else:
        required = step.attachments_required
        lines = [step.title or "", f"approver {item}"]
    if required:
        lines.append("requires " + ", ".join(required))
    return lines


def _wait_lines(step: WaitStep) -> list[str]:
    w = step.wait
    if w.for_ is not None:
        return [f"wait {w.for_}"]
    if w.until is not None:
        return [f"wait until {w.until}"]
    if w.calendar is not None:
        return [f"wait for business hours ({w.calendar})"]
    lines = [f"wait until {condition_text(w.until_condition)}"]
    if w.timeout:
        lines.append(f"timeout {w.timeout}")
    return lines


def _policy_lines(step: StepBase) -> list[str]:
    lines = []
    if step.when is not None:
        lines.append(f"only when {condition_text(step.when)}")
    if step.retry is not None and step.retry.attempts > 1:
        r = step.retry
        text = f"retry: {r.attempts} attempts, {r.backoff} from {r.delay}"
        if r.max_delay:
            text += f" (max {r.max_delay})"
        lines.append(text)
    if step.timeout and not isinstance(step, WaitStep):
        lines.append(f"timeout {step.timeout}")
    return lines


# --------------------------------------------------------------------------- building the graph


class _Builder:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.graph = FlowGraph(name=flow.name)
        self._node_ids: dict[int, str] = {}  # id(step) → node id
        self._by_step_id: dict[str, str] = {}  # step id → node id (goto targets)
        self._used: set[str] = set()
        self._special: dict[str, Node] = {}
        self._anonymous = 0

    # ----------------------------------------------------------------- ids
    def _unique(self, base: str) -> str:
        candidate = base
        n = 2
        while candidate in self._used:
            candidate = f"{base}_{n}"
            n += 1
        self._used.add(candidate)
        return candidate

    def _assign_ids(self, steps: list[Any]) -> None:
        for step in steps:
            if step.id:
                base = "s_" + re.sub(r"[^A-Za-z0-9_]", "_", step.id)
            else:
                self._anonymous += 1
                base = f"s_step{self._anonymous}"
            node_id = self._unique(base)
            self._node_ids[id(step)] = node_id
            if step.id and step.id not in self._by_step_id:
                self._by_step_id[step.id] = node_id
            for _, children in child_step_lists(step):
                self._assign_ids(children)

    def node_of(self, step: Any) -> str:
        return self._node_ids[id(step)]

    def entry(self, steps: list[Any], cont: str) -> str:
        return self.node_of(steps[0]) if steps else cont

    # ----------------------------------------------------------------- special nodes
    def special(self, key: str, label: list[str], shape: Shape) -> str:
        if key not in self._special:
            node = Node(self._unique(key), label, shape)
            self._special[key] = node
            self.graph.nodes.append(node)
        return self._special[key].id

    def finish(self) -> str:
        return self.special("finish", ["end"], "end")

    def failed(self) -> str:
        return self.special("failed", ["run failed"], "failed")

    def goto_target(self, step_id: str) -> str:
        if step_id in self._by_step_id:
            return self._by_step_id[step_id]
        return self.special(
            f"missing_{re.sub(r'[^A-Za-z0-9_]', '_', step_id)}", [f"unknown step {step_id}"], "failed"
        )

    def add(self, node_id: str, label: list[str], shape: Shape) -> None:
        self.graph.nodes.append(Node(node_id, label, shape))

    def edge(self, source: str, target: str, label: str | None = None, style: EdgeStyle = "normal") -> None:
        self.graph.edges.append(Edge(source, target, label, style))

    # ----------------------------------------------------------------- walk
    def build(self) -> FlowGraph:
        flow = self.flow
        self._used.update({"trigger", "entry", "no_run"})
        self._assign_ids(flow.steps)
        self.add("trigger", trigger_lines(flow), "trigger")
        first = self.entry(flow.steps, "finish")
        if flow.conditions is not None:
            self.add("entry", ["entry conditions", *_condition_lines(flow.conditions)], "decision")
            self.edge("trigger", "entry")
            self.edge("entry", first, "yes", "branch")
            self.add("no_run", ["no run"], "end")
            self.edge("entry", "no_run", "no", "branch")
        else:
            self.edge("trigger", first)
        self.sequence(flow.steps, "finish")
        if first == "finish" or any(e.target == "finish" for e in self.graph.edges):
            self.finish()
        return self.graph

    def sequence(self, steps: list[Any], cont: str) -> None:
        for i, step in enumerate(steps):
            nxt = self.node_of(steps[i + 1]) if i + 1 < len(steps) else cont
            self.step(step, nxt)

    def step(self, step: Any, nxt: str) -> None:
        node = self.node_of(step)
        kind = step_kind(step) or "step"
        title = f"{step.id}: {kind}" if step.id else kind
        policy = _policy_lines(step)
        if isinstance(step, WaitStep):
            self.add(node, [step.id or "wait", *_wait_lines(step), *policy], "wait")
            self.edge(node, nxt)
        elif isinstance(step, IfStep):
            self.add(node, [f"{step.id or 'if'}: if", *_condition_lines(step.if_), *policy], "decision")
            self.edge(node, self.entry(step.then, nxt), "then", "branch")
            self.edge(node, self.entry(step.else_, nxt), "else", "branch")
            self.sequence(step.then, nxt)
            self.sequence(step.else_, nxt)
        elif isinstance(step, SwitchStep):
            self.add(node, [f"{step.id or 'switch'}: switch", *policy], "decision")
            for case in step.switch.cases:
                self.edge(node, self.entry(case.steps, nxt), f"when {condition_text(case.when)}", "branch")
            self.edge(node, self.entry(step.switch.default, nxt), "default", "branch")
            for case in step.switch.cases:
                self.sequence(case.steps, nxt)
            self.sequence(step.switch.default, nxt)
        elif isinstance(step, GotoStep):
            self.add(node, [f"{step.id or 'goto'}: goto {step.goto}", *policy], "action")
            self.edge(node, self.goto_target(step.goto), "goto", "goto")
        elif isinstance(step, CallFlowStep):
            how = "wait for it" if step.call_flow.wait else "do not wait"
            self.add(node, [title, f"flow {step.call_flow.flow} ({how})", *policy], "call")
            self.edge(node, nxt)
        elif isinstance(step, StopStep):
            lines = [f"{step.id or 'stop'}: stop {step.stop.status}"]
            if step.stop.reason:
                lines.append(step.stop.reason)
            self.add(node, [*lines, *policy], "stop")
        elif isinstance(step, Approval):
            self.add(node, [title, *_action_lines(step), *policy], "approval")
            # With approver entries the outcomes leave the node that joins their tasks.
            decided = self.approval_tasks(step, node) if step.has_entries else node
            self.edge(decided, nxt, "approved", "branch")
            if step.on_reject:
                self.edge(decided, self.entry(step.on_reject, nxt), "rejected", "branch")
                self.sequence(step.on_reject, nxt)
            else:
                self.edge(decided, self.special("rejected", ["end: rejected"], "end"), "rejected", "branch")
            if step.timeout:
                if isinstance(step.on_timeout, list):
                    self.edge(decided, self.entry(step.on_timeout, nxt), f"timeout {step.timeout}", "failure")
                    self.sequence(step.on_timeout, nxt)
                elif step.on_timeout == "reject":
                    target = (
                        self.entry(step.on_reject, nxt) if step.on_reject else self._special["rejected"].id
                    )
                    self.edge(decided, target, f"timeout {step.timeout}: reject", "failure")
                else:
                    self.failure(step, decided, nxt, f"timeout {step.timeout}", always=True)
        elif isinstance(step, HumanTask):
            self.add(node, [title, *_action_lines(step), *policy], "task")
            self.edge(node, nxt, "done", "branch")
            if step.timeout:
                self.failure(step, node, nxt, f"timeout {step.timeout}", always=True)
        else:
            self.add(node, [title, *_action_lines(step), *policy], "action")
            self.edge(node, nxt)
            if isinstance(step, SendWhatsapp) and step.fallback is not None:
                fallback = step.fallback
                self.edge(node, self.node_of(fallback), "no opt-in or failed", "failure")
                self.step(fallback, nxt)
        if isinstance(step, WaitStep) and step.wait.timeout:
            self.failure(step, node, nxt, f"timeout {step.wait.timeout}", always=True)
        elif not isinstance(step, Approval | HumanTask | StopStep | GotoStep | IfStep | SwitchStep):
            self.failure(step, node, nxt, "on failure")

    def approval_tasks(self, step: Approval, node: str) -> str:
        """One task node per approver: side by side (any, all) or chained (sequence), then the node that
        joins them, which the step's outcome edges leave. Returns that node's id."""
        assert isinstance(step.approvers, list)
        tasks = []
        for i, item in enumerate(step.approvers, 1):
            task = self._unique(f"{node}_task{i}")
            self.add(task, _approver_lines(step, item), "task")
            tasks.append(task)
        join = self._unique(f"{node}_decision")
        self.add(join, [_APPROVAL_JOIN_TEXT[step.mode]], "decision")
        if step.mode == "sequence":
            self.edge(node, tasks[0])
            for before, after in itertools.pairwise(tasks):
                self.edge(before, after, "approved", "branch")
            self.edge(tasks[-1], join)
        else:
            for task in tasks:
                self.edge(node, task)
                self.edge(task, join)
        return join

    def failure(self, step: Any, node: str, nxt: str, label: str, *, always: bool = False) -> None:
        """The failure path once the attempts are spent (only drawn when it is not the default `fail`)."""
        policy = step.on_failure
        if isinstance(policy, GotoRef):
            self.edge(node, self.goto_target(policy.goto), f"{label}: goto", "failure")
        elif policy == "continue":
            self.edge(node, nxt, f"{label}: continue", "failure")
        elif policy == "compensate":
            manual = self._unique(f"m_{node.removeprefix('s_')}")
            self.add(manual, ["manual task", f"Please perform {step.id} manually"], "manual")
            self.edge(node, manual, f"{label}: compensate", "failure")
            self.edge(manual, nxt, "done", "branch")
            self.edge(manual, self.failed(), "rejected", "failure")
        elif always:
            self.edge(node, self.failed(), label, "failure")


def build_graph(flow: Flow) -> FlowGraph:
    """The graph model of a flow (what both renderers draw)."""
    return _Builder(flow).build()


# --------------------------------------------------------------------------- rendering


def _clip(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def _mermaid_text(text: str) -> str:
    # Mermaid's entity codes keep quotes and angle brackets from ending the label or opening HTML.
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


_MERMAID_SHAPES: dict[Shape, tuple[str, str]] = {
    "trigger": ("([", "])"),
    "decision": ("{", "}"),
    "action": ("[", "]"),
    "wait": ("{{", "}}"),
    "approval": ("[/", "/]"),
    "task": ("[/", "/]"),
    "manual": ("[\\", "\\]"),
    "call": ("[[", "]]"),
    "stop": ("([", "])"),
    "end": ("((", "))"),
    "failed": ("((", "))"),
}
_MERMAID_ARROWS: dict[EdgeStyle, str] = {"normal": "-->", "branch": "-->", "failure": "-.->", "goto": "-.->"}
_MERMAID_CLASSES = {
    "trigger": "fill:#e3f2fd,stroke:#1565c0",
    "decision": "fill:#fff8e1,stroke:#f9a825",
    "wait": "fill:#f3e5f5,stroke:#6a1b9a",
    "approval": "fill:#e8f5e9,stroke:#2e7d32",
    "task": "fill:#e8f5e9,stroke:#2e7d32",
    "manual": "fill:#fff3e0,stroke:#e65100",
    "stop": "fill:#eceff1,stroke:#455a64",
    "end": "fill:#eceff1,stroke:#455a64",
    "failed": "fill:#ffebee,stroke:#c62828",
}


def render_mermaid(flow: Flow) -> str:
    """A Mermaid flowchart of the flow (paste into Markdown inside ```mermaid)."""
    graph = build_graph(flow)
    out = [f"%% flow {graph.name}", "flowchart TD"]
    for node in graph.nodes:
        left, right = _MERMAID_SHAPES[node.shape]
        label = "<br/>".join(_mermaid_text(_clip(line)) for line in node.label)
        out.append(f'    {node.id}{left}"{label}"{right}')
    for edge in graph.edges:
        arrow = _MERMAID_ARROWS[edge.style]
        if edge.label:
            out.append(f'    {edge.source} {arrow}|"{_mermaid_text(_clip(edge.label))}"| {edge.target}')
        else:
            out.append(f"    {edge.source} {arrow} {edge.target}")
    used = {n.shape for n in graph.nodes}
    for shape, style in _MERMAID_CLASSES.items():
        if shape in used:
            out.append(f"    classDef {shape}Node {style}")
    for shape in _MERMAID_CLASSES:
        members = [n.id for n in graph.nodes if n.shape == shape]
        if members:
            out.append(f"    class {','.join(members)} {shape}Node")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_DOT_SHAPES: dict[Shape, str] = {
    "trigger": 'shape=box, style="rounded,filled", fillcolor="#e3f2fd", color="#1565c0"',
    "decision": 'shape=diamond, style=filled, fillcolor="#fff8e1", color="#f9a825"',
    "action": 'shape=box, style="rounded"',
    "wait": 'shape=hexagon, style=filled, fillcolor="#f3e5f5", color="#6a1b9a"',
    "approval": 'shape=box, style="filled,bold", fillcolor="#e8f5e9", color="#2e7d32"',
    "task": 'shape=box, style="filled,bold", fillcolor="#e8f5e9", color="#2e7d32"',
    "manual": 'shape=box, style="filled,dashed", fillcolor="#fff3e0", color="#e65100"',
    "call": "shape=box, peripheries=2",
    "stop": 'shape=box, style="rounded,filled", fillcolor="#eceff1", color="#455a64"',
    "end": 'shape=circle, style=filled, fillcolor="#eceff1", color="#455a64"',
    "failed": 'shape=doublecircle, style=filled, fillcolor="#ffebee", color="#c62828"',
}
_DOT_EDGES: dict[EdgeStyle, str] = {
    "normal": "",
    "branch": "",
    "failure": 'style=dashed, color="#c62828", fontcolor="#c62828"',
    "goto": 'style=dashed, color="#1565c0", fontcolor="#1565c0"',
}


def render_dot(flow: Flow) -> str:
    """A Graphviz digraph of the flow (`dot -Tsvg`)."""
    graph = build_graph(flow)
    out = [
        f'digraph "{_dot_text(graph.name)}" {{',
        "    rankdir=TB;",
        '    node [fontname="Helvetica", fontsize=10];',
        '    edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in graph.nodes:
        label = "\\n".join(_dot_text(_clip(line)) for line in node.label)
        out.append(f'    {node.id} [label="{label}", {_DOT_SHAPES[node.shape]}];')
    for edge in graph.edges:
        attrs = []
        if edge.label:
            attrs.append(f'label="{_dot_text(_clip(edge.label))}"')
        if _DOT_EDGES[edge.style]:
            attrs.append(_DOT_EDGES[edge.style])
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"    {edge.source} -> {edge.target}{suffix};")
    out.append("}")
    return "\n".join(out) + "\n"


RENDERERS = {"mermaid": render_mermaid, "dot": render_dot}
