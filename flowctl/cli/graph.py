"""`flowctl graph FLOW`: draw a flow as Mermaid or Graphviz DOT."""

from __future__ import annotations

import difflib
from pathlib import Path

import typer
from pydantic import ValidationError

from flowctl.cli.common import console, handle_errors
from flowctl.errors import ProjectError
from flowctl.render.graph import RENDERERS
from flowctl.resources.models import Flow
from flowctl.resources.project import Source, load_project, validation_diagnostics
from flowctl.resources.yamlload import YamlLoadError, load_file

_SUFFIX_FORMATS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid", ".md": "mermaid"}


def _flow_from_file(path: Path) -> Flow:
    """A flow given as a file path: load and validate just that file, errors with file:line:col."""
    try:
        doc = load_file(path)
    except YamlLoadError as exc:
        raise ProjectError(
            f"{path}:{exc.position.line}:{exc.position.column}: {exc.message}", hint=exc.hint
        ) from None
    if not isinstance(doc.data, dict) or doc.data.get("kind") != "flow":
        raise ProjectError(f"{path}:1:1: not a flow (kind: flow)", hint="pass a flow's name or its YAML file")
    try:
        return Flow.model_validate(doc.data)
    except ValidationError as exc:
        first = validation_diagnostics(exc, doc.data, Source(str(path), doc.positions), Flow)[0]
        raise ProjectError(f"{first.location}: {first.summary}", hint=first.hint) from None


def find_flow(name: str, project_dir: Path) -> Flow:
    """The flow named `name` in the repository at `project_dir`, or the flow in the file `name`."""
    as_path = Path(name)
    if as_path.suffix in (".yaml", ".yml") and as_path.is_file():
        return _flow_from_file(as_path)
    project = load_project(project_dir)
    if name in project.flows:
        return project.flows[name]
    # The flow may exist but fail to load: show why instead of "unknown flow".
    for diag in project.diagnostics:
        if Path(diag.range.file).stem == name and diag.severity == "error":
            raise ProjectError(
                f"flow '{name}' does not load: {diag.location}: {diag.summary}",
                hint=diag.hint or "run `flowctl validate` for every finding",
            )
    known = sorted(project.flows)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else None
    if not hint:
        hint = (
            ("flows: " + ", ".join(known))
            if known
            else f"no flows found under {project.root / project.config.paths.flows}"
        )
    raise ProjectError(f"unknown flow '{name}'", hint=hint)


@handle_errors
def graph(
    flow: str = typer.Argument(..., help="A flow name (or the path of a flow's YAML file)."),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help="mermaid (default) or dot; inferred from --out's suffix when omitted."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write the diagram to this file instead of stdout."
    ),
    project_dir: Path = typer.Option(
        Path("."), "--project", "-C", help="The flows repository (default: here)."
    ),
) -> None:
    """Draw a flow: trigger, conditions, steps, branches, approvals and failure paths.

    Example:

        flowctl graph welcome-new-customer > welcome.mmd

        flowctl graph erp-order-sync --format dot | dot -Tsvg > erp.svg
    """
    chosen = fmt or (_SUFFIX_FORMATS.get(out.suffix.lower()) if out else None) or "mermaid"
    if chosen not in RENDERERS:
        raise ProjectError(f"unknown format '{chosen}'", hint="use --format mermaid or --format dot")
    text = RENDERERS[chosen](find_flow(flow, project_dir))
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ProjectError(f"cannot write {out}: {exc.strerror}") from None
    console.print(f"wrote {out} ({chosen})")


def register(app: typer.Typer) -> None:
    app.command("graph")(graph)
