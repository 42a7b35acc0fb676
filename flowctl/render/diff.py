"""`flowctl diff` output: resources added / changed / removed, then their fields, like `git diff --stat` plus detail."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from flowctl.gitops.diff import BundleDiff
from flowctl.render.plan import STYLES, SYMBOLS, field_line


def diff_text(diff: BundleDiff, before: str, after: str) -> Text:
    out = Text()
    out.append(f"--- {before}\n+++ {after}\n", style="dim")
    if diff.empty:
        out.append("\nNo differences in flows, SLA policies, calendars, teams, templates or objects.\n")
        return out
    out.append("\n")
    for r in diff.resources:
        sym, style = SYMBOLS[r.change], STYLES[r.change]
        out.append(f"{sym} {r.kind} ", style=style)
        out.append(r.name, style=f"bold {style}")
        out.append(f" ({r.change})\n", style=style)
        if r.change != "removed":
            for f in r.fields:
                out.append("    ")
                out.append_text(field_line(f))
                out.append("\n")
    c = diff.counts()
    out.append(f"\n{c.added} added, {c.changed} changed, {c.removed} removed.\n", style="bold")
    return out


def diff_json(diff: BundleDiff, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The documented `diff --format json` shape (docs/gitops.md)."""
    return {
        "from": before,
        "to": after,
        "summary": diff.counts().model_dump(),
        "resources": [r.model_dump(mode="json") for r in diff.resources],
    }
