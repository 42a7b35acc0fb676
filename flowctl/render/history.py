"""`flowctl history` output: one row per publish tag, the live one marked, or drift."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from flowctl.gitops.history import History


def history_table(history: History) -> RenderableType:
    if not history.entries:
        return Text(f"No publishes yet (no tags {history.prefix}N). Publish with: flowctl apply")
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    # Identifiers never wrap; the free-text columns wrap on narrow terminals instead of truncating the tag.
    for column in ("", "TAG", "ACTION", "PUBLISHER", "TIME", "COMMIT", "SUMMARY"):
        wraps = column in ("PUBLISHER", "SUMMARY")
        if wraps:
            table.add_column(column)
        else:
            table.add_column(column, no_wrap=True, min_width=len(column))
    for e in history.entries:
        style = "bold green" if e.current else None
        table.add_row(
            "→" if e.current else "",
            e.tag,
            e.action,
            e.publisher or "",
            e.time or "",
            e.commit[:7],
            e.summary or "",
            style=style,
        )
    return Group(table, Text(""), status_line(history))


def status_line(history: History) -> Text:
    if history.runner is None:
        return Text("The runner was not asked (--offline); the live publish is not marked.", style="dim")
    if history.runner.hash is None:
        return Text(f"The runner at {history.runner.url} has nothing applied yet.", style="yellow")
    if history.drift:
        return Text(
            f"drift: the runner's live bundle (version {history.runner.version}) matches no publish tag; "
            "someone changed it outside flowctl apply/rollback",
            style="bold red",
        )
    return Text(f"The runner (version {history.runner.version}) runs {history.current}.", style="green")


def history_json(history: History) -> dict[str, Any]:
    return history.model_dump(mode="json")
