"""Real git repositories in tmp dirs, holding a small flows project."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

FIXED_DATE = "2026-01-05T09:00:00+00:00"

FLOWCTL_YAML = """\
project: acme-crm
publish: {branch: main, tag_prefix: flows/v}
"""

CONTACT = """\
kind: object
name: contact
fields:
  first_name: {type: string}
  email: {type: email}
  tier: {type: enum, values: [standard, premium, gold]}
"""

TEMPLATE = """\
kind: template
name: welcome_email
channel: email
object: contact
subject: "Welcome, {{ record.first_name }}!"
text: "Hi {{ record.first_name }}"
"""

TEAM = """\
kind: team
name: support
manager: wang.fang
members:
  - {user: li.lei, skills: [billing]}
  - {user: han.meimei}
"""


def greet_flow(version: str) -> str:
    """A flow whose log lines say which version ran them; it waits on a human task in between."""
    return f"""\
kind: flow
name: greet
description: Greets every new contact
object: contact
trigger: {{type: record_created}}
steps:
  - id: hello
    action: log
    message: "{version}: started"
  - id: hold
    action: human_task
    title: "Call {{{{ record.first_name }}}}"
    assignee: li.lei
  - id: bye
    action: log
    message: "{version}: finished"
"""


class Repo:
    """A git repository with a flows project at its root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def git(self, *args: str) -> str:
        # Fixed dates make commit ids depend on content only, so snapshots can show them.
        env = {**os.environ, "GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
        proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, check=False, env=env)
        assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
        return proc.stdout.strip()

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")


def init_repo(root: Path, *, user: str = "Alice Example", email: str = "alice@example.com") -> Repo:
    root.mkdir(parents=True, exist_ok=True)
    repo = Repo(root)
    repo.git("init", "--quiet", "-b", "main")
    repo.git("config", "user.name", user)
    repo.git("config", "user.email", email)
    repo.git("config", "commit.gpgsign", "false")
    repo.git("config", "tag.gpgsign", "false")
    return repo


def seed_project(repo: Repo) -> None:
    repo.write("flowctl.yaml", FLOWCTL_YAML)
    repo.write("schemas/objects/contact.yaml", CONTACT)
    repo.write("templates/welcome_email.yaml", TEMPLATE)
    repo.write("flows/support-team.yaml", TEAM)
    repo.write("flows/greet.yaml", greet_flow("v1"))


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Repo]:
    def make(name: str = "flows-repo", *, seeded: bool = True, **identity: str) -> Repo:
        repo = init_repo(tmp_path / name, **identity)
        if seeded:
            seed_project(repo)
            repo.commit("initial flows")
        return repo

    return make


@pytest.fixture
def repo(make_repo: Callable[..., Repo]) -> Repo:
    return make_repo()
