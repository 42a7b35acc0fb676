"""Plans for people: text with colours (the terminal), JSON (machines), markdown (a pull-request comment).

The text form follows Terraform: one line per resource with `+` create, `~`
update, `-` delete, its field changes indented under it, and the summary line
`Plan: X to add, Y to change, Z to delete.` last. The markdown form is what a
reviewer reads on the pull request: the summary, a table, the field changes
as a `diff` block (GitHub colours it) and a mermaid diagram of every flow the
plan creates or changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.text import Text

from flowctl.gitops.diff import FieldChange
from flowctl.gitops.plan import Plan, PlannedChange
from flowctl.render.graph import render_mermaid
from flowctl.resources.models import Flow

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "added": "+", "changed": "~", "removed": "-"}
STYLES = {"create": "green", "update": "yellow", "delete": "red", "added": "green", "changed": "yellow", "removed": "red"}
# Long values (a whole step, a template body) are cut in terminal output; JSON has them whole.
VALUE_LIMIT = 100
# The marker CI uses to find and update its own plan comment instead of adding one per push.
MARKDOWN_MARKER = "<!-- flowctl-plan -->"


def format_value(value: Any, limit: int = VALUE_LIMIT) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_line(change: FieldChange) -> Text:
    """`~ path: before → after`, `+ path: value`, `- path`."""
    sym, style = SYMBOLS[change.change], STYLES[change.change]
    line = Text()
    line.append(f"{sym} ", style=style)
    line.append(change.path, style="bold")
    if change.change == "changed":
        line.append(": ")
        line.append(format_value(change.before), style="red")
        line.append(" → ")
        line.append(format_value(change.after), style="green")
    elif change.change == "added":
        line.append(": ")
        line.append(format_value(change.after), style="green")
    return line


def inflight_note(change: PlannedChange) -> str | None:
    """How many runs of this flow are in flight, and that they stay where they are."""
    total = change.inflight_total
    if not total:
        return None
    runs = f"{total} run{'s' if total != 1 else ''} in flight"
    if len(change.inflight) == 1:
        (version,) = change.inflight
        return f"{runs} stay{'s' if total == 1 else ''} on version {version}"
    per = ", ".join(f"v{v}: {n}" for v, n in change.inflight.items())
    return f"{runs} stay on their versions ({per})"


def inflight_total_note(n: int) -> str:
    return "1 run in flight keeps the version it started on." if n == 1 else f"{n} runs in flight keep the version they started on."


def _against(plan: Plan) -> str:
    if plan.runner is not None:
        live = f"runner {plan.runner.url} version {plan.runner.version}"
        if plan.runner.tag:
            live += f" ({plan.runner.tag})"
        return live
    if plan.baseline is not None and plan.baseline.tag:
        return f"publish tag {plan.baseline.tag} (offline)"
    return "no publish yet (offline)"


def _same_content(plan: Plan) -> str:
    if plan.against == "runner":
        return "The runner already runs this content."
    return "The latest publish tag has this content." if plan.baseline and plan.baseline.tag else "There is nothing to publish."


def _desired(plan: Plan) -> str:
    where = f" on {plan.branch}" if plan.branch else ""
    return f"commit {plan.commit[:7]}{where}"


def plan_text(plan: Plan) -> Text:
    out = Text()
    out.append(f"Desired: {_desired(plan)}\n", style="dim")
    out.append(f"Live:    {_against(plan)}\n", style="dim")
    if not plan.has_changes:
        out.append("\n")
        out.append(plan.summary.line(), style="bold green")
        out.append(f" {_same_content(plan)}\n")
        return out
    out.append("\n")
    for change in plan.changes:
        sym, style = SYMBOLS[change.action], STYLES[change.action]
        out.append(f"  {sym} ", style=style)
        out.append(f"{change.kind} ", style=style)
        out.append(change.name, style=f"bold {style}")
        out.append("\n")
        if change.action != "delete":
            for f in change.fields:
                out.append("      ")
                out.append_text(field_line(f))
                out.append("\n")
        note = inflight_note(change)
        if note:
            out.append(f"      {note}\n", style="cyan")
    out.append("\n")
    if plan.inflight_total:
        n = plan.inflight_total
        out.append(f"{inflight_total_note(n)}\n", style="cyan")
    out.append(plan.summary.line(), style="bold")
    out.append("\n")
    return out


def plain(text: Text, width: int = 120) -> str:
    """Render rich text without colour codes (snapshots, files, logs)."""
    console = Console(width=width, color_system=None, force_terminal=False, record=True, soft_wrap=True)
    with console.capture() as cap:
        console.print(text, end="")
    return cap.get()


def plan_json(plan: Plan) -> dict[str, Any]:
    return plan.model_dump(mode="json")


# --------------------------------------------------------------------------- markdown


def _md_code(value: str) -> str:
    return value.replace("```", "ʼʼʼ")


def _md_field_lines(change: FieldChange) -> list[str]:
    # In a ```diff block GitHub colours `+` green and `-` red, so a change is a -/+ pair.
    if change.change == "changed":
        return [f"-   {change.path}: {format_value(change.before)}", f"+   {change.path}: {format_value(change.after)}"]
    if change.change == "added":
        return [f"+   {change.path}: {format_value(change.after)}"]
    return [f"-   {change.path}: {format_value(change.before)}"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan_markdown(plan: Plan, flows: Mapping[str, Flow]) -> str:
    """A pull-request comment: summary, table, field changes, and a mermaid diagram per created or changed flow.

    `flows` holds the desired flows by name (the models the diagrams are drawn from).
    """
    lines = [MARKDOWN_MARKER, "### flowctl plan", "", f"**{plan.summary.line()}**", ""]
    lines.append(f"Desired state: {_desired(plan)} · compared with {_against(plan)}")
    if not plan.has_changes:
        lines += ["", _same_content(plan)]
        return "\n".join(lines) + "\n"
    lines += ["", "| action | kind | name | fields changed | runs in flight |", "|---|---|---|---|---|"]
    icons = {"create": "🟢 create", "update": "🟡 update", "delete": "🔴 delete"}
    for c in plan.changes:
        fields = "" if c.action == "delete" else str(len(c.fields))
        lines.append(f"| {icons[c.action]} | {c.kind} | `{_cell(c.name)}` | {fields} | {_cell(inflight_note(c) or '')} |")
    if plan.inflight_total:
        n = plan.inflight_total
        lines += ["", inflight_total_note(n)]
    lines += ["", "<details open><summary>Field changes</summary>", "", "```diff"]
    for c in plan.changes:
        lines.append(f"@@ {c.action} {c.kind} {c.name} @@")
        if c.action != "delete":
            lines += [_md_code(x) for f in c.fields for x in _md_field_lines(f)]
    lines += ["```", "", "</details>"]
    drawn = [c for c in plan.changes if c.kind == "flow" and c.action != "delete" and c.name in flows]
    for c in drawn:
        lines += ["", f"#### flow `{c.name}` ({c.action})", "", "```mermaid", render_mermaid(flows[c.name]).rstrip(), "```"]
    return "\n".join(lines) + "\n"
