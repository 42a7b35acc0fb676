"""PowerX C-1 on the runner: the example repository's proposal-approval flow, its approval list over the API.

The runner is unchanged: the same engine opens both approval tasks at once, `GET /v1/tasks` lists them
with their documents, `POST /v1/tasks/{id}/complete` decides them in any order, and the run's step
output carries the approval chain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowctl.resources.bundle import Bundle
from flowctl.resources.project import load_project

from .conftest import Api

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "events"


def _send(api: Api, sample: str) -> Any:
    answer = api.post("/v1/events", json.loads((SAMPLES / sample).read_text(encoding="utf-8")))
    assert answer.status_code == 202, answer.text
    return answer.json()


def _approval_tasks(api: Api) -> list[dict[str, Any]]:
    return list(api.get("/v1/tasks", params={"kind": "approval"}).json()["tasks"])


def test_the_approval_list_is_opened_at_once_and_decided_in_any_order(api: Api) -> None:
    put = api.put("/v1/bundle", {"bundle": Bundle.from_project(load_project(ROOT)).model_dump(mode="json"),
                                 "expected_version": 0})
    assert put.status_code == 200, put.text
    _send(api, "00-seed-users.json")
    _send(api, "01-seed-accounts-and-contacts.json")
    [run_id] = _send(api, "proposal-needs-approval.json")["runs"]

    tasks = api.wait_for(lambda: len(_approval_tasks(api)) == 2 and _approval_tasks(api))
    by_subject = {t["subject"]: t for t in tasks}
    price = by_subject["Price approval: Lotus Logistics 200 seats"]
    legal = by_subject["Legal review: Lotus Logistics 200 seats"]
    assert (price["assignee"], price["attachments_required"]) == ("zhou.min", ["quote.pdf", "discount-justification.pdf"])
    assert (legal["assignee"], legal["attachments_required"]) == ("chen.jing", ["contract-draft.docx", "nda.pdf"])
    assert price["created_at"] == legal["created_at"] and price["step"] == legal["step"] == "approvals"
    assert {price["status"], legal["status"]} == {"not_started"}

    # legal answers first: its task never waited for the price approval
    done = api.post(f"/v1/tasks/{legal['id']}/complete", {"decision": "approved", "by": "chen.jing"})
    assert done.status_code == 200, done.text
    assert api.run_status(run_id) == "waiting"
    done = api.post(f"/v1/tasks/{price['id']}/complete",
                    {"decision": "approved", "by": "zhou.min", "comment": "12% is within policy"})
    assert done.status_code == 200, done.text
    api.wait_for(lambda: api.run_status(run_id) == "succeeded")

    run = api.get(f"/v1/runs/{run_id}").json()
    [approvals] = [s for s in run["steps"] if s["step"] == "approvals"]
    chain = approvals["output"]["chain"]
    assert [(c["approver"], c["title"], c["decision"], c["comment"]) for c in chain] == [
        ("chen.jing", "Legal review: Lotus Logistics 200 seats", "approved", None),
        ("zhou.min", "Price approval: Lotus Logistics 200 seats", "approved", "12% is within policy"),
    ]
    deal = api.get("/v1/records/deal/d-1").json()
    assert deal["fields"]["approval_status"] == "approved"
    assert (
        "approval chain: Legal review: Lotus Logistics 200 seats approved by chen.jing; "
        "Price approval: Lotus Logistics 200 seats approved by zhou.min"
    ) in [e["text"] for e in deal["timeline"]]
