"""`flowctl simulate`: the trace a person reads and the JSON a machine reads (snapshots), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from typer.testing import CliRunner

from flowctl.cli.main import app

from .sample import write_repo

runner = CliRunner()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(tmp_path / "repo")


def _simulate(repo: Path, *args: str) -> str:
    result = runner.invoke(app, ["simulate", "welcome", "--project", str(repo), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_text_trace(repo: Path, snapshot: SnapshotAssertion) -> None:
    assert _simulate(repo, "--record", "tests/fixtures/contacts.yaml#c-1", "--for", "4d") == snapshot


def test_text_trace_with_a_retry_and_a_failure(repo: Path, snapshot: SnapshotAssertion) -> None:
    retried = _simulate(repo, "--record", "c-1", "--for", "1h", "--fault", "mail=HTTP 503")
    assert "↻ mail (send_email) attempt 1 failed: HTTP 503; retry at 2026-01-05 09:10:00" in retried
    failed = _simulate(repo, "--record", "c-1", "--for", "1h", "--fault", "mail=HTTP 404*2")
    assert "✗ mail (send_email) failed: HTTP 404: injected fault: HTTP 404" in failed  # 4xx: not retried
    assert retried + failed == snapshot


def test_json_trace(repo: Path, snapshot: SnapshotAssertion) -> None:
    doc = json.loads(_simulate(repo, "--record", "c-1", "--for", "4d", "--format", "json"))
    assert doc["format_version"] == 1
    assert [r["status"] for r in doc["runs"]] == ["succeeded"]
    assert doc["record_after"]["owner"] == "ada"
    assert doc == snapshot


def test_set_and_start_change_the_simulated_record(repo: Path) -> None:
    out = _simulate(repo, "--record", "c-2", "--set", "stage=customer", "--set", "first_name=Benny",
                    "--start", "2026-03-02T08:00:00Z", "--for", "1h")
    assert 'email to ben@example.com: "Welcome, Benny!"' in out
    assert out.splitlines()[0].endswith("from 2026-03-02 08:00:00 UTC for 1h")


def test_a_record_that_misses_the_entry_conditions_shows_the_suppression(repo: Path) -> None:
    out = _simulate(repo, "--record", "c-2", "--for", "1h")
    assert "⊘ welcome not started for contact/c-2: conditions" in out
    assert "runs: none started" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "nope", "--record", "c-1"], "no flow named 'nope'"),
        (["simulate", "welcome", "--record", "c-404"], "no fixture record with id 'c-404'"),
        (["simulate", "welcome", "--record", "c-1", "--for", "soon"], "--for"),
        (["simulate", "welcome", "--record", "c-1", "--event", "explode"], "unknown --event 'explode'"),
        (["simulate", "welcome", "--record", "c-1", "--set", "oops"], "--set needs key=value"),
        (["simulate", "welcome", "--record", "c-1", "--fault", "mail"], "--fault needs STEP=ERROR"),
    ],
)
def test_errors_are_one_message_and_exit_1(repo: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--project", str(repo)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
