"""apply refuses before it touches the runner: a dirty tree, another branch, an invalid tree, failing flow tests.

No runner is listening on the URL these tests use: each refusal must happen
before apply asks the runner anything.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.gitops.apply import PublishRefused, TestOutcome, check_tests, run_project_tests
from flowctl.gitops.tree import Workspace, open_ref

from .conftest import Repo, greet_flow

cli = CliRunner()
# A port nothing listens on: reaching the runner would fail with a different message.
NOWHERE = "http://127.0.0.1:9"


def apply(repo: Repo, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, ["apply", "--yes", "--runner", NOWHERE, "-C", str(repo.root), *args])
    return result.exit_code, result.output


def test_dirty_tree_is_refused(repo: Repo) -> None:
    repo.write("flows/greet.yaml", greet_flow("v2"))
    code, out = apply(repo)
    assert code == 1
    assert "uncommitted changes: flows/greet.yaml (modified)" in out
    assert "commit them" in out


def test_modified_flowctl_yaml_is_refused(repo: Repo) -> None:
    repo.write("flowctl.yaml", "project: acme-crm\npublish: {branch: release}\n")
    code, out = apply(repo)
    assert code == 1
    assert "flowctl.yaml (modified)" in out


def test_changes_outside_the_project_paths_do_not_block(repo: Repo) -> None:
    repo.write("README.md", "edited\n")
    repo.write("flows/draft.yaml", "kind: team\n")  # untracked: not published, only warned about
    code, out = apply(repo)
    assert code == 1
    assert "cannot reach the runner at http://127.0.0.1:9" in out
    assert "untracked files are not published: flows/draft.yaml" in out


def test_commit_not_on_the_publish_branch_is_refused(repo: Repo) -> None:
    repo.git("checkout", "--quiet", "-b", "feature/greet-v2")
    repo.write("flows/greet.yaml", greet_flow("v2"))
    repo.commit("greet v2")
    code, out = apply(repo)
    assert code == 1
    assert "(on branch 'feature/greet-v2') is not on the publish branch 'main'" in out
    assert "--allow-branch" in out
    # --allow-branch gets past the check (and then needs the runner).
    code, out = apply(repo, "--allow-branch")
    assert "cannot reach the runner" in out


def test_publish_branch_comes_from_flowctl_yaml(repo: Repo) -> None:
    repo.write("flowctl.yaml", "project: acme-crm\npublish: {branch: release, tag_prefix: flows/v}\n")
    repo.commit("publish from release")
    code, out = apply(repo)
    assert code == 1
    assert "is not on the publish branch 'release'" in out


def test_invalid_tree_is_refused_with_locations(repo: Repo) -> None:
    repo.write("flows/greet.yaml", greet_flow("v1").replace("    assignee: li.lei\n", "    assignee: li.lei\n    asignee: x\n"))
    repo.commit("typo")
    code, out = apply(repo)
    assert code == 1
    assert "the tree at HEAD (" in out and "is invalid: 1 error" in out
    assert "flows/greet.yaml:14:5: unknown key 'asignee'" in out
    assert "flowctl validate" in out
    assert "Traceback" not in out


def test_reference_errors_from_validate_also_refuse(repo: Repo) -> None:
    # Loads fine, but `flowctl validate` rejects it: the template does not exist.
    repo.write("flows/mail.yaml", "kind: flow\nname: mail\nobject: contact\ntrigger: {type: record_created}\n"
               "steps:\n  - {id: send, action: send_email, to: '{{ record.email }}', template: no_such_template}\n")  # fmt: skip
    repo.commit("bad reference")
    code, out = apply(repo)
    assert code == 1
    assert "is invalid" in out and "flows/mail.yaml:6" in out


GREET_TEST = """\
kind: flow_test
name: a new contact is greeted and waits for the call
events:
  - {at: 0s, type: record_created, object: contact, record: {id: c-1, first_name: Ann}}
expect:
  runs: [{flow: greet, record: c-1, status: STATUS, count: 1}]
  timeline: [{record: c-1, contains: "v1: started"}]
"""


def test_failing_flow_tests_are_refused(repo: Repo) -> None:
    repo.write("tests/flows/greet.yaml", GREET_TEST.replace("STATUS", "succeeded"))  # it waits on the task
    repo.commit("a failing test")
    code, out = apply(repo)
    assert code == 1
    assert "flow tests fail at" in out
    assert "1 of 1 failed: a new contact is greeted and waits for the call (tests/flows/greet.yaml:2)" in out
    assert "flowctl test" in out


def test_passing_flow_tests_let_apply_reach_the_runner(repo: Repo) -> None:
    repo.write("tests/flows/greet.yaml", GREET_TEST.replace("STATUS", "waiting"))
    repo.commit("a passing test")
    ws = Workspace.locate(repo.root)
    with open_ref(ws, "HEAD") as state:
        outcome = run_project_tests(state.project)
    assert (outcome.total, outcome.failed) == (1, [])
    _, out = apply(repo)
    assert "cannot reach the runner" in out


def test_check_tests_uses_the_given_runner(repo: Repo) -> None:
    repo.write("tests/flows/greet.yaml", GREET_TEST.replace("STATUS", "waiting"))
    repo.commit("a test")
    with open_ref(Workspace.locate(repo.root), "HEAD") as state:
        with pytest.raises(PublishRefused, match="1 of 2 failed: x"):
            check_tests(state, lambda project: TestOutcome(total=2, failed=["x"]))


def test_no_commits_yet(make_repo: object) -> None:
    repo = make_repo("empty", seeded=False)  # type: ignore[operator]
    code, out = apply(repo)
    assert code == 1
    assert "no commits yet" in out
