"""Shared CLI plumbing: consoles, the error boundary, output formats.

Commands stay thin: parse options, call the library, render. Every domain
error (FlowctlError) becomes one message plus its hint and exit code 1 here,
never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from flowctl.errors import FlowctlError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, hint: str | None = None, code: int = 1) -> typer.Exit:
    """Print an error (and what to do about it) to stderr; return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True)
    if hint:
        err_console.print(f"  [dim]hint:[/] {hint}", markup=True)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Decorator for commands: FlowctlError → one clear message, exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FlowctlError as exc:
            raise fail(exc.message, exc.hint) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Stable JSON on stdout: sorted keys are NOT used, field order is part of the documented format."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
