"""Approval steps whose approvers are entries with their own task (PowerX C-1: price approval + legal review).

`mode: all` and `mode: any` open every entry's task at once, `mode: sequence` one after
another; a rejection rejects the step and cancels the other open tasks of that step; the
step output carries the whole approval chain. Plain user ids keep their old behaviour.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from flowctl.engine.state import Task

from .harness import T0, Harness, flow

PRICE: dict[str, Any] = {
    "user": "li.lei",
    "title": "Price approval: {{ record.first_name }}",
    "attachments_required": ["price_sheet.xlsx"],
    "instructions": "Check the discount for {{ record.id }}",
}
LEGAL: dict[str, Any] = {
    "user": "{{ team('support').manager }}",  # entries are templated like everything else: wang.fang
    "title": "Legal review: {{ record.first_name }}",
    "attachments_required": ["contract.docx", "nda.pdf"],
}
CHAIN_LOG = (
    "chain: {% for link in steps.approve.output.chain %}{{ link.approver }}={{ link.decision }}"
    "{{ ', ' if not loop.last }}{% endfor %}"
)


def _deal(mode: str, approvers: list[Any], **extra: Any) -> dict[str, Any]:
    return flow("deal", [
        {"id": "approve", "action": "approval", "mode": mode, "approvers": approvers, **extra},
        {"id": "after", "action": "log", "message": CHAIN_LOG},
    ])  # fmt: skip


def _view(tasks: list[Task]) -> list[tuple[str, str | None, list[str], str]]:
    return [(t.subject, t.assignee, t.attachments_required, t.status) for t in tasks]


def _started(mode: str, approvers: list[Any] | None = None, **extra: Any) -> Harness:
    h = Harness(_deal(mode, approvers or [PRICE, LEGAL], **extra))
    h.create("d-1", first_name="Lotus")
    return h


# --------------------------------------------------------------------------- mode all


def test_all_creates_every_entry_task_at_once_with_its_own_title_list_and_instructions() -> None:
    h = _started("all")
    assert _view(h.tasks) == [
        ("Price approval: Lotus", "li.lei", ["price_sheet.xlsx"], "not_started"),
        ("Legal review: Lotus", "wang.fang", ["contract.docx", "nda.pdf"], "not_started"),
    ]
    assert [t.created_at for t in h.tasks] == [T0, T0]
    assert [t.description for t in h.tasks] == ["Check the discount for d-1", None]
    assert [t.approvers for t in h.tasks] == [["li.lei"], ["wang.fang"]]
    assert h.run_of("deal").waiting is not None
    assert h.run_of("deal").waiting.task_ids == [t.id for t in h.tasks]  # type: ignore[union-attr]
    assert h.timeline("d-1") == ["task created: Price approval: Lotus", "task created: Legal review: Lotus"]


def test_all_is_approved_when_every_task_is_and_the_output_records_the_chain() -> None:
    h = _started("all")
    h.at("1h").complete("approve", "approved", by="wang.fang")  # legal first: it does not wait for price
    run = h.run_of("deal")
    assert run.status == "waiting" and "after" not in run.path
    h.at("3h").complete("approve", "approved", by="li.lei", comment="within policy")
    run = h.run_of("deal")
    assert run.status == "succeeded"
    assert run.outputs["approve"] == {
        "decision": "approved",
        "approver": "li.lei",
        "comment": "within policy",
        "chain": [
            {"approver": "wang.fang", "title": "Legal review: Lotus", "decision": "approved", "comment": None,
             "at": (T0 + dt.timedelta(hours=1)).isoformat()},
            {"approver": "li.lei", "title": "Price approval: Lotus", "decision": "approved",
             "comment": "within policy", "at": (T0 + dt.timedelta(hours=3)).isoformat()},
        ],
    }  # fmt: skip
    assert h.timeline("d-1")[2:] == [
        "approval approved by wang.fang: Legal review: Lotus",
        "approval approved by li.lei: Price approval: Lotus",
        "chain: wang.fang=approved, li.lei=approved",
    ]
    assert [t.status for t in h.tasks] == ["completed", "completed"]


def test_all_one_rejection_rejects_and_cancels_the_other_open_task() -> None:
    h = _started("all", on_reject=[{"id": "reopen", "action": "update_record", "set": {"stage": "negotiation"}}])
    h.at("2h").complete("approve", "rejected", by="li.lei", comment="discount too deep")
    run = h.run_of("deal")
    assert run.path == ["approve", "reopen", "after"]
    assert run.outputs["approve"]["decision"] == "rejected"
    assert run.outputs["approve"]["approver"] == "li.lei"
    assert [(c["approver"], c["decision"]) for c in run.outputs["approve"]["chain"]] == [("li.lei", "rejected")]
    assert [(t.subject, t.status, t.decision) for t in h.tasks] == [
        ("Price approval: Lotus", "completed", "rejected"),
        ("Legal review: Lotus", "cancelled", None),
    ]
    assert h.sim.open_task_for_step("approve") is None
    assert h.record("d-1").fields["stage"] == "negotiation"


def test_all_rejection_after_an_approval_keeps_both_links_of_the_chain() -> None:
    h = _started("all")
    h.complete("approve", "approved", by="li.lei")
    h.complete("approve", "rejected", by="wang.fang", comment="NDA missing")
    run = h.run_of("deal")
    assert (run.status, run.outcome) == ("succeeded", "rejected")  # no on_reject: the run ends, outcome rejected
    assert [(c["title"], c["decision"], c["comment"]) for c in run.outputs["approve"]["chain"]] == [
        ("Price approval: Lotus", "approved", None),
        ("Legal review: Lotus", "rejected", "NDA missing"),
    ]


# --------------------------------------------------------------------------- mode any


def test_any_creates_all_at_once_and_the_first_decision_decides() -> None:
    h = _started("any")
    assert len(h.tasks) == 2
    h.complete("approve", "approved", by="wang.fang")
    run = h.run_of("deal")
    assert run.status == "succeeded"
    assert run.outputs["approve"]["approver"] == "wang.fang"
    assert [c["approver"] for c in run.outputs["approve"]["chain"]] == ["wang.fang"]
    assert [t.status for t in h.tasks] == ["cancelled", "completed"]


def test_any_first_rejection_rejects_and_cancels_the_rest() -> None:
    h = _started("any")
    h.complete("approve", "rejected", by="li.lei")
    run = h.run_of("deal")
    assert (run.status, run.outcome) == ("succeeded", "rejected")
    assert [t.status for t in h.tasks] == ["completed", "cancelled"]


# --------------------------------------------------------------------------- mode sequence


def test_sequence_opens_each_entry_task_after_the_previous_approves() -> None:
    third = {"user": "han.meimei", "title": "Finance check: {{ record.first_name }}"}
    h = _started("sequence", [PRICE, LEGAL, third], attachments_required=["summary.pdf"])
    assert _view(h.tasks) == [("Price approval: Lotus", "li.lei", ["price_sheet.xlsx"], "not_started")]
    h.at("1h").complete("approve", "approved", by="li.lei")
    assert _view(h.tasks)[1] == ("Legal review: Lotus", "wang.fang", ["contract.docx", "nda.pdf"], "not_started")
    assert h.tasks[1].created_at == T0 + dt.timedelta(hours=1)
    h.at("2h").complete("approve", "approved", by="wang.fang")
    # an entry without its own list gets the step's
    assert _view(h.tasks)[2] == ("Finance check: Lotus", "han.meimei", ["summary.pdf"], "not_started")
    h.at("3h").complete("approve", "approved", by="han.meimei")
    run = h.run_of("deal")
    assert run.status == "succeeded"
    assert [c["approver"] for c in run.outputs["approve"]["chain"]] == ["li.lei", "wang.fang", "han.meimei"]
    assert h.timeline("d-1")[-1] == "chain: li.lei=approved, wang.fang=approved, han.meimei=approved"


def test_sequence_rejection_stops_the_chain_before_later_tasks_exist() -> None:
    h = _started("sequence")
    h.complete("approve", "approved", by="li.lei")
    h.complete("approve", "rejected", by="wang.fang")
    run = h.run_of("deal")
    assert (run.status, run.outcome) == ("succeeded", "rejected")
    assert [(t.assignee, t.decision) for t in h.tasks] == [("li.lei", "approved"), ("wang.fang", "rejected")]


# --------------------------------------------------------------------------- defaults, mixing, timeouts, errors


def test_entries_default_to_the_steps_title_list_and_instructions_and_mix_with_plain_ids() -> None:
    h = _started(
        "all",
        ["han.meimei", {"user": "li.lei"}, {"user": "wang.fang", "attachments_required": []}],
        title="Approve {{ record.first_name }}",
        instructions="Read the file",
        attachments_required=["quote.pdf"],
    )
    assert [(t.subject, t.assignee, t.attachments_required, t.description) for t in h.tasks] == [
        ("Approve Lotus", "han.meimei", ["quote.pdf"], "Read the file"),
        ("Approve Lotus", "li.lei", ["quote.pdf"], "Read the file"),
        ("Approve Lotus", "wang.fang", [], "Read the file"),  # an explicit empty list means none
    ]
    for user in ("li.lei", "han.meimei", "wang.fang"):
        h.complete("approve", "approved", by=user)
    run = h.run_of("deal")
    assert run.status == "succeeded" and len(run.outputs["approve"]["chain"]) == 3


def test_timeout_expires_every_open_task_and_the_branch_sees_the_chain_so_far() -> None:
    escalate = [{"id": "escalate", "action": "log", "message": "expired after {{ steps.approve.output.chain | length }}"}]
    h = _started("all", timeout="2d", on_timeout=escalate)
    h.at("1h").complete("approve", "approved", by="li.lei")
    h.run("3d")
    run = h.run_of("deal")
    assert run.path == ["approve", "escalate", "after"]
    assert run.outputs["approve"]["decision"] == "timed_out"
    assert [c["approver"] for c in run.outputs["approve"]["chain"]] == ["li.lei"]
    assert [t.status for t in h.tasks] == ["completed", "expired"]
    assert "expired after 1" in h.timeline("d-1")


def test_an_entry_whose_user_renders_empty_fails_the_step() -> None:
    h = _started("all", [PRICE, {"user": "{{ record.stage or '' }}", "title": "Stage owner sign-off"}])
    run = h.run_of("deal")
    assert (run.status, run.error_class) == ("failed", "invalid")
    assert "approvers[1].user rendered empty" in (run.error or "")
    assert h.tasks == []


@pytest.mark.parametrize("mode", ["any", "all", "sequence"])
def test_plain_user_ids_keep_their_output_without_a_chain(mode: str) -> None:
    h = Harness(flow("deal", [{"id": "approve", "action": "approval", "mode": mode, "approvers": ["li.lei"],
                               "title": "Price for {{ record.id }}", "attachments_required": ["q.pdf"]}]))
    h.create("d-1")
    assert _view(h.tasks) == [("Price for d-1", "li.lei", ["q.pdf"], "not_started")]
    h.complete("approve", "approved", by="li.lei")
    assert h.run_of("deal").outputs["approve"] == {"decision": "approved", "approver": "li.lei", "comment": None}
