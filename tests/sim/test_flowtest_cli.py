"""`flowctl test`: passing and failing flow tests through the real CLI, readable diffs, JUnit, script semantics."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.sim.flowtest import run_flow_tests

from .sample import write_repo

runner = CliRunner()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(tmp_path / "repo")


def _test_file(name: str, body: str) -> dict[str, str]:
    return {f"tests/flows/{name}.yaml": f"kind: flow_test\nname: {name}\nrecords: [tests/fixtures/contacts.yaml]\n"
            + body}


def test_a_passing_repository_exits_0(repo: Path) -> None:
    result = runner.invoke(app, ["test", str(repo)])
    assert result.exit_code == 0, result.output
    assert "✓ a new customer is welcomed and assigned" in result.output
    assert "1 test: 1 passed, 0 failed" in result.output


def test_a_wrong_expectation_fails_with_expected_and_closest_actual(repo: Path) -> None:
    write_repo(repo, _test_file("wrong", """\
events: [{at: 0s, type: record_created, object: contact, id: c-1}]
run_for: 1d
expect:
  messages: [{channel: email, to: ann@example.com, subject_contains: Goodbye}]
  records: [{object: contact, id: c-1, fields: {owner: bob}}]
  runs: [{flow: welcome, status: succeeded}]
"""))
    result = runner.invoke(app, ["test", str(repo)])
    assert result.exit_code == 1
    out = result.output
    assert "✗ wrong" in out and "✓ a new customer" in out
    assert "expect.messages[0]: no message matches (1 message in total)" in out
    assert "expected  channel: email  to: ann@example.com  subject_contains: Goodbye" in out
    assert 'closest   channel: email  to: ann@example.com  template: welcome_email  subject: Welcome, Ann!' in out
    assert "← differs: subject_contains" in out
    assert "expect.records[0]: fields differ: owner expected 'bob', got 'ada'" in out
    # The run is still waiting after 1 day (its wait is 3 days): the closest run says so.
    assert "expect.runs[0]: no run matches" in out and "status: waiting" in out
    assert "2 tests: 1 passed, 1 failed" in out


def test_junit_output_for_ci(repo: Path) -> None:
    write_repo(repo, _test_file("wrong", "run_for: 1h\nexpect: {timeline: [{record: c-1, contains: nope}]}\n"))
    result = runner.invoke(app, ["test", str(repo), "--format", "junit"])
    assert result.exit_code == 1
    suites = ET.fromstring(result.output.split("\n", 1)[1])
    assert suites.get("tests") == "2" and suites.get("failures") == "1"
    failure = suites.find(".//testcase[@name='wrong']/failure")
    assert failure is not None and "no timeline line of c-1 contains 'nope'" in (failure.get("message") or "")
    assert suites.find(".//testcase[@name='a new customer is welcomed and assigned']/failure") is None


def test_k_narrows_by_name_and_a_path_narrows_by_file(repo: Path) -> None:
    write_repo(repo, _test_file("other", "run_for: 1h\n"))
    assert [r.name for r in run_flow_tests(repo, name_filter="OTHER").results] == ["other"]
    assert [r.name for r in run_flow_tests(repo / "tests/flows/welcome.yaml").results] == [
        "a new customer is welcomed and assigned"
    ]


def test_task_completed_without_an_open_task_fails_the_test(repo: Path) -> None:
    # `call` makes a task, but only once c-1 is created at 2h: at 1h there is none to complete.
    write_repo(repo, _test_file("no-task", """\
events:
  - {at: 1h, type: task_completed, task: call, decision: done}
  - {at: 2h, type: record_created, object: contact, id: c-1}
"""))
    report = run_flow_tests(repo, name_filter="no-task")
    (result,) = report.results
    assert not result.passed
    assert result.error is not None
    assert "tests/flows/no-task.yaml:5:" in result.error
    assert "no open task created by step 'call'" in result.error


def test_an_invalid_repository_is_refused_with_file_line_col(repo: Path) -> None:
    write_repo(repo, {"flows/broken.yaml": "kind: flow\nname: broken\nobject: contact\ntrigger: {type: nope}\nsteps: []\n"})
    result = runner.invoke(app, ["test", str(repo)])
    assert result.exit_code == 1
    assert "flows/broken.yaml:4:" in result.output
    assert "Traceback" not in result.output


def test_events_go_before_timers_at_the_same_instant(repo: Path) -> None:
    # The wait ends at exactly 3d; an update at 3d must be applied before the run wakes and logs.
    changed = {"flows/welcome.yaml": (repo / "flows/welcome.yaml").read_text().replace(
        'message: "three days since the welcome"', 'message: "stage was {{ record.stage }}"')}
    write_repo(repo, changed | _test_file("order", """\
events:
  - {at: 0s, type: record_created, object: contact, id: c-1}
  - {at: 3d, type: record_updated, object: contact, id: c-1, set: {stage: lead}}
run_for: 3d
expect:
  timeline: [{record: c-1, contains: stage was lead}]
"""))
    (result,) = run_flow_tests(repo, name_filter="order").results
    assert result.passed, result.checks
