"""The git wrapper against real repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowctl.errors import GitError
from flowctl.gitops.git import Git, parse_trailers
from flowctl.gitops.history import next_tag, publish_tags, read_history
from flowctl.gitops.tree import Workspace, load_ref

from .conftest import Repo, greet_flow, init_repo


def test_tags_with_prefix_are_numbered_and_parsed(repo: Repo) -> None:
    git = Git(repo.root)
    head = git.resolve_commit("HEAD")
    message = "flows/v1: apply\n\nPlan: 4 to add, 0 to change, 0 to delete.\n\nAction: apply\nPublisher: Alice <a@x>\nSummary: first\n"
    git.create_tag("flows/v1", head, message)
    git.create_tag("flows/v10", head, "flows/v10: apply\n\nAction: apply\n")
    repo.git("tag", "flows/v2-rc", head)  # not a publish tag: not <prefix>N
    repo.git("tag", "other/v3", head)
    ws = Workspace.locate(repo.root)
    assert [t.name for t in publish_tags(ws, "flows/v")] == ["flows/v1", "flows/v10"]
    assert next_tag(ws, "flows/v") == "flows/v11"
    (v1,) = [t for t in git.tags("flows/v") if t.name == "flows/v1"]
    assert v1.commit == head
    assert v1.tagger == "Alice Example <alice@example.com>"
    assert v1.message == message  # verbatim, blank lines kept
    assert parse_trailers(v1.message) == {"Action": "apply", "Publisher": "Alice <a@x>", "Summary": "first"}


def test_existing_tag_is_never_overwritten(repo: Repo) -> None:
    git = Git(repo.root)
    head = git.resolve_commit("HEAD")
    git.create_tag("flows/v1", head, "one\n")
    with pytest.raises(GitError, match="tag flows/v1 already exists"):
        git.create_tag("flows/v1", head, "two\n")


def test_status_lists_modified_added_and_untracked_under_paths(repo: Repo) -> None:
    repo.write("flows/greet.yaml", greet_flow("v2"))
    repo.write("flows/new.yaml", "kind: team\n")
    repo.write("notes/todo.md", "outside the paths\n")
    repo.git("add", "flows/new.yaml")
    repo.write("templates/x.yaml", "kind: template\n")
    entries = {e.path: e.description for e in Git(repo.root).status(["flows", "templates"])}
    assert entries == {"flows/greet.yaml": "modified", "flows/new.yaml": "added", "templates/x.yaml": "untracked"}


def test_is_on_branch_follows_local_and_remote_tracking_branches(tmp_path: Path) -> None:
    origin = init_repo(tmp_path / "origin")
    origin.write("a.txt", "1")
    origin.commit("one")
    clone_dir = tmp_path / "clone"
    origin.git("clone", "--quiet", str(origin.root), str(clone_dir))
    clone = Repo(clone_dir)
    clone.git("config", "user.name", "Bob")
    clone.git("config", "user.email", "bob@example.com")
    clone.git("checkout", "--quiet", "-b", "feature")
    clone.write("a.txt", "2")
    feature = clone.commit("two")
    git = Git(clone_dir)
    main = git.resolve_commit("main")
    assert git.is_on_branch(main, "main")
    assert not git.is_on_branch(feature, "main")
    # Only the remote-tracking branch knows the commit: still on the publish branch.
    clone.git("branch", "-D", "main")
    assert git.is_on_branch(main, "main")
    clone.git("checkout", "--quiet", "--detach", main)
    assert git.current_branch() is None


def test_load_ref_reads_the_commit_not_the_working_tree(repo: Repo) -> None:
    repo.write("flows/greet.yaml", greet_flow("v2"))
    ws = Workspace.locate(repo.root)
    state = load_ref(ws, "HEAD")
    assert state.bundle.resources["flow"]["greet"]["steps"][0]["message"] == "v1: started"
    assert state.commit == repo.git("rev-parse", "HEAD")


def test_identity_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no global git config
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    bare = tmp_path / "r"
    bare.mkdir()
    Repo(bare).git("init", "--quiet")
    with pytest.raises(GitError) as info:
        Git(bare).identity()
    assert "git config user.name" in (info.value.hint or "")


def test_errors_for_no_repo_and_no_commits(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository"):
        Workspace.locate(tmp_path)
    empty = init_repo(tmp_path / "empty")
    with pytest.raises(GitError, match="no commits yet"):
        Git(empty.root).resolve_commit("HEAD")


def test_history_offline_reads_trailers_newest_first(repo: Repo) -> None:
    git = Git(repo.root)
    head = git.resolve_commit("HEAD")
    git.create_tag("flows/v1", head, "t\n\nAction: apply\nPublisher: Alice <a@x>\nTime: 2026-01-05T09:00:00Z\nSummary: s1\n")
    git.create_tag("flows/v2", head, "t\n\nAction: rollback\nRollback-To: flows/v1\nSummary: rollback to flows/v1 by B\n")
    history = read_history(Workspace.locate(repo.root), "flows/v")
    assert [(e.tag, e.action, e.rollback_to) for e in history.entries] == [
        ("flows/v2", "rollback", "flows/v1"), ("flows/v1", "apply", None),
    ]  # fmt: skip
    assert history.entries[1].publisher == "Alice <a@x>"
    # No Publisher trailer: the tagger names the publisher.
    assert history.entries[0].publisher == "Alice Example <alice@example.com>"
    assert history.runner is None and not history.drift
