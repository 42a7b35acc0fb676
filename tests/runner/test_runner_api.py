"""The runner's HTTP API in-process: real threads, a real SQLite file, the real engine."""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from flowctl.resources.bundle import Bundle

from .conftest import Api
from .world import bundle, contact_created, custom, standard_bundle


def apply(api: Api, b: Bundle | None = None, expected: int = 0, **meta: Any) -> Any:
    b = b or standard_bundle()
    return api.put(
        "/v1/bundle", {"bundle": b.model_dump(mode="json"), "expected_version": expected, "meta": meta}
    )


def database_bytes(api: Api) -> bytes:
    """The database file and its WAL (recent commits live in the WAL until a checkpoint)."""
    folder = api.base / ".flowctl"
    return b"".join(p.read_bytes() for p in (folder / "runner.db", folder / "runner.db-wal") if p.exists())


# --------------------------------------------------------------------------- first start, auth


def test_first_start_writes_an_admin_token_0600_and_stores_only_its_hash(api: Api) -> None:
    path = api.base / ".flowctl" / "admin.token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert api.admin.encode() not in database_bytes(api)
    assert api.get("/v1/runs").status_code == 200


def test_requests_without_a_token_or_with_a_weak_role_are_refused(api: Api) -> None:
    assert api.client.get("/v1/health").status_code == 200  # liveness needs no token
    r = api.client.get("/v1/runs")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["code"] == "unauthorized"
    assert api.get("/v1/runs", token="fct_a_not-a-real-token").status_code == 401
    viewer, operator = api.token("viewer"), api.token("operator")
    assert api.get("/v1/runs", token=viewer).status_code == 200
    r = api.post("/v1/events", contact_created("c-1"), token=viewer)
    assert r.status_code == 403 and "operator" in r.json()["error"]
    assert api.post("/v1/events", contact_created("c-1"), token=operator).status_code == 202
    r = api.put("/v1/bundle", {"bundle": {}, "expected_version": 0}, token=operator)
    assert r.status_code == 403 and "admin" in r.json()["error"]
    assert apply(api).status_code == 200


def test_a_revoked_token_is_refused(api: Api) -> None:
    token = api.token("viewer")
    info = api.runner.reader().tokens()[-1]
    api.runner.writer.call(lambda: api.runner.store.revoke_token(info.id, info.created_at))
    assert api.get("/v1/runs", token=token).status_code == 401


# --------------------------------------------------------------------------- bundles


def test_bundle_versions_are_kept_and_expected_version_guards_applies(api: Api) -> None:
    empty = api.get("/v1/bundle").json()
    assert empty == {"version": 0, "hash": None, "bundle": None, "applied_at": None, "meta": None}
    first = standard_bundle()
    r = apply(api, first, tag="flows/v1", publisher="ana", commit="abc123", summary="first")
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["hash"] == first.content_hash()
    live = api.get("/v1/bundle").json()
    assert live["version"] == 1 and live["hash"] == first.content_hash()
    assert Bundle.model_validate(live["bundle"]).content_hash() == first.content_hash()
    assert live["meta"]["tag"] == "flows/v1" and live["meta"]["action"] == "apply"
    stale = apply(api, first, expected=0)
    assert stale.status_code == 409
    assert stale.json()["live_version"] == 1 and stale.json()["field"] == "expected_version"
    assert apply(api, first, expected=1, action="rollback").json()["version"] == 2
    versions = api.get("/v1/bundle/versions").json()
    assert versions["live"] == 2 and [v["version"] for v in versions["versions"]] == [1, 2]
    assert versions["versions"][1]["meta"]["action"] == "rollback"
    assert api.get("/v1/bundle/versions/1").json()["hash"] == first.content_hash()
    assert api.get("/v1/bundle/versions/9").status_code == 404
    audit = api.get("/v1/audit").json()["entries"]
    assert [e["action"] for e in audit[:2]] == ["bundle.rollback", "bundle.apply"]
    assert audit[1]["actor"] == "admin (first start)" and audit[1]["target"] == "v1"


