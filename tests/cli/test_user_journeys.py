"""What a user meets first, checked end to end: the scaffold's own instructions, a validate diagnostic, CLI
output piped into a CI log, and the operator CLI against a real runner subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flowctl.check.validate import validate_path
from flowctl.cli.main import app
from flowctl.resources.bundle import Bundle

# The runner process helper lives with the e2e tests (tests/e2e/conftest.py); make `e2e` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e.conftest import FLOWCTL, RunnerProcess

ROOT = Path(__file__).resolve().parents[2]
cli = CliRunner()


def git_env(tmp_path: Path, **config: str) -> dict[str, str]:
    """A git whose global config is ours alone (the user's defaults must not decide the outcome)."""
    gitconfig = tmp_path / "gitconfig"
    lines = ["[user]", "  name = Alice Example", "  email = alice@example.com", "[init]",
             f"  defaultBranch = {config.get('default_branch', 'master')}"]  # fmt: skip
    gitconfig.write_text("\n".join(lines) + "\n")
    return {**os.environ, "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1"}


def test_init_next_steps_commit_on_the_publish_branch_whatever_gits_default(tmp_path: Path) -> None:
    # Before: `git init && ...` made a `master` branch on most machines and the first `flowctl apply` was refused.
    result = cli.invoke(app, ["init", str(tmp_path / "acme")])
    assert result.exit_code == 0, result.output
    [git_line] = [line.strip() for line in result.output.splitlines() if line.strip().startswith("git init")]
    command = git_line.split("#", 1)[0].replace("'", '"')
    env = git_env(tmp_path, default_branch="master")
    subprocess.run(["bash", "-c", command], cwd=tmp_path / "acme", env=env, check=True, capture_output=True)
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=tmp_path / "acme", env=env,
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert branch == "main"  # publish.branch in the scaffolded flowctl.yaml
    assert "publish:\n  branch: main" in (tmp_path / "acme/flowctl.yaml").read_text()
    # `flowctl plan --out plan.json` (the documented name) must not be swept into the next `git add -A`.
    ignored = subprocess.run(["git", "check-ignore", "plan.json", "pr.plan.json", ".flowctl/runner.db"],
                             cwd=tmp_path / "acme", env=env, capture_output=True, text=True)  # fmt: skip
    assert ignored.stdout.split() == ["plan.json", "pr.plan.json", ".flowctl/runner.db"]
    readme = (tmp_path / "acme/README.md").read_text()
    assert "git init -b main &&" in readme and "git init &&" not in readme


def test_an_unknown_holiday_country_is_reported_at_its_key(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flowctl.yaml").write_text("project: cal\n")
    (tmp_path / "flows/office.yaml").write_text(
        "kind: calendar\nname: office\ntimezone: America/New_York\n"
        'weekly:\n  mon-fri: ["09:00-17:00"]\nholidays_country: XX\n'
    )
    report = validate_path(tmp_path)
    [diag] = [d for d in report.diagnostics if d.severity == "error"]
    assert (diag.range.line, diag.range.column) == (6, 19)
    assert "unknown holidays_country 'XX'" in diag.summary
    (tmp_path / "flows/office.yaml").write_text(
        "kind: calendar\nname: office\ntimezone: America/New_York\n"
        'weekly:\n  mon-fri: ["09:00-17:00"]\nholidays_country: US\nholidays_subdivision: ZZ\n'
    )
    [diag] = [d for d in validate_path(tmp_path).diagnostics if d.severity == "error"]
    assert (diag.range.line, diag.range.column) == (7, 23)
    assert "unknown holidays_subdivision 'ZZ' of US" in diag.summary
    (tmp_path / "flows/office.yaml").write_text(
        "kind: calendar\nname: office\ntimezone: America/New_York\n"
        'weekly:\n  mon-fri: ["09:00-17:00"]\nholidays_country: US\nholidays_subdivision: CA\n'
    )
    assert [d for d in validate_path(tmp_path).diagnostics if d.severity == "error"] == []


def test_history_piped_into_a_log_keeps_one_line_per_publish(tmp_path: Path) -> None:
    env = git_env(tmp_path, default_branch="main")
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    (repo / "flowctl.yaml").write_text("project: h\n")
    (repo / "flows/greet.yaml").write_text("kind: template\nname: greet\nchannel: sms\nbody: Hi\n")
    summary = "rollback to flows/v1 by Alice Example <alice@example.com>"
    message = (f"flows/v1: rollback\n\nAction: rollback\nPublisher: Alice Example <alice@example.com>\n"
               f"Time: 2026-04-06T10:12:40Z\nSummary: {summary}\n")  # fmt: skip
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["commit", "-qm", "flows"],
        ["tag", "-a", "flows/v1", "-m", message],
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    result = cli.invoke(
        app, ["history", "--offline", "-C", str(repo)], env={"GIT_CONFIG_GLOBAL": env["GIT_CONFIG_GLOBAL"]}
    )
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.output.splitlines() if "flows/v1" in line and "rollback  " in line]
    assert "Alice Example <alice@example.com>" in row and row.rstrip().endswith(summary)


def test_docs_quick_start_gives_the_cli_the_token_of_a_runner_started_elsewhere() -> None:
    quick = (ROOT / "docs/runner.md").read_text().split("## Quick start", 1)[1].split("```", 2)[1]
    lines = [line.split("#", 1)[0].strip() for line in quick.splitlines()]
    serve = next(i for i, line in enumerate(lines) if line.startswith("flowctl runner serve"))
    apply = next(i for i, line in enumerate(lines) if line.startswith("flowctl apply"))
    assert any(line.startswith("export FLOWCTL_TOKEN=") for line in lines[serve:apply])


BUNDLE: dict[str, Any] = {
    "object": {"contact": {"kind": "object", "name": "contact", "fields": {"first_name": {"type": "string"}}}},
    "flow": {"onboard": {
        "kind": "flow", "name": "onboard", "object": "contact", "trigger": {"type": "record_created"},
        "steps": [
            {"id": "todo", "action": "create_task", "subject": "Call {{ record.first_name }}"},
            {"id": "check", "action": "human_task", "title": "Check {{ record.first_name }}", "assignee": "li.lei"},
        ],
    }},
}  # fmt: skip


@pytest.mark.e2e
def test_operator_cli_messages_against_a_live_runner(tmp_path: Path) -> None:
    base = tmp_path / "runner"
    base.mkdir()
    proc = RunnerProcess(base)
    try:
        proc.start()
        with proc.client() as c:
            r = c.put("/v1/bundle", json={"bundle": Bundle(resources=BUNDLE).model_dump(mode="json"),
                                          "expected_version": 0})  # fmt: skip
            assert r.status_code == 200, r.text
            r = c.post("/v1/events", json={"type": "record_created", "object": "contact",
                                           "record": {"id": "c-1", "first_name": "Ada"}})  # fmt: skip
            assert r.status_code == 202, r.text
            tasks = {t["kind"]: t for t in c.get("/v1/tasks").json()["tasks"]}
        # A create_task to-do: completing it moves no run, so the CLI must not say the run continues.
        todo = proc.cli("tasks", "complete", tasks["task"]["id"], "--decision", "done")
        assert todo.returncode == 0, todo.stderr
        assert "completed (done)" in todo.stdout and "continues" not in todo.stdout
        human = proc.cli("tasks", "complete", tasks["human_task"]["id"], "--decision", "done")
        assert human.returncode == 0 and f"run {tasks['human_task']['run_id']} continues" in human.stdout

        # No token anywhere (another folder, no FLOWCTL_TOKEN): the hint says where flowctl looks for one.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        env = {k: v for k, v in proc.env.items() if k != "FLOWCTL_TOKEN"}
        out = subprocess.run([FLOWCTL, "runs", "list", "--runner", proc.url], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 1
        assert "missing bearer token" in out.stderr
        assert "--token" in out.stderr and "FLOWCTL_TOKEN" in out.stderr and "Authorization" not in out.stderr
        assert proc.terminate() == 0
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(10)
