"""`flowctl validate [PATH] [--format text|json|github] [--strict]`.

A thin wrapper over flowctl.check.validate; rendering lives in flowctl.render.diagnostics.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from flowctl.check.validate import validate_path
from flowctl.cli.common import console, handle_errors, print_json
from flowctl.render.diagnostics import render_github, render_text, report_json


class ValidateFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


@handle_errors
def validate(
    path: Path = typer.Argument(
        Path("."), help="The repository, a folder or a file inside it; only its diagnostics are shown."
    ),
    fmt: ValidateFormat = typer.Option(
        ValidateFormat.text,
        "--format",
        "-f",
        help="text (for people), json (documented), github (annotations).",
    ),
    strict: bool = typer.Option(False, "--strict", help="Count warnings as errors (exit 1 on any warning)."),
) -> None:
    """Check flows, SLA policies, templates, calendars, teams, objects and flow tests.

    Schema, names and references, condition and template types, step graphs
    and cross-flow loops, each diagnostic at file:line:col. Exit 0 when valid,
    1 when not.

    Example:

        flowctl validate                       # the whole repository
        flowctl validate flows/welcome.yaml --strict
        flowctl validate --format github       # annotations in GitHub Actions
    """
    report = validate_path(path, strict=strict)
    if fmt == ValidateFormat.json:
        print_json(report_json(report))
    elif fmt == ValidateFormat.github:
        sys.stdout.write(render_github(report))
    else:
        render_text(report, console)
    if not report.valid:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
