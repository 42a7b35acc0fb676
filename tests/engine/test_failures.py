"""Retries, backoff, on_failure and compensation (SPEC §3 Failure, §10.6), and approvals (§10.7)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .harness import T0, Harness, flow

PUSH = {"id": "push", "action": "webhook", "url": "https://erp.example/orders"}


def _push(retry: dict[str, Any] | None = None, on_failure: Any = "fail") -> dict[str, Any]:
    step = dict(PUSH, on_failure=on_failure)
    if retry:
        step["retry"] = retry
    return flow("sync", [step, {"id": "after", "action": "log", "message": "after"}])


def _attempt_times(h: Harness) -> list[dt.datetime]:
    return [d.at for d in h.sim.connectors.deliveries]


def test_exponential_backoff_doubles_up_to_max_delay() -> None:
    h = Harness(_push({"attempts": 5, "delay": "1m", "backoff": "exponential", "max_delay": "3m"}),
                faults=[{"flow": "sync", "step": "push", "error": "HTTP 503", "times": 4}])
    h.create("c-1")
    h.run("1h")
    minutes = [int((t - T0).total_seconds() // 60) for t in _attempt_times(h)]
    assert minutes == [0, 1, 3, 6, 9]  # delays 1m, 2m, then capped at 3m, 3m
    run = h.run_of("sync")
    assert run.status == "succeeded"
    assert [a.status for a in h.attempts(run)][:5] == ["retrying"] * 4 + ["succeeded"]


def test_fixed_retry_then_fail_records_the_error_class() -> None:
    h = Harness(_push({"attempts": 3, "delay": "5m"}),
                faults=[{"flow": "sync", "step": "push", "error": "timeout", "times": 9}])
    h.create("c-1")
    h.run("1h")
    assert [int((t - T0).total_seconds() // 60) for t in _attempt_times(h)] == [0, 5, 10]
    run = h.run_of("sync")
    assert (run.status, run.error_class) == ("failed", "timeout")
    assert "after" not in run.path


def test_faults_count_per_run() -> None:
    h = Harness(_push({"attempts": 2, "delay": "1m"}), faults=[{"flow": "sync", "step": "push", "error": "connection",
                                                                "times": 1}])
    h.create("c-1")
    h.create("c-2")
    h.run("10m")
    assert [r.status for r in h.runs] == ["succeeded", "succeeded"]
    assert len(h.sim.connectors.deliveries) == 4


def test_on_failure_continue_and_goto() -> None:
    fault = [{"flow": "sync", "step": "push", "error": "HTTP 500", "times": 1}]
    h = Harness(_push(on_failure="continue"), faults=fault)
    h.create("c-1")
    assert h.run_of("sync").status == "succeeded" and h.timeline("c-1") == ["after"]

    goto = flow("sync", [dict(PUSH, on_failure={"goto": "alert"}), {"id": "after", "action": "log", "message": "ok"},
                         {"id": "end", "stop": {"status": "succeeded"}},
                         {"id": "alert", "action": "log", "message": "alerted"}])
    h2 = Harness(goto, faults=fault)
    h2.create("c-1")
    assert h2.run_of("sync").path == ["push", "alert"]


def test_compensation_done_finishes_succeeded_compensated() -> None:
    h = Harness(_push({"attempts": 4, "delay": "1m"}, on_failure="compensate"),
                faults=[{"flow": "sync", "step": "push", "error": "HTTP 503", "times": 4}])
    h.create("c-1")
    h.run("10m")
    run = h.run_of("sync")
    assert run.status == "waiting"
    (task,) = h.tasks
    assert (task.kind, task.subject, task.step) == ("compensation", "Please perform push manually", "push")
    assert task.error == "HTTP 503: injected fault: HTTP 503"
    h.complete("push", "done", by="ops")
    run = h.run_of("sync")
    assert run.status == "succeeded_compensated"
    assert h.timeline("c-1") == ["task created: Please perform push manually", "after"]


def test_compensation_rejected_fails_the_run() -> None:
    h = Harness(_push(on_failure="compensate"), faults=[{"flow": "sync", "step": "push", "error": "HTTP 503"}])
    h.create("c-1")
    h.complete("push", "rejected", by="ops")
    run = h.run_of("sync")
    assert (run.status, run.error_class) == ("failed", "compensation_rejected")


def test_operator_retry_of_a_failed_run() -> None:
    h = Harness(_push(), faults=[{"flow": "sync", "step": "push", "error": "HTTP 503", "times": 1}])
    h.create("c-1")
    run = h.run_of("sync")
    assert run.status == "failed"
    h.sim.engine.retry_run(run.id, h.now)
    h.sim.deliver()
    run = h.run_of("sync")
    assert run.status == "succeeded" and [a.attempt for a in h.attempts(run)][:2] == [1, 2]


def test_cancel_a_waiting_run_cancels_its_timers_and_tasks() -> None:
    h = Harness(flow("f", [{"id": "ask", "action": "human_task", "title": "t", "assignee": "li.lei",
                            "timeout": "1d"}]))
    h.create("c-1")
    run = h.run_of("f")
    h.sim.engine.cancel_run(run.id, h.now)
    assert h.run_of("f").status == "cancelled"
    assert h.tasks[0].status == "cancelled"
    assert h.sim.store.next_due() is None


# --------------------------------------------------------------------------- approvals


def _approval(mode: str, approvers: list[str], **extra: Any) -> dict[str, Any]:
    return flow("deal", [
        {"id": "approve", "action": "approval", "title": "Price for {{ record.id }}", "approvers": approvers,
         "mode": mode, **extra},
        {"id": "after", "action": "log", "message": "after {{ steps.approve.output.decision }}"},
    ])


def test_approval_any_first_decision_wins() -> None:
    h = Harness(_approval("any", ["li.lei", "han.meimei"]))
    h.create("d-1")
    assert [t.assignee for t in h.tasks] == ["li.lei", "han.meimei"]
    h.complete("approve", "approved", by="han.meimei")
    run = h.run_of("deal")
    assert run.status == "succeeded"
    assert run.outputs["approve"] == {"decision": "approved", "approver": "han.meimei", "comment": None}
    assert [t.status for t in h.tasks] == ["cancelled", "completed"]


def test_approval_all_needs_everyone() -> None:
    h = Harness(_approval("all", ["li.lei", "han.meimei"]))
    h.create("d-1")
    h.complete("approve", "approved", by="li.lei")
    assert h.run_of("deal").status == "waiting"
    h.complete("approve", "approved", by="han.meimei")
    assert h.run_of("deal").status == "succeeded"


def test_approval_sequence_creates_the_next_task_after_each_approval() -> None:
    h = Harness(_approval("sequence", ["li.lei", "han.meimei", "wang.fang"]))
    h.create("d-1")
    assert [t.assignee for t in h.tasks] == ["li.lei"]
    h.complete("approve", "approved", by="li.lei")
    assert [t.assignee for t in h.tasks] == ["li.lei", "han.meimei"]
    h.complete("approve", "approved", by="han.meimei")
    h.complete("approve", "approved", by="wang.fang")
    assert h.run_of("deal").status == "succeeded"
    assert h.timeline("d-1")[-1] == "after approved"


def test_rejection_without_on_reject_ends_succeeded_with_outcome_rejected() -> None:
    h = Harness(_approval("sequence", ["li.lei", "han.meimei"]))
    h.create("d-1")
    h.complete("approve", "rejected", by="li.lei", comment="too cheap")
    run = h.run_of("deal")
    assert (run.status, run.outcome) == ("succeeded", "rejected")
    assert run.outputs["approve"]["comment"] == "too cheap"
    assert "after" not in run.path


def test_on_reject_runs_then_continues_after_the_approval() -> None:
    h = Harness(_approval("any", ["li.lei"], on_reject=[{"id": "reopen", "action": "update_record",
                                                         "set": {"stage": "negotiation"}}]))
    h.create("d-1", stage="proposal")
    h.complete("approve", "rejected", by="li.lei")
    run = h.run_of("deal")
    assert run.path == ["approve", "reopen", "after"]
    assert h.record("d-1").fields["stage"] == "negotiation"


def test_approval_timeout_reject_steps_or_failure() -> None:
    h = Harness(_approval("any", ["li.lei"], timeout="2d", on_timeout="reject"))
    h.create("d-1")
    h.run("3d")
    run = h.run_of("deal")
    assert (run.status, run.outcome) == ("succeeded", "rejected")
    assert h.tasks[0].status == "expired"
    assert run.ended_at == T0 + dt.timedelta(days=2)

    escalate = [{"id": "escalate", "action": "notify", "to": "wang.fang", "message": "nobody approved"}]
    h2 = Harness(_approval("any", ["li.lei"], timeout="1d", on_timeout=escalate))
    h2.create("d-1")
    h2.run("2d")
    assert h2.run_of("deal").path == ["approve", "escalate", "after"]

    h3 = Harness(_approval("any", ["li.lei"], timeout="1d"))
    h3.create("d-1")
    h3.run("2d")
    run3 = h3.run_of("deal")
    assert (run3.status, run3.error_class) == ("failed", "timeout")
