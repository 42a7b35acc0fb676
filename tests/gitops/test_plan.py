"""Plans without a runner: the model and plan.json, `plan --offline`, and the renderers (syrupy snapshots)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.errors import FlowctlError
from flowctl.gitops.git import Git
from flowctl.gitops.plan import Plan, RunnerTarget, make_plan
from flowctl.gitops.tree import Workspace, load_ref
from flowctl.render.graph import render_mermaid
from flowctl.render.plan import plain, plan_markdown, plan_text
from flowctl.resources.models import Flow

from .conftest import Repo, greet_flow

cli = CliRunner()

REMINDER = "kind: template\nname: reminder\nchannel: sms\nbody: \"Hi {{ record.first_name }}\"\n"


def change_project(repo: Repo) -> str:
    """v2 of the project: greet's log lines change, a template is added, the team is removed."""
    repo.write("flows/greet.yaml", greet_flow("v2"))
    repo.write("templates/reminder.yaml", REMINDER)
    (repo.root / "flows/support-team.yaml").unlink()
    return repo.commit("greet v2")


def tag(repo: Repo, name: str) -> None:
    git = Git(repo.root)
    git.create_tag(name, git.resolve_commit("HEAD"), f"{name}: by hand\n")


def test_plan_offline_without_any_tag_adds_everything(repo: Repo) -> None:
    result = cli.invoke(app, ["plan", "--offline", "-C", str(repo.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["against"] == "tag" and data["baseline"] == {"tag": None, "commit": None, "hash": None}
    assert data["summary"] == {"add": 4, "change": 0, "delete": 0}
    assert data["commit"] == repo.git("rev-parse", "HEAD")


def test_plan_offline_against_latest_tag_and_detailed_exitcode(repo: Repo, snapshot: SnapshotAssertion) -> None:
    tag(repo, "flows/v1")
    none = cli.invoke(app, ["plan", "--offline", "-C", str(repo.root), "--detailed-exitcode"])
    assert none.exit_code == 0, none.output
    assert "No changes." in none.output
    change_project(repo)
    result = cli.invoke(app, ["plan", "--offline", "-C", str(repo.root), "--detailed-exitcode"])
    assert result.exit_code == 2, result.output
    assert result.output.rstrip().endswith("Plan: 1 to add, 1 to change, 1 to delete.")
    assert result.output == snapshot


def test_plan_uses_the_committed_tree_not_the_working_tree(repo: Repo) -> None:
    tag(repo, "flows/v1")
    repo.write("flows/greet.yaml", greet_flow("uncommitted"))
    result = cli.invoke(app, ["plan", "--offline", "-C", str(repo.root), "--detailed-exitcode"])
    assert result.exit_code == 0, result.output


def test_plan_out_round_trips_and_binds_the_commit(repo: Repo, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = cli.invoke(app, ["plan", "--offline", "-C", str(repo.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = Plan.load(out)
    assert plan.commit == repo.git("rev-parse", "HEAD")
    assert plan.desired_hash == load_ref(Workspace.locate(repo.root), "HEAD").content_hash
    assert plan.summary.line() == "Plan: 4 to add, 0 to change, 0 to delete."


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "plan.json:1:2: not JSON"),
        ('{"format_version": 9}', "plan format_version 9 is not supported"),
        ('{"format_version": 1, "commit": "abc"}', "not a flowctl plan: created_at: Field required"),
    ],
)
def test_bad_plan_files_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(FlowctlError, match=message):
        Plan.load(path)


def test_plan_refuses_an_invalid_tree_with_file_line_column(repo: Repo) -> None:
    repo.write("flows/greet.yaml", greet_flow("v1").replace("action: log", "action: lgo", 1))
    repo.commit("typo")
    result = cli.invoke(app, ["plan", "--offline", "-C", str(repo.root)])
    assert result.exit_code == 1
    assert "is invalid" in result.output
    assert "flows/greet.yaml:" in result.output
    assert "Traceback" not in result.output


def _runner_plan(repo: Repo) -> tuple[Plan, dict[str, Flow]]:
    """A plan against a (described) runner with runs in flight, for the renderers."""
    ws = Workspace.locate(repo.root)
    before = load_ref(ws, "HEAD")
    change_project(repo)
    after = load_ref(ws, "HEAD")
    plan = make_plan(
        after,
        baseline=before.bundle,
        against="runner",
        runner=RunnerTarget(url="http://127.0.0.1:8787", version=3, hash=before.content_hash, tag="flows/v2"),
        inflight={"greet": {"2": 1, "3": 2}, "other": {"3": 4}},
        branch="main",
        now=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
    )
    return plan, after.project.flows


def test_plan_text_snapshot(repo: Repo, snapshot: SnapshotAssertion) -> None:
    plan, _ = _runner_plan(repo)
    text = plain(plan_text(plan))
    assert "3 runs in flight stay on their versions (v2: 1, v3: 2)" in text
    assert "7 runs in flight keep the version they started on." in text
    assert text == snapshot


def test_plan_markdown_snapshot(repo: Repo, snapshot: SnapshotAssertion) -> None:
    plan, flows = _runner_plan(repo)
    md = plan_markdown(plan, flows)
    assert md.startswith("<!-- flowctl-plan -->\n### flowctl plan")
    assert "**Plan: 1 to add, 1 to change, 1 to delete.**" in md
    assert "```mermaid" in md and "#### flow `greet` (update)" in md
    assert '-   steps[hello].message: "v1: started"' in md and '+   steps[hello].message: "v2: started"' in md
    # The diagram is the graph renderer's (tested there); here: that it is the desired flow's.
    diagram = render_mermaid(flows["greet"]).rstrip()
    assert f"```mermaid\n{diagram}\n```" in md
    assert "v2: finished" in diagram
    assert md.replace(diagram, "<diagram of greet>") == snapshot


def test_plan_json_is_the_saved_plan(repo: Repo) -> None:
    plan, _ = _runner_plan(repo)
    again = Plan.model_validate(json.loads(plan.to_json()))
    assert again == plan
    assert (again.changes[0].name, again.changes[0].inflight) == ("greet", {"2": 1, "3": 2})
