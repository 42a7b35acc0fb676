"""`flowctl schema export [DIR]`: write the JSON Schemas editors use to complete flow YAML."""

from __future__ import annotations

from pathlib import Path

import typer

from flowctl.cli.common import console, handle_errors, print_json
from flowctl.errors import ProjectError
from flowctl.resources.jsonschema import export_schemas, stale_schemas
from flowctl.resources.project import find_root

schema_app = typer.Typer(
    name="schema",
    help="JSON Schemas for the YAML language (editor completion and checks).\n\nExample:\n\n    flowctl schema export",
    no_args_is_help=True,
)


def _default_dir() -> Path:
    # Inside a flows repository the schemas belong next to the object schemas,
    # where the `# yaml-language-server: $schema=` modelines point.
    return find_root(Path.cwd()) / "schemas"


@schema_app.command("export")
@handle_errors
def export(
    directory: Path | None = typer.Argument(
        None, help="Where to write *.schema.json (default: schemas/ in the flows repository)."
    ),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 when a schema file is missing or out of date (for CI)."
    ),
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Write one JSON Schema per kind (flow.schema.json, ..., flowctl.schema.json).

    Example:

        flowctl schema export            # into ./schemas of the current repository

        flowctl schema export --check    # in CI: fail when schemas/ is stale
    """
    if fmt not in ("text", "json"):
        raise ProjectError(f"unknown format '{fmt}'", hint="use --format text or --format json")
    output = fmt
    target = directory if directory is not None else _default_dir()
    if target.exists() and not target.is_dir():
        raise ProjectError(
            f"{target} is a file, not a directory", hint="pass the folder to write the schemas into"
        )
    if check:
        stale = stale_schemas(target)
        if output == "json":
            print_json({"directory": str(target), "stale": stale})
        elif stale:
            console.print(f"{len(stale)} schema file(s) out of date in {target}: {', '.join(stale)}")
        else:
            console.print(f"schemas in {target} are up to date")
        if stale:
            raise ProjectError(
                f"{len(stale)} JSON Schema file(s) are stale in {target}",
                hint="run `flowctl schema export` and commit the result",
            )
        return
    result = export_schemas(target)
    if output == "json":
        print_json(result.as_json())
        return
    for name in result.written:
        console.print(f"wrote {target / name}")
    console.print(f"{len(result.written)} written, {len(result.unchanged)} unchanged in {target}")


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app)
