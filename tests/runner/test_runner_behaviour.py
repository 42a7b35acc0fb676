"""How the runner behaves around the engine: timers, failures that stay in one step, forwarding, retention."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from connectors.provider_fakes import FakeHttp, Reply

from flowctl.errors import ConfigError, RunnerError
from flowctl.runner.client import RunnerClient, is_loopback, resolve_token, resolve_url
from flowctl.runner.config import load_runner_config
from flowctl.runner.writer import Writer
from flowctl.store.sqlite import SqliteStore

from .conftest import Api
from .world import CONTACT, TOUCH, WELCOME, WELCOME_TEMPLATE, bundle, contact_created, custom


def apply(api: Api, *resources: dict[str, Any]) -> None:
    r = api.put("/v1/bundle", {"bundle": bundle(*resources).model_dump(mode="json"), "expected_version": 0})
    assert r.status_code == 200, r.text


def flow(name: str, steps: list[dict[str, Any]], trigger: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "kind": "flow",
        "name": name,
        "object": "contact",
        "trigger": trigger or {"type": "event", "name": name},
        "steps": steps,
    }


def test_a_date_trigger_starts_its_run_when_the_date_comes(api: Api) -> None:
    apply(
        api,
        CONTACT,
        flow(
            "renewal",
            [{"id": "remind", "action": "log", "message": "renew now"}],
            trigger={"type": "date", "field": "renewal_at"},
        ),
    )
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.2)
    api.post("/v1/events", contact_created("c-1", renewal_at=when.isoformat()))
    assert api.get("/v1/runs").json()["runs"] == []
    [run] = api.wait_for(lambda: api.get("/v1/runs", params={"flow": "renewal"}).json()["runs"], timeout=10)
    assert api.wait_for(lambda: api.run_status(run["id"]) == "succeeded")
    started = dt.datetime.fromisoformat(run["started_at"])
    assert when <= started < when + dt.timedelta(seconds=3)


def test_a_hanging_webhook_fails_its_step_only_and_the_runner_keeps_answering(api: Api) -> None:
    hook = FakeHttp().start()
    try:
        hook.script("/slow", [Reply(200, {}, delay=4)])
        apply(
            api,
            CONTACT,
            TOUCH,
            flow("slow", [{"id": "call", "action": "webhook", "url": f"{hook.url}/slow", "timeout": "1s"}]),
        )
        api.post("/v1/events", contact_created("c-1"))
        run_id = api.post("/v1/events", custom("slow", "c-1")).json()["runs"][0]
        started = time.monotonic()
        for i in range(5):
            assert api.post("/v1/events", custom("touch", "c-1")).status_code == 202, i
        assert time.monotonic() - started < 1.0  # answered while the webhook hangs
        api.wait_for(lambda: api.run_status(run_id) == "failed", timeout=10)
        detail = api.get(f"/v1/runs/{run_id}").json()
        assert detail["error_class"] == "timeout" and detail["steps"][0]["error_class"] == "timeout"
        assert len(api.get("/v1/runs", params={"flow": "touch", "status": "succeeded"}).json()["runs"]) == 5
    finally:
        hook.stop()


def test_a_template_that_fails_to_render_fails_that_step_only(api: Api) -> None:
    broken = flow(
        "broken",
        [
            {
                "id": "mail",
                "action": "send_email",
                "to": "{{ record.email }}",
                "subject": "Hi {{ record.first_name + 1 }}",
                "text": "x",
            }
        ],
    )
    apply(api, CONTACT, WELCOME_TEMPLATE, WELCOME, broken)
    api.post("/v1/events", contact_created("c-1"))
    run_id = api.post("/v1/events", custom("broken", "c-1")).json()["runs"][0]
    detail = api.wait_for(lambda: (d := api.get(f"/v1/runs/{run_id}").json())["status"] == "failed" and d)
    assert detail["steps"][0]["error_class"] == "template" and "template" in detail["steps"][0]["error"]
    assert api.post("/v1/events", contact_created("c-2")).status_code == 202
    assert api.get("/v1/health").json()["status"] == "ok"


def test_record_changes_made_by_flows_are_forwarded_to_the_crm_signed(make_api: Any) -> None:
    crm = FakeHttp().start()
    try:
        crm.script("/crm", [Reply(500, {}), Reply(200, {})])
        api = make_api(
            {"crm_webhook": {"url": f"{crm.url}/crm", "secret_env": "CRM_SECRET"}}, CRM_SECRET="k3y"
        )
        apply(api, CONTACT, TOUCH)
        api.post("/v1/events", contact_created("c-1"))
        api.post("/v1/events", custom("touch", "c-1"))
        [first, retried] = crm.wait_for("/crm", 2, timeout=10)
        assert first.key == retried.key  # the retry carries the same idempotency key
        body = retried.json()
        assert body["change"] == "updated" and body["object"] == "contact" and body["id"] == "c-1"
        assert body["changes"] == {"note": {"from": None, "to": "touched"}} and body["flow"] == "touch"
        expected = "sha256=" + hmac.new(b"k3y", retried.body, hashlib.sha256).hexdigest()
        assert retried.headers["x-flowctl-signature"] == expected
        assert len(crm.to("/crm")) == 2  # the CRM's own record_created event is not echoed back
    finally:
        crm.stop()


def test_sms_goes_through_the_configured_http_provider(make_api: Any) -> None:
    gateway = FakeHttp().start()
    try:
        gateway.script("/sms", [Reply(201, {"sid": "SM1"})])
        api = make_api(
            {
                "sms": {
                    "url": f"{gateway.url}/sms",
                    "account_env": "SMS_ACCOUNT",
                    "token_env": "SMS_TOKEN",
                    "from": "+15550100",
                }
            },
            SMS_ACCOUNT="AC1",
            SMS_TOKEN="t",
        )
        contact = {**CONTACT, "consent": {}}
        apply(
            api,
            contact,
            flow(
                "text",
                [
                    {
                        "id": "sms",
                        "action": "send_sms",
                        "to": "{{ record.phone }}",
                        "body": "Hi {{ record.first_name }}",
                    }
                ],
            ),
        )
        api.post("/v1/events", contact_created("c-1", first_name="Ada", phone="+15550199"))
        run_id = api.post("/v1/events", custom("text", "c-1")).json()["runs"][0]
        [req] = gateway.wait_for("/sms", 1)
        assert req.form() == {"To": "+15550199", "From": "+15550100", "Body": "Hi Ada"}
        assert req.key == f"{run_id}:sms:1"
        api.wait_for(lambda: api.run_status(run_id) == "succeeded")
        assert api.get(f"/v1/runs/{run_id}").json()["messages"][0]["provider_id"] == "SM1"
    finally:
        gateway.stop()


def test_retention_purges_finished_runs_and_keeps_the_rest(make_api: Any) -> None:
    api = make_api({"retention": "1s"})
    apply(api, CONTACT, TOUCH, flow("parked", [{"id": "sleep", "wait": {"for": "7d"}}]))
    api.post("/v1/events", contact_created("c-1"))
    done = api.post("/v1/events", custom("touch", "c-1")).json()["runs"][0]
    waiting = api.post("/v1/events", custom("parked", "c-1")).json()["runs"][0]
    time.sleep(1.2)
    counts = api.runner.purge()
    assert counts["runs"] == 1 and counts["step_attempts"] == 3
    assert api.get(f"/v1/runs/{done}").status_code == 404
    assert api.run_status(waiting) == "waiting"
    assert api.get("/v1/records/contact/c-1").json()["timeline"]  # business history stays
    assert api.get("/v1/audit", params={"action": "retention.purge"}).json()["entries"]


def test_a_failing_job_rolls_back_alone_in_its_batch(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "w.db")
    writer = Writer(store, max_batch=64)
    gate = threading.Event()
    writer.start()
    blocker = writer.submit(gate.wait)  # holds the thread so the next jobs share one batch

    def fail() -> None:
        store.kv_put("t", "bad", 1)
        raise RuntimeError("boom")

    futures = [writer.submit(functools.partial(store.kv_put, "t", str(i), i)) for i in range(3)]
    bad = writer.submit(fail)
    futures.append(writer.submit(lambda: store.kv_put("t", "3", 3)))
    gate.set()
    blocker.result(5)
    for f in futures:
        f.result(5)
    with pytest.raises(RuntimeError, match="boom"):
        bad.result(5)
    assert writer.stats.max_batch >= 5 and writer.stats.failed_jobs == 1
    assert [store.kv_get("t", str(i)) for i in range(4)] == [0, 1, 2, 3] and store.kv_get("t", "bad") is None
    writer.stop()
    store.close()


def test_runner_yaml_errors_name_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "runner.yaml"
    path.write_text("retention: 90d\nemail:\n  smtp: {host: 127.0.0.1, prot: 25}\n")
    with pytest.raises(ConfigError) as err:
        load_runner_config(path)
    assert (
        str(err.value).startswith(f"{path}:3:")
        and "prot" in str(err.value)
        and "port" in (err.value.hint or "")
    )
    path.write_text("retention: soon\n")
    with pytest.raises(ConfigError, match=r":1:12: .*duration"):
        load_runner_config(path)
    path.write_text("email:\n  smtp: {port: 2525, password_env: SMTP_PASSWORD}\n")
    config = load_runner_config(path)
    assert config.email.smtp is not None and config.email.smtp.port == 2525
    assert config.missing_env({}) == ["SMTP_PASSWORD"]


def test_the_client_finds_the_runner_and_its_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWCTL_RUNNER_URL", raising=False)
    monkeypatch.delenv("FLOWCTL_TOKEN", raising=False)
    project = tmp_path / "repo"
    (project / "flows").mkdir(parents=True)
    (project / "flowctl.yaml").write_text('runner: {url: "http://127.0.0.1:9911/"}\n')
    assert resolve_url(None, start=project / "flows") == "http://127.0.0.1:9911"
    monkeypatch.setenv("FLOWCTL_RUNNER_URL", "http://127.0.0.1:7000")
    assert resolve_url(None, start=project) == "http://127.0.0.1:7000"
    assert resolve_url("http://10.0.0.5:8787", start=project) == "http://10.0.0.5:8787"
    (project / ".flowctl").mkdir()
    (project / ".flowctl" / "admin.token").write_text("fct_a_from_file\n")
    assert resolve_token(None, "http://127.0.0.1:7000", start=project / "flows") == "fct_a_from_file"
    assert resolve_token(None, "http://runner.internal:8787", start=project) is None  # never sent off-host
    monkeypatch.setenv("FLOWCTL_TOKEN", "fct_o_env")
    assert resolve_token(None, "http://127.0.0.1:7000", start=project) == "fct_o_env"
    assert resolve_token("fct_v_flag", "http://127.0.0.1:7000", start=project) == "fct_v_flag"
    assert (
        is_loopback("http://localhost:1")
        and is_loopback("http://[::1]:1")
        and not is_loopback("http://10.1.1.1")
    )


def test_client_errors_are_one_clear_message(api: Api) -> None:
    with RunnerClient("http://127.0.0.1:9", "x", timeout=2) as down:
        with pytest.raises(RunnerError, match="cannot reach the runner"):
            down.health()
    client = RunnerClient("http://testserver", api.admin, transport=api.client._transport)
    with pytest.raises(RunnerError, match="no run 'run-9'"):
        client.run("run-9")
    with pytest.raises(RunnerError, match=r"body\.type"):
        client.send_events({"object": "contact"})
    assert client.get_bundle()["version"] == 0
    assert json.loads(json.dumps(client.inflight())) == {}


def test_the_timer_loop_wakes_at_the_due_time_and_backs_off_on_failure() -> None:
    from flowctl.runner.scheduler import TimerLoop

    due: list[dt.datetime] = []
    fired: list[dt.datetime] = []
    failures = {"left": 0}

    def fire(now: dt.datetime) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("engine failed")
        fired.append(now)
        due[:] = [d for d in due if d > now]

    loop = TimerLoop(fire, lambda: min(due) if due else None, max_sleep=30)
    loop.start()
    try:
        time.sleep(0.1)
        assert fired == []  # nothing due: the loop sleeps
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)
        due.append(when)
        loop.wake_at(when)  # what the runner does after a commit that wrote a timer
        deadline = time.monotonic() + 5
        while not fired and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fired and when <= fired[0] < when + dt.timedelta(seconds=0.5)
        failures["left"] = 1
        again = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.1)
        due.append(again)
        loop.wake_at(again)
        deadline = time.monotonic() + 5
        while len(fired) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(fired) == 2 and fired[1] >= again + dt.timedelta(
            seconds=0.9
        )  # retried after a 1 s back-off
    finally:
        loop.stop()


def test_a_failed_run_is_retried_from_its_failed_step(api: Api) -> None:
    hook = FakeHttp().start()
    try:
        hook.script("/erp", [Reply(500, {"error": "down"})])
        apply(
            api,
            CONTACT,
            flow(
                "push",
                [
                    {"id": "mark", "action": "log", "message": "start"},
                    {"id": "send", "action": "webhook", "url": f"{hook.url}/erp"},
                ],
            ),
        )
        api.post("/v1/events", contact_created("c-1"))
        run_id = api.post("/v1/events", custom("push", "c-1")).json()["runs"][0]
        api.wait_for(lambda: api.run_status(run_id) == "failed")
        assert api.post(f"/v1/runs/{run_id}/retry", token=api.token("viewer")).status_code == 403
        r = api.post(f"/v1/runs/{run_id}/retry", token=api.token("operator"))
        assert r.status_code == 200
        api.wait_for(lambda: api.run_status(run_id) == "succeeded")
        detail = api.get(f"/v1/runs/{run_id}").json()
        assert (detail["steps"][0]["step"], detail["steps"][0]["status"]) == ("mark", "succeeded")
        assert [s["status"] for s in detail["steps"] if s["step"] == "send"][-1] == "succeeded"
        assert len([s for s in detail["steps"] if s["step"] == "mark"]) == 1  # not re-run
        assert len(hook.to("/erp")) == 2
        assert api.post(f"/v1/runs/{run_id}/retry").status_code == 409  # nothing left to retry
    finally:
        hook.stop()
