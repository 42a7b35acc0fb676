"""End to end: `flowctl runner serve` as a subprocess, a real SMTP server (aiosmtpd) and a real HTTP server.

Covers the issue's acceptance bar: one email over SMTP; kill -9 during a wait
and during a send, restart, exactly one message per step; duplicate events
start one run; a webhook failing 3 times creates a compensation task whose
completion finishes the run `succeeded_compensated`; 401/403; SIGTERM.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import httpx
import pytest
from connectors.provider_fakes import FakeHttp, FakeSmtp, Reply
from runner.world import contact_created, custom, standard_bundle

from flowctl.resources.bundle import Bundle
from flowctl.runner.client import RunnerClient

from .conftest import RunnerProcess

pytestmark = pytest.mark.e2e


def apply(proc: RunnerProcess, bundle: Bundle, expected: int = 0) -> int:
    with RunnerClient(proc.url, proc.token) as client:
        return int(client.put_bundle(bundle, expected, {"tag": "flows/v1", "publisher": "e2e"})["version"])


def wait_runs(proc: RunnerProcess, done: Any, timeout: float = 20.0, **filters: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        with proc.client() as c:
            runs = c.get("/v1/runs", params={"limit": 1000, **filters}).json()["runs"]
        if done(runs):
            return runs
        time.sleep(0.1)
    raise AssertionError(
        f"runs did not reach the expected state: {[(r['id'], r['status']) for r in runs]}\n"
        f"{proc.log()[-3000:]}"
    )


def all_succeeded(count: int) -> Any:
    return lambda runs: len(runs) == count and all(r["status"] == "succeeded" for r in runs)


# runner.yaml `durability`: both settings must survive kill -9 (the WAL is in the OS page cache,
# which outlives the process); they differ only on an OS crash or power loss, which no test here makes.
DURABILITY = pytest.mark.parametrize("durability", ["full", "normal"])


def started_with(runner_for: Any, durability: str) -> RunnerProcess:
    proc = runner_for({"durability": durability}).start()
    assert f"durability   {durability}:" in proc.log()  # the start banner says which
    return proc


def test_the_welcome_flow_sends_exactly_one_email_over_smtp(runner_for: Any, smtp: FakeSmtp) -> None:
    proc = runner_for().start()
    apply(proc, standard_bundle())
    with proc.client() as c:
        r = c.post("/v1/events", json=contact_created("c-1", first_name="Ada", key="crm-c-1"))
        assert r.status_code == 202, r.text
    [run] = wait_runs(proc, all_succeeded(1), flow="welcome")
    [mail] = smtp.wait_for(1)
    time.sleep(0.3)
    assert len(smtp.messages) == 1
    assert mail.message["Subject"] == "Welcome, Ada!" and mail.rcpt_tos == ["c-1@example.com"]
    assert mail.message["Message-ID"] == f"<{run['id']}.welcome.1@flowctl>"
    assert mail.message["From"] == "Acme <noreply@acme.example>"
    assert proc.terminate() == 0
    assert "flowctl runner stopped cleanly" in proc.log()


def test_kill_9_during_a_wait_then_restart_fires_the_overdue_timers_once(
    runner_for: Any, smtp: FakeSmtp
) -> None:
    proc = runner_for().start()
    apply(proc, standard_bundle())
    ids = [f"c-{i}" for i in range(5)]
    with proc.client() as c:
        c.post(
            "/v1/events",
            json=[
                {
                    "type": "record_created",
                    "object": "contact",
                    "record": {"id": cid, "first_name": cid, "email": f"{cid}@x.example"},
                }
                for cid in ids
            ],
        )
        c.post(
            "/v1/events",
            json=[
                {"type": "record_updated", "object": "contact", "record": {"id": cid, "stage": "customer"}}
                for cid in ids
            ],
        )
    wait_runs(
        proc, lambda runs: len(runs) == 5 and all(r["status"] == "waiting" for r in runs), flow="follow-up"
    )
    wait_runs(proc, all_succeeded(5), flow="welcome")  # no email in flight: this test is about the wait
    proc.kill9()
    time.sleep(2.5)  # every 2s wait falls due while the runner is down
    proc.start()
    runs = wait_runs(proc, all_succeeded(5), flow="follow-up")
    smtp.wait_for(10)  # 5 welcome + 5 follow-up
    time.sleep(0.5)
    follow = [m for m in smtp.messages if m.message["Subject"] == "How is it going?"]
    assert sorted(m.message_id for m in follow) == sorted(f"<{r['id']}.check_in.1@flowctl>" for r in runs)
    assert len(smtp.messages) == len(smtp.unique()) == 10  # nothing re-sent, nothing lost


@DURABILITY
def test_kill_9_during_a_send_resends_with_the_same_message_id(
    runner_for: Any, smtp: FakeSmtp, durability: str
) -> None:
    proc = started_with(runner_for, durability)
    apply(proc, standard_bundle())
    smtp.delay = 30.0  # the server takes the message, then holds the answer: the runner is mid-send
    with proc.client() as c:
        c.post("/v1/events", json=contact_created("c-1"))
    [first] = smtp.wait_for(1)
    proc.kill9()
    smtp.delay = 0.0
    proc.start()
    [run] = wait_runs(proc, all_succeeded(1), flow="welcome")
    smtp.wait_for(2)
    assert [m.message_id for m in smtp.messages] == [first.message_id] * 2  # re-sent, same Message-ID
    assert list(smtp.unique()) == [f"<{run['id']}.welcome.1@flowctl>"]  # the recipient sees one email
    with proc.client() as c:
        detail = c.get(f"/v1/runs/{run['id']}").json()
    assert [(m["status"], m["attempt"]) for m in detail["messages"]] == [("sent", 1)]


@DURABILITY
def test_kill_9_at_random_moments_under_load_loses_nothing_and_sends_each_email_once(
    runner_for: Any, smtp: FakeSmtp, durability: str
) -> None:
    proc = started_with(runner_for, durability)
    apply(proc, standard_bundle())
    contacts = [f"c-{i}" for i in range(60)]
    accepted: set[str] = set()
    rng = random.Random(7)

    def post_all(stop: threading.Event) -> None:
        # The CRM's side: post each event with its idempotency key until the runner accepts it.
        for cid in contacts:
            while not stop.is_set():
                try:
                    r = httpx.post(
                        f"{proc.url}/v1/events",
                        json=contact_created(cid, key=f"crm-{cid}"),
                        headers={"Authorization": f"Bearer {proc.token}"},
                        timeout=5,
                    )
                    if r.status_code == 202:
                        accepted.add(cid)
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)

    stop = threading.Event()
    poster = threading.Thread(target=post_all, args=(stop,))
    poster.start()
    for _ in range(2):
        time.sleep(rng.uniform(0.2, 0.8))
        proc.kill9()
        time.sleep(0.2)
        proc.start()
    poster.join(60)
    stop.set()
    assert accepted == set(contacts)
    runs = wait_runs(proc, all_succeeded(60), timeout=40, flow="welcome")
    smtp.wait_for(60)
    time.sleep(0.5)
    assert sorted(smtp.unique()) == sorted(f"<{r['id']}.welcome.1@flowctl>" for r in runs)
    assert {r["record_id"] for r in runs} == set(contacts)  # one run per contact: duplicates started nothing


def test_duplicate_events_start_one_run_even_when_posted_concurrently(runner_for: Any) -> None:
    proc = runner_for().start()
    apply(proc, standard_bundle())
    with proc.client() as c:
        c.post("/v1/events", json=contact_created("c-1"))
    answers: list[dict[str, Any]] = []

    def post() -> None:
        with proc.client() as c:
            answers.append(
                c.post("/v1/events", json={**custom("park", "c-1"), "idempotency_key": "crm-77"}).json()
            )

    threads = [threading.Thread(target=post) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({a["event_id"] for a in answers}) == 1
    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * 11
    assert len(wait_runs(proc, lambda runs: len(runs) == 1, flow="parked")) == 1


def test_a_webhook_failing_three_times_is_compensated_by_a_person(runner_for: Any, http: FakeHttp) -> None:
    http.script("/erp", [Reply(503, {"error": "down"})] * 3)
    proc = runner_for().start()
    apply(proc, standard_bundle(f"{http.url}/erp"))
    with proc.client() as c:
        c.post("/v1/events", json=contact_created("c-1"))
        run_id = c.post("/v1/events", json=custom("erp.sync", "c-1")).json()["runs"][0]
    wait_runs(
        proc,
        lambda runs: runs and runs[0]["status"] == "waiting" and runs[0]["waiting_for"] == "task",
        flow="erp-sync",
    )
    attempts = http.to("/erp")
    assert len(attempts) == 3
    assert [r.key for r in attempts] == [f"{run_id}:push:{n}" for n in (1, 2, 3)]
    assert attempts[0].json() == {"id": "c-1", "email": "c-1@example.com"}
    operator = proc.cli("runner", "token", "create", "--role", "operator").stdout.strip()
    listed = proc.cli("tasks", "list", "--kind", "compensation", "--format", "json", token=operator)
    [task] = json.loads(listed.stdout)["tasks"]
    assert "push" in task["subject"] and "HTTP 503" in (task["error"] or "")
    done = proc.cli(
        "tasks", "complete", task["id"], "--decision", "done", "-m", "pushed by hand", token=operator
    )
    assert done.returncode == 0, done.stderr
    wait_runs(proc, lambda runs: runs and runs[0]["status"] == "succeeded_compensated", flow="erp-sync")
    report = json.loads(proc.cli("report", "failures", "--format", "json").stdout)
    assert report["failures"][0]["error_class"] == "HTTP 503" and report["failures"][0]["attempts"] == 3
    assert report["compensation"]["done"] == 1 and report["retries"]["steps_retried"] == 1


def test_tokens_and_roles_over_http(runner_for: Any) -> None:
    proc = runner_for().start()
    assert httpx.get(f"{proc.url}/v1/runs").status_code == 401
    viewer = proc.cli("runner", "token", "create", "--role", "viewer").stdout.strip()
    operator = proc.cli("runner", "token", "create", "--role", "operator").stdout.strip()
    body = {"bundle": standard_bundle().model_dump(mode="json"), "expected_version": 0}
    with proc.client(viewer) as c:
        assert c.get("/v1/runs").status_code == 200
        assert c.post("/v1/events", json=contact_created("c-1")).status_code == 403
    with proc.client(operator) as c:
        assert c.post("/v1/events", json=contact_created("c-1")).status_code == 202
        assert c.put("/v1/bundle", json=body).status_code == 403
    with proc.client() as c:
        assert c.put("/v1/bundle", json=body).status_code == 200
    log = proc.log()
    for secret in (viewer, operator, proc.token):
        assert secret not in log


def test_the_operator_cli_against_a_live_runner(runner_for: Any, smtp: FakeSmtp) -> None:
    proc = runner_for().start()
    apply(proc, standard_bundle())
    events = proc.base / "events.json"
    events.write_text(
        json.dumps(
            [
                contact_created("c-1", first_name="Ada", key="k-1"),
                {**custom("discount.requested", "c-1"), "idempotency_key": "k-2"},
            ]
        )
    )
    sent = proc.cli("events", "send", str(events))
    assert sent.returncode == 0, sent.stderr
    assert "→ evt-1: run-1" in sent.stdout and "→ evt-2: run-2" in sent.stdout
    again = proc.cli("events", "send", str(events))
    assert again.stdout.count("duplicate of evt-") == 2
    wait_runs(proc, all_succeeded(1), flow="welcome")
    runs = proc.cli("runs", "list")
    assert runs.returncode == 0 and "run-1" in runs.stdout and "welcome" in runs.stdout
    show = proc.cli("runs", "show", "run-1")
    assert "welcome" in show.stdout and "onboarding" in show.stdout and "run-1:welcome:1" in show.stdout
    tasks = proc.cli("tasks", "list")
    assert "approval" in tasks.stdout and "Discount for Ada" in tasks.stdout
    task_id = json.loads(proc.cli("tasks", "list", "--kind", "approval", "--format", "json").stdout)["tasks"][
        0
    ]["id"]
    assert (
        proc.cli("tasks", "complete", task_id, "--decision", "approved", "--by", "wang.fang").returncode == 0
    )
    wait_runs(proc, all_succeeded(1), flow="discount-approval")
    stats = json.loads(proc.cli("stats", "--format", "json").stdout)
    assert {f["flow"]: f["succeeded"] for f in stats["flows"]} == {"welcome": 1, "discount-approval": 1}
    assert "welcome" in proc.cli("stats").stdout
    record = proc.cli("records", "show", "contact", "c-1")
    assert "email sent: Welcome, Ada!" in record.stdout
    bad = proc.cli("runs", "show", "run-404")
    assert bad.returncode == 1 and "no run 'run-404'" in bad.stderr and "Traceback" not in bad.stderr
    manual = proc.cli("run", "parked", "--record", "c-1")
    assert manual.returncode == 0 and "started run-" in manual.stdout
    parked = manual.stdout.split("started ", 1)[1].split(" ", 1)[0]
    cancelled = proc.cli("runs", "cancel", parked)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    down = subprocess_cli_unreachable(proc)
    assert down.returncode == 1 and "cannot reach the runner" in down.stderr


def subprocess_cli_unreachable(proc: RunnerProcess) -> Any:
    import subprocess

    from .conftest import FLOWCTL

    return subprocess.run(
        [FLOWCTL, "runs", "list", "--runner", "http://127.0.0.1:9"],
        cwd=proc.base,
        capture_output=True,
        text=True,
        timeout=30,
    )
