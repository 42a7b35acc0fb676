"""Properties: dedupe starts one run per window, run histories are paths through the graph, runs are deterministic."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowctl.engine.program import program_for

from .harness import Harness, flow

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(offsets=st.lists(st.integers(min_value=0, max_value=3 * 3600), min_size=1, max_size=12),
       window_minutes=st.integers(min_value=1, max_value=120))
def test_identical_triggers_start_one_run_per_dedupe_window(offsets: list[int], window_minutes: int) -> None:
    h = Harness(flow("f", [{"id": "n", "action": "log", "message": "x"}],
                     trigger={"type": "event", "name": "ping"}, dedupe=f"{window_minutes}m"))
    h.create("c-1")
    for seconds in sorted(offsets):
        h.sim.advance_to(h.start + dt.timedelta(seconds=seconds))
        h.event("ping", "c-1", same="data")
    # Expected: a new window opens at the first trigger at or after the end of the previous one.
    window = window_minutes * 60
    expected, window_end = 0, None
    for seconds in sorted(offsets):
        if window_end is None or seconds >= window_end:
            expected += 1
            window_end = seconds + window
    assert len(h.runs) == expected
    first = h.start + dt.timedelta(seconds=min(offsets))
    in_first_window = [r for r in h.runs if r.started_at < first + dt.timedelta(seconds=window)]
    assert len(in_first_window) == 1
    assert len(h.trace("suppressed")) == len(offsets) - expected


BRANCHY = flow("branchy", [
    {"id": "route", "switch": {"cases": [
        {"when": {"field": "score", "op": "gt", "value": 50}, "steps": [
            {"id": "ask", "action": "approval", "title": "ok?", "approvers": ["li.lei"], "timeout": "1d",
             "on_reject": [{"id": "rejected_note", "action": "log", "message": "no"}]},
        ]},
        {"when": {"field": "tier", "op": "eq", "value": "gold"}, "steps": [
            {"id": "gold", "action": "notify", "to": "support", "message": "gold"},
        ]},
    ], "default": [{"id": "plain", "action": "log", "message": "plain"}]}},
    {"id": "push", "action": "webhook", "url": "https://x.example", "retry": {"attempts": 2, "delay": "1m"},
     "on_failure": {"goto": "fallback"}},
    {"id": "check", "if": {"field": "phone", "op": "is_set"},
     "then": [{"id": "wa", "action": "send_whatsapp", "to": "{{ record.phone }}", "template": "wa",
               "fallback": {"id": "sms", "action": "send_sms", "to": "{{ record.phone }}", "body": "hi"}}],
     "else": [{"id": "pause", "wait": {"for": "2h"}}]},
    {"id": "end", "stop": {"status": "succeeded"}},
    {"id": "fallback", "action": "log", "message": "webhook gave up", "on_failure": "continue"},
    {"id": "again", "goto": "check", "when": {"field": "tier", "op": "ne", "value": "gold"}},
])
WA_TEMPLATE = {"kind": "template", "name": "wa", "channel": "whatsapp", "whatsapp": {"name": "hi"}}

record_values = st.fixed_dictionaries({
    "score": st.integers(min_value=0, max_value=100),
    "tier": st.sampled_from(["standard", "gold"]),
    "phone": st.sampled_from([None, "+1555"]),
    "whatsapp_opt_in": st.booleans(),
    "sms_opt_in": st.booleans(),
})
scenario = st.fixed_dictionaries({
    "record": record_values,
    "push_failures": st.integers(min_value=0, max_value=3),
    "wa_failures": st.integers(min_value=0, max_value=1),
    "decision": st.sampled_from(["approved", "rejected", None]),
})


def _play(case: dict[str, Any]) -> Harness:
    faults = []
    if case["push_failures"]:
        faults.append({"flow": "branchy", "step": "push", "error": "HTTP 503", "times": case["push_failures"]})
    if case["wa_failures"]:
        faults.append({"flow": "branchy", "step": "wa", "error": "timeout", "times": case["wa_failures"]})
    h = Harness(WA_TEMPLATE, BRANCHY, faults=faults)
    h.create("c-1", **{k: v for k, v in case["record"].items() if v is not None})
    h.at("1h")
    if case["decision"] and h.sim.open_task_for_step("ask"):
        h.complete("ask", case["decision"], by="li.lei")
    h.run("3d")
    return h


@FAST
@given(case=scenario)
def test_a_run_history_is_a_path_through_its_flow_graph(case: dict[str, Any]) -> None:
    h = _play(case)
    (run,) = h.runs
    assert run.status in ("succeeded", "failed")
    program = program_for(h.sim.bundle.flows["branchy"])
    assert run.path[0] == program.first
    for here, there in zip(run.path, run.path[1:], strict=False):
        assert there in program.successors(here), f"{here} → {there} is not an edge"
    # Every attempt belongs to a step the run entered.
    assert {a.step for a in h.attempts(run)} <= set(run.path)


def _dump(h: Harness) -> list[tuple[Any, ...]]:
    return [(e.seq, e.at, e.kind, e.run_id, e.step, e.status, e.attempt, sorted(e.detail.items(), key=str))
            for e in h.trace()]


@FAST
@given(case=scenario)
def test_the_same_inputs_give_the_same_trace(case: dict[str, Any]) -> None:
    first, second = _play(case), _play(case)
    assert _dump(first) == _dump(second)
    assert [(d.at, d.message.model_dump()) for d in first.sim.connectors.deliveries] == [
        (d.at, d.message.model_dump()) for d in second.sim.connectors.deliveries
    ]
