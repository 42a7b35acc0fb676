"""Every command's --help shows an example (issue: a newcomer learns by copying)."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from flowctl.cli.main import app

runner = CliRunner()


def _commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    out: list[list[str]] = [[]]

    # typer vendors its own click, so duck-type groups by their `commands` mapping.
    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if isinstance(subs, dict):
            for name, sub in subs.items():
                out.append([*path, name])
                walk(sub, [*path, name])

    walk(root, [])
    return out


COMMANDS = _commands()


def test_there_are_commands() -> None:
    names = {" ".join(c) for c in COMMANDS}
    for expected in ("validate", "simulate", "test", "graph", "init", "diff", "plan", "apply", "rollback", "history",
                     "runner serve", "runner token create", "events send", "runs list", "tasks complete", "sla status"):
        assert expected in names, f"missing command {expected}"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "flowctl")
def test_help_shows_an_example(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`flowctl {' '.join(path)} --help` has no example"


def test_unknown_command_is_a_usage_error_exit_1_or_2() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code != 0
