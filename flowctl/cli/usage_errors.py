"""Usage errors exit 1, like every other error (SPEC §10.13).

click, and typer over it, exits 2 on a usage error (an unknown command or
option, a missing argument, a value outside a choice). flowctl keeps exit 2
for one meaning only, `plan --detailed-exitcode` with changes, so that CI can
tell "there are changes" from "the command was typed wrong".
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

try:  # typer >= 0.20 ships its own copy of click; its exceptions are the ones raised
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer over the click package
    from click.exceptions import UsageError  # type: ignore[assignment]


class ExitOneOnUsageError(TyperGroup):
    """The root command group: its own parse errors and every subcommand's surface here."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            exc.exit_code = 1
            raise

    def invoke(self, ctx: Any) -> Any:
        # Subcommands parse their arguments inside the root's invoke, so their usage errors pass here.
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            exc.exit_code = 1
            raise
