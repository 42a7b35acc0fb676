"""`flowctl init [DIR]`: scaffold a flows repository with one working example."""

from __future__ import annotations

from pathlib import Path

import typer

from flowctl.cli.common import console, handle_errors, print_json
from flowctl.errors import ProjectError
from flowctl.scaffold import scaffold_project


@handle_errors
def init(
    directory: Path = typer.Argument(
        Path("."), help="Where to create the repository (created when missing)."
    ),
    project: str | None = typer.Option(None, "--project", help="Project name (default: the folder name)."),
    force: bool = typer.Option(
        False, "--force", help="Overwrite the scaffold's files in an existing repository."
    ),
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Scaffold a flows repository: settings, an object, a template, a flow, a flow test and CI.

    Example:

        flowctl init acme-flows && cd acme-flows && flowctl validate && flowctl test
    """
    if fmt not in ("text", "json"):
        raise ProjectError(f"unknown format '{fmt}'", hint="use --format text or --format json")
    result = scaffold_project(directory, project=project, force=force)
    if fmt == "json":
        print_json(result.as_json())
        return
    for rel in result.written:
        console.print(f"  [green]create[/] {rel}", markup=True)
    for rel in result.skipped:
        console.print(f"  [yellow]keep[/]   {rel} (exists)", markup=True)
    where = str(directory)
    steps = [] if directory.resolve() == Path.cwd().resolve() else [f"cd {where}"]
    steps += [
        "git init -b main && git add -A && git commit -m 'first flows'   # main: the publish branch",
        "flowctl validate                     # check the YAML",
        "flowctl test                         # run tests/flows on a virtual clock",
        "flowctl graph welcome-new-contact    # draw the example flow",
        "flowctl runner serve                 # a local runner, then: flowctl apply --yes",
    ]
    console.print(f"\nCreated flows repository '{result.project}' in {where}. Next steps:")
    for line in steps:
        console.print(f"  {line}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
