"""`flowctl test [PATH] [--format text|junit] [-k NAME]`: run flow tests on the simulator.

A thin wrapper over flowctl.sim.flowtest; rendering lives in flowctl.sim.report.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from flowctl.cli.common import console, handle_errors
from flowctl.sim.flowtest import run_flow_tests
from flowctl.sim.report import render_junit, render_text


class TestFormat(StrEnum):
    __test__ = False

    text = "text"
    junit = "junit"


@handle_errors
def flow_test(
    path: Path = typer.Argument(Path("."), help="The repository, a folder of flow tests, or one test file."),
    fmt: TestFormat = typer.Option(TestFormat.text, "--format", "-f", help="text (for people) or junit (XML for CI)."),
    name: str | None = typer.Option(None, "-k", help="Only tests whose name contains this text (case-insensitive)."),
) -> None:
    """Run flow tests (kind: flow_test) with the engine the runner uses, on a virtual clock.

    Fixture records, scripted events, injected faults and webhook stubs go in;
    runs, messages, tasks, records and timelines come out and are checked
    against `expect:`. Nothing leaves the machine. Exit 0 when every test
    passed, 1 on any failure or error.

    Example:

        flowctl test                                   # every test in tests/flows/
        flowctl test tests/flows/welcome.yaml -k premium
        flowctl test --format junit > report.xml       # for CI
    """
    report = run_flow_tests(path, name_filter=name)
    if fmt == TestFormat.junit:
        sys.stdout.write(render_junit(report))
    else:
        render_text(report, console)
    if not report.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("test")(flow_test)
