"""Usage errors exit 1 (SPEC §10.13): exit 2 is kept for `plan --detailed-exitcode` with changes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    "argv",
    [
        ["no-such-command"],
        ["validate", "--format", "xml"],
        ["validate", "--no-such-option"],
        ["simulate"],  # missing FLOW
        ["test", "--format", "html"],
        ["runner", "token", "create"],  # a nested group's command without its required --role
        ["runs", "no-such-subcommand"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_a_usage_error_exits_1_with_its_message(argv: list[str]) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert "Usage:" in result.output
    assert "Traceback" not in result.output


def test_the_installed_command_exits_1_on_a_usage_error() -> None:
    # The console script goes through typer's standalone error printing, not CliRunner's.
    proc = subprocess.run(
        [sys.executable, "-c", "from flowctl.cli.main import app; app()", "validate", "--format", "xml"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "'xml' is not one of" in proc.stderr


def test_help_and_version_still_exit_0() -> None:
    assert runner.invoke(app, ["validate", "--help"]).exit_code == 0
    assert runner.invoke(app, ["--version"]).exit_code == 0