def test_an_invalid_bundle_is_refused_naming_the_resource_and_field(api: Api) -> None:
    bad = standard_bundle().model_dump(mode="json")
    bad["resources"]["flow"]["welcome"]["steps"][0]["retry"] = {"attempts": "many"}
    r = api.put("/v1/bundle", {"bundle": bad, "expected_version": 0})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "bundle_invalid"
    assert body["problems"][0]["resource"] == "flow/welcome"
    assert "retry" in body["problems"][0]["field"] and "attempts" in body["problems"][0]["field"]
    missing_template = standard_bundle().model_dump(mode="json")
    missing_template["resources"]["template"] = {}
    r = api.put("/v1/bundle", {"bundle": missing_template, "expected_version": 0})
    assert r.status_code == 422 and "welcome_email" in r.json()["error"]
    assert r.json()["problems"][0]["resource"] == "flow/welcome"
    assert api.get("/v1/bundle").json()["version"] == 0


def test_inflight_counts_open_runs_per_flow_and_version(api: Api) -> None:
    apply(api)
    welcome_runs = [api.post("/v1/events", contact_created(f"c-{i}")).json()["runs"][0] for i in range(3)]
    # Each welcome run stays open (running) until the outbox worker has delivered its email and
    # reported back, which happens after the event's answer and lags under load: wait for them,
    # so that only the parked runs are in flight when they are counted.
    api.wait_for(lambda: all(api.run_status(run_id) == "succeeded" for run_id in welcome_runs))
    api.post("/v1/events", [custom("park", f"c-{i}") for i in range(3)])
    apply(api, expected=1)
    api.post("/v1/events", custom("park", "c-0"))
    assert api.get("/v1/bundle/inflight").json() == {"flows": {"parked": {"1": 3, "2": 1}}}


# --------------------------------------------------------------------------- events


def test_an_event_starts_runs_and_a_repeated_key_starts_nothing(api: Api) -> None:
    apply(api)
    r = api.post("/v1/events", contact_created("c-1", key="crm-1"))
    assert r.status_code == 202
    first = r.json()
    assert first["duplicate"] is False and first["runs"] == ["run-1"] and first["event_id"].startswith("evt-")
    again = api.post("/v1/events", contact_created("c-1", key="crm-1")).json()
    assert again == {"event_id": first["event_id"], "runs": ["run-1"], "duplicate": True, "suppressed": []}
    assert len(api.get("/v1/runs").json()["runs"]) == 1


def test_a_list_of_events_is_answered_with_a_list_in_order(api: Api) -> None:
    apply(api)
    answers = api.post(
        "/v1/events",
        [
            contact_created("c-1"),
            custom("nothing.listens", "c-1"),
            contact_created("c-2", email_opt_out=True),
        ],
    ).json()
    assert [len(a["runs"]) for a in answers] == [1, 0, 1]


def test_bad_events_get_422_naming_the_field_and_the_runner_keeps_serving(api: Api) -> None:
    apply(api)
    cases = [
        ({"object": "contact", "record": {"id": "c-1"}}, "body.type"),
        ({"type": "record_exploded", "object": "contact", "record": {"id": "c-1"}}, "body.type"),
        ({"type": "record_created", "record": {"id": "c-1"}}, "body.object"),
        ({"type": "record_created", "object": "contact", "record": {}}, "body.record.id"),
        ({"type": "event", "record": {"id": "c-1"}}, "body.name"),
        (
            {"type": "record_created", "object": "contact", "record": {"id": "c-1"}, "surprise": 1},
            "body.surprise",
        ),
        ({"type": "record_created", "object": "contact", "record": {"id": ["x"]}}, "body.record"),
        (
            {
                "type": "record_created",
                "object": "contact",
                "record": {"id": "c"},
                "occurred_at": "2026-04-06T09:00:00",
            },
            "body.occurred_at",
        ),
    ]
    for event, field in cases:
        r = api.post("/v1/events", event)
        assert r.status_code == 422, event
        assert r.json()["field"] == field, (event, r.json())
        assert r.json()["error"].startswith(field)
    r = api.post("/v1/events", [contact_created("c-1"), {"type": "record_created", "object": "contact"}])
    assert r.status_code == 422 and r.json()["field"] == "body[1].record.id"
    r = api.client.post("/v1/events", content=b"{not json", headers=api.headers())
    assert r.status_code == 422 and r.json()["field"] == "body"
    assert api.post("/v1/events", contact_created("c-9")).status_code == 202


