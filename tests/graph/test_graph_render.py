"""Flow diagrams: snapshots of two example flows in both formats, and the structure every diagram must have."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from flowctl.render.graph import FlowGraph, build_graph, condition_text, render_dot, render_mermaid
from flowctl.resources.models import Flow, child_step_lists
from flowctl.resources.project import Project, load_project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


def _flow(data: dict[str, Any]) -> Flow:
    base = {"kind": "flow", "name": "example", "object": "contact", "trigger": {"type": "record_created"}}
    return Flow.model_validate({**base, **data})


def _edges(graph: FlowGraph) -> set[tuple[str, str, str | None]]:
    return {(e.source, e.target, e.label) for e in graph.edges}


def _label(graph: FlowGraph, node_id: str) -> str:
    return "\n".join(next(n for n in graph.nodes if n.id == node_id).label)


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("flow_name", ["erp-order-sync", "proposal-approval"])
def test_mermaid_snapshot(project: Project, snapshot: SnapshotAssertion, flow_name: str) -> None:
    assert render_mermaid(project.flows[flow_name]) == snapshot


@pytest.mark.parametrize("flow_name", ["erp-order-sync", "proposal-approval"])
def test_dot_snapshot(project: Project, snapshot: SnapshotAssertion, flow_name: str) -> None:
    assert render_dot(project.flows[flow_name]) == snapshot


# --------------------------------------------------------------------------- structure of every example flow


def _all_steps(steps: list[Any]) -> list[Any]:
    out = []
    for step in steps:
        out.append(step)
        for _, children in child_step_lists(step):
            out += _all_steps(children)
    return out


def test_every_example_flow_draws_every_step_with_no_dangling_edge(project: Project) -> None:
    for flow in project.flows.values():
        graph = build_graph(flow)
        ids = [n.id for n in graph.nodes]
        assert len(ids) == len(set(ids)), flow.name
        for edge in graph.edges:
            assert edge.source in ids and edge.target in ids, (flow.name, edge)
        for step in _all_steps(flow.steps):
            assert f"s_{step.id}" in ids, (flow.name, step.id)
        # everything is reachable from the trigger
        reachable, todo = {"trigger"}, ["trigger"]
        while todo:
            node = todo.pop()
            for edge in graph.edges:
                if edge.source == node and edge.target not in reachable:
                    reachable.add(edge.target)
                    todo.append(edge.target)
        assert reachable == set(ids), (flow.name, set(ids) - reachable)


def test_entry_conditions_have_a_no_run_exit(project: Project) -> None:
    graph = build_graph(project.flows["welcome-new-customer"])
    assert ("trigger", "entry", None) in _edges(graph)
    assert ("entry", "s_welcome", "yes") in _edges(graph)
    assert ("entry", "no_run", "no") in _edges(graph)
    assert _label(graph, "entry").splitlines()[1:] == ["stage = customer", "AND email is set"]
    assert "reentry never, dedupe 10m" in _label(graph, "trigger")


def test_waits_branches_and_goto(project: Project) -> None:
    graph = build_graph(project.flows["lead-nurture"])
    edges = _edges(graph)
    assert "wait 3d" in _label(graph, "s_wait_3d")
    assert ("s_engaged_early", "s_skip_ahead", "then") in edges
    assert ("s_engaged_early", "s_case_study", "else") in edges
    assert ("s_skip_ahead", "s_qualify", "goto") in edges
    assert ("s_still_cold", "s_offer", "then") in edges
    assert ("s_still_cold", "s_qualify", "else") in edges
    # a stop ends its branch: nothing leaves it
    assert not [e for e in graph.edges if e.source == "s_end_cold"]
    assert "stop succeeded" in _label(graph, "s_end_cold")


def test_switch_cases_are_labelled_and_call_flow_is_drawn(project: Project) -> None:
    graph = build_graph(project.flows["ticket-dispatch"])
    edges = _edges(graph)
    assert ("s_by_priority", "s_page_manager", "when priority = urgent") in edges
    assert ("s_by_priority", "s_tell_success_team", "when customer_tier = gold") in edges
    assert ("s_by_priority", "finish", "default") in edges
    assert "flow duplicate-ticket-merge (wait for it)" in _label(graph, "s_check_duplicates")
    assert "skills_from" not in _label(graph, "s_dispatch")
    assert "skills from tags, language from locale" in _label(graph, "s_dispatch")
    assert "fallback manual_dispatch" in _label(graph, "s_dispatch")


def test_approval_outcomes(project: Project) -> None:
    graph = build_graph(project.flows["proposal-approval"])
    edges = _edges(graph)
    # the two approver entries are parallel tasks, joined before the outcomes
    assert {("s_approvals", "s_approvals_task1", None), ("s_approvals", "s_approvals_task2", None)} <= edges
    assert {("s_approvals_task1", "s_approvals_decision", None), ("s_approvals_task2", "s_approvals_decision", None)} <= edges
    assert ("s_approvals_decision", "s_approved", "approved") in edges
    assert ("s_approvals_decision", "s_rejected", "rejected") in edges
    assert ("s_approvals_decision", "s_approvals_overdue", "timeout 2d") in edges
    assert "2 tasks at once, all must approve" in _label(graph, "s_approvals")
    assert "requires quote.pdf, discount-justification.pdf" in _label(graph, "s_approvals_task1")
    assert _label(graph, "s_approvals_task2").splitlines() == [
        "Legal review: {{ record.name }}", "approver {{ team('legal').manager }}", "requires contract-draft.docx, nda.pdf",
    ]  # fmt: skip


def test_approval_on_timeout_reject_follows_the_rejection_branch() -> None:
    graph = build_graph(_flow({"steps": [
        {"id": "ok", "action": "approval", "title": "OK?", "approvers": "boss", "timeout": "3d", "on_timeout": "reject",
         "on_reject": [{"id": "undo", "action": "log", "message": "no"}]},
    ]}))  # fmt: skip
    assert ("s_ok", "s_undo", "timeout 3d: reject") in _edges(graph)


def test_approver_entries_in_sequence_are_chained_tasks() -> None:
    graph = build_graph(_flow({"steps": [
        {"id": "ok", "action": "approval", "mode": "sequence", "title": "OK?", "attachments_required": ["a.pdf"],
         "approvers": [{"user": "ann", "title": "First"}, "bob"]},
    ]}))  # fmt: skip
    edges = _edges(graph)
    assert ("s_ok", "s_ok_task1", None) in edges
    assert ("s_ok_task1", "s_ok_task2", "approved") in edges
    assert ("s_ok_task2", "s_ok_decision", None) in edges
    assert ("s_ok", "s_ok_task2", None) not in edges
    assert ("s_ok_decision", "finish", "approved") in edges
    assert ("s_ok_decision", "rejected", "rejected") in edges
    assert _label(graph, "s_ok_task1").splitlines() == ["First", "approver ann", "requires a.pdf"]
    assert _label(graph, "s_ok_task2").splitlines() == ["OK?", "approver bob", "requires a.pdf"]
    assert "2 tasks one after another" in _label(graph, "s_ok")


def test_approval_without_on_reject_ends_with_outcome_rejected() -> None:
    graph = build_graph(
        _flow({"steps": [{"id": "ok", "action": "approval", "title": "OK?", "approvers": "boss"}]})
    )
    assert ("s_ok", "rejected", "rejected") in _edges(graph)
    assert ("s_ok", "finish", "approved") in _edges(graph)
    assert _label(graph, "rejected") == "end: rejected"


def test_compensation_draws_a_manual_task(project: Project) -> None:
    graph = build_graph(project.flows["erp-order-sync"])
    edges = _edges(graph)
    assert ("s_push_order_to_erp", "m_push_order_to_erp", "on failure: compensate") in edges
    assert ("m_push_order_to_erp", "s_mark_synced", "done") in edges
    assert ("m_push_order_to_erp", "failed", "rejected") in edges
    assert _label(graph, "m_push_order_to_erp") == "manual task\nPlease perform push_order_to_erp manually"
    assert "retry: 3 attempts, exponential from 1m (max 10m)" in _label(graph, "s_push_order_to_erp")


def test_failure_paths_continue_goto_and_timeouts(project: Project) -> None:
    welcome = build_graph(project.flows["welcome-new-customer"])
    assert ("s_welcome", "s_assign_owner", "on failure: continue") in _edges(welcome)
    assert ("s_whatsapp_hello", "s_sms_hello", "no opt-in or failed") in _edges(welcome)
    assert ("s_sms_hello", "s_wait_a_week", None) in _edges(welcome)
    renewal = build_graph(project.flows["renewal-reminder"])
    assert ("s_wait_for_decision", "s_at_risk", "timeout 21d: goto") in _edges(renewal)
    flow = _flow(
        {"steps": [
            {"id": "call", "action": "human_task", "title": "Call", "assignee": "sam", "timeout": "1d"},
            {"id": "hook", "action": "webhook", "url": "https://example.com"},
        ]}
    )  # fmt: skip
    graph = build_graph(flow)
    assert ("s_call", "s_hook", "done") in _edges(graph)
    assert ("s_call", "failed", "timeout 1d") in _edges(graph)
    # the default on_failure (fail) is not drawn for ordinary steps
    assert [e for e in graph.edges if e.source == "s_hook"] == [graph.edges[-1]]


def test_goto_to_an_unknown_step_is_drawn_not_raised() -> None:
    graph = build_graph(_flow({"steps": [{"id": "loop", "goto": "nowhere"}]}))
    assert ("s_loop", "missing_nowhere", "goto") in _edges(graph)


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ({"type": "record_created"}, "a contact is created"),
        (
            {"type": "record_updated", "fields": ["tier"], "when_conditions_become_true": True},
            "a contact is updated (tier changed)",
        ),
        (
            {"type": "field_changed", "field": "stage", "from": "lead", "to": "customer"},
            "stage changes from lead to customer",
        ),
        ({"type": "record_deleted"}, "a contact is deleted"),
        (
            {"type": "date", "field": "birthday", "at": "09:00", "repeat": "yearly"},
            "contact.birthday at 09:00\ntime zone UTC, every year",
        ),
        (
            {"type": "date", "field": "renewal", "offset": "-30d", "timezone": "America/New_York"},
            "contact.renewal -30d at 00:00\ntime zone America/New_York",
        ),
        (
            {
                "type": "schedule",
                "cron": "0 9 * * 1-5",
                "conditions": {"field": "stage", "op": "eq", "value": "lead"},
            },
            "cron 0 9 * * 1-5 (UTC)\none run per contact where stage = lead",
        ),
        ({"type": "event", "name": "survey.submitted"}, "event survey.submitted"),
        ({"type": "manual"}, "flowctl run / call_flow"),
    ],
)
def test_every_trigger_is_described(trigger: dict[str, Any], expected: str) -> None:
    graph = build_graph(_flow({"trigger": trigger, "steps": [{"id": "x", "action": "log", "message": "m"}]}))
    label = _label(graph, "trigger")
    assert label.startswith(f"trigger: {trigger['type']}\n")
    assert expected in label


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        ({"field": "email", "op": "is_set"}, "email is set"),
        ({"field": "tier", "op": "in", "value": ["premium", "gold"]}, "tier in [premium, gold]"),
        ({"field": "opt_out", "op": "ne", "value": True}, "opt_out != true"),
        ({"field": "seen", "op": "more_than_ago", "value": "7d"}, "seen more than 7d ago"),
        ({"field": "amount", "op": "between", "value": [1, 5]}, "amount between 1 and 5"),
        (
            {
                "all": [
                    {"field": "a", "op": "is_empty"},
                    {"any": [{"field": "b", "op": "eq", "value": 1}, {"field": "c", "op": "lt", "value": 2}]},
                ]
            },
            "a is empty AND (b = 1 OR c < 2)",
        ),
        ({"not": {"field": "x", "op": "changed"}}, "NOT (x changed)"),
        ({"expr": "record.amount > 1000"}, "expr: record.amount > 1000"),
    ],
)
def test_condition_text(condition: dict[str, Any], text: str) -> None:
    flow = _flow({"conditions": condition, "steps": [{"id": "x", "action": "log", "message": "m"}]})
    assert condition_text(flow.conditions) == text


def test_labels_are_escaped_for_both_formats() -> None:
    flow = _flow(
        {
            "name": "quotes",
            "steps": [{"id": "say", "action": "log", "message": 'He said "<b>hi</b>" & left \\ now'}],
        }
    )
    mermaid = render_mermaid(flow)
    assert "He said #quot;#lt;b#gt;hi#lt;/b#gt;#quot; #amp; left \\ now" in mermaid
    dot = render_dot(flow)
    assert 'He said \\"<b>hi</b>\\" & left \\\\ now' in dot


def test_long_labels_are_clipped() -> None:
    flow = _flow({"steps": [{"id": "say", "action": "log", "message": "word " * 40}]})
    line = render_mermaid(flow).splitlines()[3]
    assert "…" in line and len(line) < 120


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_every_example_flow(project: Project) -> None:
    for flow in project.flows.values():
        result = subprocess.run(
            ["dot", "-Tsvg"], input=render_dot(flow), capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0 and "<svg" in result.stdout, (flow.name, result.stderr)
