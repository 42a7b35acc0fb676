"""apply / plan / rollback / history against a real runner subprocess, in real git repositories.

The acceptance scenario of the GitOps issue: apply → flows/v1; change one
flow; plan shows exactly that change; apply → flows/v2; rollback → flows/v3
whose content equals v1's; a run waiting on v2 finishes on v2 after the
rollback while new triggers start v1's logic.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.gitops.apply import PublishRefused, execute_apply, prepare_apply
from flowctl.gitops.git import Git, parse_trailers
from flowctl.gitops.tree import Workspace, load_ref
from flowctl.runner.client import RunnerClient

from .conftest import Repo, greet_flow, init_repo, seed_project

pytestmark = pytest.mark.e2e

cli = CliRunner()
FLOWCTL = Path(sys.executable).parent / "flowctl"
PUBLISHER = "Alice Example <alice@example.com>"


@dataclass
class Runner:
    url: str
    token: str
    workdir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"FLOWCTL_RUNNER_URL": self.url, "FLOWCTL_TOKEN": self.token}

    def client(self) -> RunnerClient:
        return RunnerClient(self.url, self.token)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    workdir = tmp_path / "runner"
    workdir.mkdir()
    port = _free_port()
    log = (workdir / "runner.log").open("wb")
    proc = subprocess.Popen(
        [str(FLOWCTL), "runner", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"runner exited: {(workdir / 'runner.log').read_text()}")
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("runner did not start in 30 s")
            time.sleep(0.1)
        token = (workdir / ".flowctl/admin.token").read_text().strip()
        yield Runner(url=url, token=token, workdir=workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def flowctl(runner: Runner, repo: Repo, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, [*args, "-C", str(repo.root)], env=runner.env)
    return result.exit_code, result.output


def flowctl_json(runner: Runner, repo: Repo, *args: str) -> dict[str, Any]:
    code, out = flowctl(runner, repo, *args, "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def tags(repo: Repo) -> list[str]:
    return repo.git("tag", "--list", "flows/v*", "--sort=v:refname").split()


def timeline(client: RunnerClient, record_id: str) -> list[str]:
    return [e["text"] for e in client.record("contact", record_id)["timeline"]]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_apply_change_rollback_and_history(runner: Runner, repo: Repo, tmp_path: Path) -> None:
    client = runner.client()
    ws = Workspace.locate(repo.root)

    # apply → flows/v1
    first = flowctl_json(runner, repo, "apply", "--yes")
    assert (first["status"], first["tag"], first["version"], first["publisher"]) == ("applied", "flows/v1", 1, PUBLISHER)
    assert tags(repo) == ["flows/v1"]
    v1_commit = repo.git("rev-parse", "HEAD")
    trailers = parse_trailers(repo.git("tag", "-l", "--format=%(contents)", "flows/v1"))
    assert trailers["Publisher"] == PUBLISHER and trailers["Commit"] == v1_commit
    assert trailers["Summary"] == "Plan: 4 to add, 0 to change, 0 to delete."
    assert trailers["Time"].endswith("Z")

    # the same commit again: "No changes", no tag
    code, out = flowctl(runner, repo, "apply", "--yes")
    assert code == 0 and "No changes." in out and "no tag created" in out
    assert tags(repo) == ["flows/v1"]

    # change one flow: the plan shows exactly that change
    repo.write("flows/greet.yaml", greet_flow("v2"))
    repo.commit("greet v2")
    plan = flowctl_json(runner, repo, "plan")
    assert plan["summary"] == {"add": 0, "change": 1, "delete": 0}
    assert plan["runner"] == {"url": runner.url, "version": 1, "hash": load_ref(ws, "flows/v1").content_hash,
                              "tag": "flows/v1"}  # fmt: skip
    (change,) = plan["changes"]
    assert (change["kind"], change["name"], change["action"]) == ("flow", "greet", "update")
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [
        ("steps[hello].message", "v1: started", "v2: started"),
        ("steps[bye].message", "v1: finished", "v2: finished"),
    ]
    code, out = flowctl(runner, repo, "plan", "--detailed-exitcode")
    assert code == 2 and "Plan: 0 to add, 1 to change, 0 to delete." in out

    # apply the saved plan → flows/v2
    plan_file = tmp_path / "plan.json"
    code, out = flowctl(runner, repo, "plan", "--out", str(plan_file))
    assert code == 0, out
    code, out = flowctl(runner, repo, "apply", str(plan_file))
    assert code == 0, out
    assert "Applied: runner version 2 (was 1), tagged flows/v2." in out
    assert tags(repo) == ["flows/v1", "flows/v2"]

    # a run starts on v2 and waits on its human task
    started = client.send_events({"type": "record_created", "object": "contact",
                                  "record": {"id": "c-2", "first_name": "Bo"}, "idempotency_key": "c-2"})  # fmt: skip
    (waiting_run,) = started["runs"]
    assert client.run(waiting_run)["status"] == "waiting"
    assert client.inflight() == {"greet": {"2": 1}}

    # rollback → flows/v3, content of flows/v1, read from git
    rolled = flowctl_json(runner, repo, "rollback", "--yes")
    assert (rolled["action"], rolled["tag"], rolled["version"], rolled["previous_version"]) == ("rollback", "flows/v3", 3, 2)
    assert rolled["summary"] == f"rollback to flows/v1 by {PUBLISHER}"
    assert rolled["plan"]["changes"][0]["inflight"] == {"2": 1}
    assert tags(repo) == ["flows/v1", "flows/v2", "flows/v3"]
    assert load_ref(ws, "flows/v3").content_hash == load_ref(ws, "flows/v1").content_hash
    assert repo.git("rev-parse", "flows/v3^{commit}") == v1_commit
    code, out = flowctl(runner, repo, "diff", "flows/v1", "flows/v3", "--exit-code")
    assert code == 0 and "No differences" in out
    assert client.get_bundle()["hash"] == load_ref(ws, "flows/v1").content_hash
    (audit,) = client.audit(action="bundle.rollback")
    assert audit["detail"]["meta"]["summary"] == f"rollback to flows/v1 by {PUBLISHER}"
    assert audit["detail"]["meta"]["tag"] == "flows/v3"

    # the waiting run finishes on v2; a new trigger runs v1's logic
    (task,) = client.tasks(status="open")
    client.complete_task(task["id"], "done", by="li.lei")
    wait_for(lambda: client.run(waiting_run)["status"] == "succeeded", "the v2 run to finish")
    assert client.run(waiting_run)["version"] == 2
    assert timeline(client, "c-2") == ["v2: started", "task created: Call Bo", "v2: finished"]
    fresh = client.send_events({"type": "record_created", "object": "contact",
                                "record": {"id": "c-3", "first_name": "Cy"}, "idempotency_key": "c-3"})  # fmt: skip
    assert client.run(fresh["runs"][0])["version"] == 3
    assert timeline(client, "c-3")[0] == "v1: started"

    # history marks the live publish
    history = flowctl_json(runner, repo, "history")
    assert history["current"] == "flows/v3" and history["drift"] is False
    entries = history["entries"]
    assert [(e["tag"], e["action"], e["current"]) for e in entries] == [
        ("flows/v3", "rollback", True), ("flows/v2", "apply", False), ("flows/v1", "apply", False),
    ]  # fmt: skip
    assert entries[0]["rollback_to"] == "flows/v1" and entries[0]["publisher"] == PUBLISHER
    code, out = flowctl(runner, repo, "history")
    assert code == 0 and "→" in out and "The runner (version 3) runs flows/v3." in out

    # rollback again: the publish before the live one whose content differs is flows/v2
    again = flowctl_json(runner, repo, "rollback", "--yes")
    assert (again["tag"], again["summary"]) == ("flows/v4", f"rollback to flows/v2 by {PUBLISHER}")
    # rolling back to what already runs changes nothing
    same = flowctl_json(runner, repo, "rollback", "--to", "2", "--yes")
    assert same["status"] == "no_changes" and tags(repo)[-1] == "flows/v4"


def test_stale_plans_are_refused_and_tags_are_pushed(runner: Runner, repo: Repo, tmp_path: Path) -> None:
    assert flowctl_json(runner, repo, "apply", "--yes")["tag"] == "flows/v1"
    repo.write("flows/greet.yaml", greet_flow("v2"))
    repo.commit("greet v2")
    plan_file = tmp_path / "plan.json"
    assert flowctl(runner, repo, "plan", "--out", str(plan_file))[0] == 0

    # A colleague publishes from a clone in the meantime; the clone pushes its tag to origin.
    clone = _clone(repo, tmp_path / "colleague", "Bob Builder", "bob@example.com")
    clone.write("templates/reminder.yaml", "kind: template\nname: reminder\nchannel: sms\nbody: Hi\n")
    clone.commit("reminder")
    pushed = flowctl_json(runner, clone, "apply", "--yes")
    assert (pushed["tag"], pushed["pushed_to"], pushed["publisher"]) == ("flows/v2", "origin", "Bob Builder <bob@example.com>")
    assert "flows/v2" in tags(repo)  # arrived in origin

    code, out = flowctl(runner, repo, "apply", str(plan_file))
    assert code == 1
    assert "stale plan: it was made against runner version 1, but the runner is now at version 2" in out
    assert "flowctl plan --out plan.json" in out

    # HEAD moved since the plan was made
    assert flowctl(runner, repo, "plan", "--out", str(plan_file))[0] == 0
    repo.write("flows/greet.yaml", greet_flow("v3"))
    repo.commit("greet v3")
    code, out = flowctl(runner, repo, "apply", str(plan_file))
    assert code == 1 and "stale plan: it was made for commit" in out

    # an offline plan is not bound to the runner
    assert flowctl(runner, repo, "plan", "--offline", "--out", str(plan_file))[0] == 0
    code, out = flowctl(runner, repo, "apply", str(plan_file))
    assert code == 1 and "made with --offline" in out

    # the tag number follows origin's tags: the next publish here is flows/v3
    assert flowctl_json(runner, repo, "apply", "--yes")["tag"] == "flows/v3"


def test_two_concurrent_applies_one_wins(runner: Runner, repo: Repo, tmp_path: Path) -> None:
    assert flowctl_json(runner, repo, "apply", "--yes")["tag"] == "flows/v1"
    a = _clone(repo, tmp_path / "a", "Ann", "ann@example.com")
    b = _clone(repo, tmp_path / "b", "Ben", "ben@example.com")
    a.write("flows/greet.yaml", greet_flow("from-a"))
    a.commit("a")
    b.write("flows/greet.yaml", greet_flow("from-b"))
    b.commit("b")

    # Library level, deterministic: both read version 1, then both publish.
    prep_a = prepare_apply(Workspace.locate(a.root), runner.client())
    prep_b = prepare_apply(Workspace.locate(b.root), runner.client())
    assert prep_a.live.version == prep_b.live.version == 1
    assert execute_apply(prep_a, runner.client()).tag == "flows/v2"
    with pytest.raises(PublishRefused) as info:
        execute_apply(prep_b, runner.client())
    assert "another apply or rollback won the race; nothing was published by this one" in info.value.message
    assert "from 1 to 2" in info.value.message
    assert "flows/v3" not in tags(b) and runner.client().get_bundle()["version"] == 2

    # CLI level, two processes at once with plans made against the same version: exactly one wins.
    for clone, who in ((a, "a2"), (b, "b2")):
        clone.git("pull", "--quiet", "--rebase=false", "-X", "theirs", "origin", "main")
        clone.write("flows/greet.yaml", greet_flow(who))
        clone.commit(who)
        assert flowctl(runner, clone, "plan", "--out", str(clone.root / "plan.json"))[0] == 0
    env = {**os.environ, **runner.env}
    procs = [subprocess.Popen([str(FLOWCTL), "apply", "plan.json", "-C", str(c.root)], cwd=c.root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in (a, b)]  # fmt: skip
    outcomes = [(p.wait(timeout=60), p.stdout.read() if p.stdout else "") for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 1], outcomes
    (loser,) = [out for code, out in outcomes if code == 1]
    assert "stale plan" in loser or "won the race" in loser
    assert runner.client().get_bundle()["version"] == 3


def test_drift_is_reported_and_rollback_then_needs_a_target(runner: Runner, repo: Repo) -> None:
    assert flowctl_json(runner, repo, "apply", "--yes")["tag"] == "flows/v1"
    # Someone publishes straight to the runner API, outside flowctl apply.
    ws = Workspace.locate(repo.root)
    changed = load_ref(ws, "HEAD").bundle.model_copy(deep=True)
    changed.resources["flow"]["greet"]["description"] = "edited on the runner"
    runner.client().put_bundle(changed, 1, {"summary": "hand edit"})
    history = flowctl_json(runner, repo, "history")
    assert history["drift"] is True and history["current"] is None
    code, out = flowctl(runner, repo, "history")
    assert "drift: the runner's live bundle (version 2) matches no publish tag" in out
    code, out = flowctl(runner, repo, "rollback", "--yes")
    assert code == 1 and "(drift)" in out and "--to TAG" in out
    back = flowctl_json(runner, repo, "rollback", "--to", "flows/v1", "--yes")
    assert back["tag"] == "flows/v2" and back["version"] == 3
    assert flowctl_json(runner, repo, "history")["current"] == "flows/v2"


def test_apply_needs_confirmation_without_yes(runner: Runner, repo: Repo) -> None:
    code, out = flowctl(runner, repo, "apply")
    assert code == 1 and "pass --yes" in out
    assert tags(repo) == []
    assert Git(repo.root).tags("flows/v") == []


def _clone(origin: Repo, path: Path, user: str, email: str) -> Repo:
    origin.git("clone", "--quiet", str(origin.root), str(path))
    clone = Repo(path)
    clone.git("config", "user.name", user)
    clone.git("config", "user.email", email)
    clone.git("config", "tag.gpgsign", "false")
    clone.git("config", "commit.gpgsign", "false")
    return clone


def test_project_below_the_repository_root(runner: Runner, tmp_path: Path) -> None:
    mono = init_repo(tmp_path / "mono")
    mono.write("README.md", "monorepo\n")
    crm = Repo(mono.root / "crm")
    seed_project(crm)
    mono.commit("flows in crm/")
    result = flowctl_json(runner, crm, "apply", "--yes")
    assert result["tag"] == "flows/v1"
    crm.write("flows/greet.yaml", greet_flow("v2"))
    code, out = flowctl(runner, crm, "apply", "--yes")
    assert code == 1 and "uncommitted changes: crm/flows/greet.yaml (modified)" in out
