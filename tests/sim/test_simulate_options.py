"""`flowctl simulate` refuses options that would silently simulate something else than asked.

A misspelt `--fault` step injected nothing, an unknown `--set` field or enum
value went into the record unchecked (a flow test's `set:` is refused by
validate for the same mistake), and a negative `--for` ran no clock at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app

from .sample import write_repo

runner = CliRunner()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(tmp_path / "repo")


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["--fault", "mial=timeout"], "flow 'welcome' has no step 'mial'", "its steps: mail, assign, call, pause, check_in"),
        (["--set", "stgae=customer"], "--set stgae: contact has no field 'stgae'", "did you mean 'stage'?"),
        (["--set", "stage=vip"], "--set stage: 'vip' is not a value of this enum (lead, customer)", "lead, customer"),
        (["--set", "email_opt_out=maybe"], "--set email_opt_out: 'maybe' is not a boolean", "write true or false"),
        (["--for", "-3d"], "--for needs a positive duration, got '-3d'", "--for 7d"),
        (["--for", "0s"], "--for needs a positive duration, got '0s'", "--for 7d"),
    ],
)
def test_a_bad_option_is_one_message_with_a_hint(repo: Path, args: list[str], message: str, hint: str) -> None:
    result = runner.invoke(app, ["simulate", "welcome", "--record", "c-1", "--project", str(repo), *args])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert hint in result.output
    assert "Traceback" not in result.output


def test_valid_sets_and_faults_still_simulate(repo: Path) -> None:
    result = runner.invoke(app, ["simulate", "welcome", "--record", "c-1", "--project", str(repo), "--for", "1h",
                                 "--set", "email_opt_out=false", "--fault", "mail=HTTP 503*1"])
    assert result.exit_code == 0, result.output
    assert "mail (send_email) attempt 1 failed: HTTP 503" in result.output


def test_an_event_flows_set_is_event_data_not_record_fields(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", {"flows/survey.yaml": """\
kind: flow
name: survey
object: contact
trigger: {type: event, name: survey.submitted}
steps:
  - {id: note, action: log, message: "score {{ trigger.data.score }}"}
"""})
    result = runner.invoke(app, ["simulate", "survey", "--record", "c-1", "--project", str(repo), "--for", "1h",
                                 "--set", "score=2"])
    assert result.exit_code == 0, result.output
    assert 'log: "score 2"' in result.output
