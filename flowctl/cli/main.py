"""The `flowctl` command. Each concern registers its commands from its own module."""

from __future__ import annotations

import typer

from flowctl import __version__
from flowctl.cli.usage_errors import ExitOneOnUsageError

app = typer.Typer(
    name="flowctl",
    help=(
        "CRM workflow automation as code: validate, simulate, test, plan and apply flows.\n\n"
        "Example:\n\n    flowctl validate && flowctl test && flowctl plan"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=ExitOneOnUsageError,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flowctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """flowctl: flows, SLA policies and templates as code."""


def _register() -> None:
    # Imported here so that `flowctl --help` stays fast and each module owns its commands.
    from flowctl.cli import commands

    for register in commands.REGISTRARS:
        register(app)


_register()