def test_request_bodies_over_the_limit_get_413(api: Api) -> None:
    huge = contact_created("c-1", note="x" * (2 * 1024 * 1024))
    r = api.post("/v1/events", huge)
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    chunks = (b"x" * 65536 for _ in range(40))  # no Content-Length: counted as it streams
    r = api.client.post(
        "/v1/events", content=chunks, headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert r.status_code == 413


# --------------------------------------------------------------------------- runs, tasks, records


def test_a_run_shows_every_step_its_message_and_its_task(api: Api) -> None:
    apply(api)
    run_id = api.post("/v1/events", contact_created("c-1", first_name="Ada")).json()["runs"][0]
    api.wait_for(lambda: api.run_status(run_id) == "succeeded")
    run = api.get(f"/v1/runs/{run_id}").json()
    assert [(s["step"], s["status"]) for s in run["steps"]] == [
        ("welcome", "succeeded"),
        ("onboarding", "succeeded"),
    ]
    [message] = run["messages"]
    assert message["status"] == "sent" and message["idempotency_key"] == f"{run_id}:welcome:1"
    assert message["subject"] == "Welcome, Ada!"
    assert (api.base / ".flowctl" / "outbox" / f"{run_id}.welcome.1.eml").is_file()
    [task] = run["tasks"]
    assert task["subject"] == "Onboarding call with Ada" and task["assignee"] == "li.lei"
    assert {e["kind"] for e in run["trace"]} >= {"run", "step", "task"}
    listed = api.get("/v1/runs", params={"flow": "welcome", "status": "succeeded"}).json()
    assert [r["id"] for r in listed["runs"]] == [run_id] and listed["next"] is None
    assert api.get("/v1/runs", params={"status": "exploded"}).json()["field"] == "query.status"
    assert api.get("/v1/runs/run-404").status_code == 404
    record = api.get("/v1/records/contact/c-1").json()
    assert record["fields"]["first_name"] == "Ada"
    assert [e["text"] for e in record["timeline"]] == [
        "email sent: Welcome, Ada!",
        "task created: Onboarding call with Ada",
    ]
    messages = api.get("/v1/messages", params={"run_id": run_id}).json()["messages"]
    assert [m["channel"] for m in messages] == ["email"]


def test_runs_list_pages_newest_first(api: Api) -> None:
    apply(api)
    api.post("/v1/events", [custom("park", f"c-{i}") for i in range(5)])
    page = api.get("/v1/runs", params={"limit": 2}).json()
    assert [r["id"] for r in page["runs"]] == ["run-5", "run-4"] and page["next"] is not None
    rest = api.get("/v1/runs", params={"limit": 10, "before": page["next"]}).json()
    assert [r["id"] for r in rest["runs"]] == ["run-3", "run-2", "run-1"] and rest["next"] is None


def test_an_approval_is_completed_through_the_api(api: Api) -> None:
    apply(api)
    api.post("/v1/events", contact_created("c-1"))
    run_id = api.post("/v1/events", custom("discount.requested", "c-1")).json()["runs"][0]
    [task] = api.get("/v1/tasks", params={"kind": "approval"}).json()["tasks"]
    assert task["approvers"] == ["wang.fang"] and task["status"] == "not_started"
    wrong = api.post(f"/v1/tasks/{task['id']}/complete", {"decision": "done"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "body.decision"
    operator = api.token("operator")
    done = api.post(
        f"/v1/tasks/{task['id']}/complete",
        {"decision": "approved", "by": "wang.fang", "comment": "ok"},
        token=operator,
    )
    assert (
        done.status_code == 200 and done.json()["decision"] == "approved" and done.json()["by"] == "wang.fang"
    )
    assert api.run_status(run_id) == "succeeded"
    assert api.get("/v1/records/contact/c-1").json()["fields"]["stage"] == "discounted"
    again = api.post(f"/v1/tasks/{task['id']}/complete", {"decision": "approved"})
    assert again.status_code == 409
    assert api.get("/v1/tasks").json()["tasks"] == [
        t for t in api.get("/v1/tasks").json()["tasks"] if t["kind"] == "task"
    ]
    assert (
        api.get("/v1/audit", params={"action": "task.complete"}).json()["entries"][0]["target"] == task["id"]
    )


def test_cancel_and_manual_start(api: Api) -> None:
    apply(api)
    api.post("/v1/events", contact_created("c-1"))
    run_id = api.post("/v1/events", custom("park", "c-1")).json()["runs"][0]
    assert api.run_status(run_id) == "waiting"
    r = api.post(f"/v1/runs/{run_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert api.post("/v1/runs/run-404/cancel").status_code == 404
    started = api.post("/v1/runs", {"flow": "parked", "record": "c-1"})
    assert started.status_code == 202 and len(started.json()["runs"]) == 1
    r = api.post("/v1/runs", {"flow": "no-such-flow", "record": "c-1"})
    assert r.status_code == 404 and "no-such-flow" in r.json()["error"]


# --------------------------------------------------------------------------- metrics and reports


def test_metrics_in_prometheus_and_json(api: Api) -> None:
    apply(api)
    api.post(
        "/v1/events",
        [{"type": "record_created", "object": "contact", "record": {"id": f"c-{i}"}} for i in range(3)],
    )
    api.post("/v1/events", [custom("touch", f"c-{i}") for i in range(3)])
    text = api.get("/metrics").text
    assert 'flowctl_events_total{outcome="accepted"} 6.0' in text
    assert 'flowctl_runs_finished_total{flow="touch",status="succeeded"} 3.0' in text
    assert 'flowctl_runs{status="succeeded"} 3.0' in text
    assert "flowctl_step_duration_seconds_bucket" in text
    data = api.get("/v1/metrics").json()
    assert data["counters"]["events"] == {"accepted": 6}
    assert data["gauges"]["runs"] == {"succeeded": 3}
    assert data["writer"]["jobs"] >= 4
    assert api.client.get("/metrics").status_code == 401


def test_stats_and_failure_report(api: Api) -> None:
    apply(api)
    api.post(
        "/v1/events",
        [{"type": "record_created", "object": "contact", "record": {"id": f"c-{i}"}} for i in range(4)],
    )
    api.post("/v1/events", [custom("touch", f"c-{i}") for i in range(4)])
    stats = api.get("/v1/stats").json()
    [touch] = stats["flows"]
    assert touch["flow"] == "touch" and touch["triggered"] == 4 and touch["succeeded"] == 4
    assert touch["success_rate"] == 1.0 and touch["actions"] == {
        "create_task": 4,
        "log": 4,
        "update_record": 4,
    }
    assert touch["p95_duration_seconds"] is not None
    report = api.get("/v1/reports/failures").json()
    assert report["failures"] == [] and report["retries"]["retry_success_rate"] is None
    assert set(report) == {"since", "failures", "retries", "compensation", "messages", "crm_forwards"}


def test_the_openapi_document_lists_the_api(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/bundle",
        "/v1/events",
        "/v1/runs/{run_id}",
        "/v1/tasks/{task_id}/complete",
        "/v1/health",
        "/v1/records/{object}/{record_id}",
        "/v1/bundle/inflight",
        "/v1/audit",
        "/metrics",
    ):
        assert path in paths


def test_secrets_never_reach_the_database_or_the_api(make_api: Any) -> None:
    api = make_api(ERP_TOKEN="s3cr3t-value")
    flow = {
        "kind": "flow",
        "name": "leak",
        "object": "contact",
        "trigger": {"type": "event", "name": "leak"},
        "steps": [
            {
                "id": "hook",
                "action": "webhook",
                "url": "http://127.0.0.1:9/x",
                "headers": {"Authorization": "Bearer {{ secrets.ERP_TOKEN }}"},
                "timeout": "1s",
            }
        ],
    }
    from .world import CONTACT

    apply(api, bundle(CONTACT, flow))
    run_id = api.post("/v1/events", custom("leak", "c-1")).json()["runs"][0]
    api.wait_for(lambda: api.run_status(run_id) == "failed")
    body = json.dumps(api.get(f"/v1/runs/{run_id}").json())
    assert "s3cr3t-value" not in body
    assert b"s3cr3t-value" not in database_bytes(api)
    assert b"s3cr3t-value" not in b"".join(
        p.read_bytes() for p in (api.base / ".flowctl" / "outbox").glob("*")
    )
