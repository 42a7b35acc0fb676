"""Every step type of SPEC §3: what it does, what it outputs, what it writes on the timeline."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from flowctl.engine.secrets import placeholder

from .harness import T0, Harness, flow

UTC = dt.UTC

WELCOME = {
    "kind": "template", "name": "welcome", "channel": "email",
    "subject": "Welcome, {{ record.first_name }}!",
    "html": "<p>Hi {{ record.first_name }}</p>",
    "text": "Hi {{ record.first_name }}",
    "locales": {"vi": {"subject": "Chào mừng {{ record.first_name }}!"}},
}
WELCOME_B = {"kind": "template", "name": "welcome_b", "channel": "email", "subject": "B for {{ record.first_name }}",
             "text": "variant b"}
SMS = {"kind": "template", "name": "hello_sms", "channel": "sms", "body": "Hi {{ record.first_name }}"}
WA = {"kind": "template", "name": "hello_wa", "channel": "whatsapp",
      "whatsapp": {"name": "hello_v2", "language": "en_US", "body_params": ["{{ record.first_name }}"]}}


def one(h: Harness, channel: str) -> Any:
    sent = h.sent(channel)
    assert len(sent) == 1, sent
    return sent[0][1]


def test_send_email_from_a_template_renders_and_writes_the_timeline() -> None:
    h = Harness(WELCOME, flow("f", [{"id": "mail", "action": "send_email", "to": "{{ record.email }}",
                                     "template": "welcome", "from": "Acme <hi@acme.example>"}]))
    h.create("c-1", email="ann@example.com", first_name="Ann")
    msg = one(h, "email")
    assert (msg.to, msg.subject, msg.text, msg.sender) == (["ann@example.com"], "Welcome, Ann!", "Hi Ann",
                                                          "Acme <hi@acme.example>")
    assert msg.idempotency_key == "run-1:mail:1"
    run = h.run_of("f")
    assert run.outputs["mail"] == {"message_id": msg.id, "variant": None}
    assert h.timeline("c-1") == ["email sent: Welcome, Ann!"]


def test_email_html_is_autoescaped_and_the_locale_comes_from_the_record() -> None:
    h = Harness(WELCOME, flow("f", [{"id": "mail", "action": "send_email", "to": "{{ record.email }}",
                                     "template": "welcome"}]))
    h.create("c-1", email="a@example.com", first_name="<b>Bảo</b>", locale="vi")
    msg = one(h, "email")
    assert msg.subject == "Chào mừng <b>Bảo</b>!"  # the subject is text; the locale replaced it
    assert msg.html == "<p>Hi &lt;b&gt;Bảo&lt;/b&gt;</p>"  # the html part falls back to the default, escaped
    assert msg.locale == "vi"


def test_inline_email_and_a_custom_timeline_line() -> None:
    h = Harness(flow("f", [{"id": "mail", "action": "send_email", "to": "a@example.com", "subject": "Hi",
                            "text": "Body", "timeline": "custom line for {{ record.id }}"}]))
    h.create("c-1")
    assert one(h, "email").subject == "Hi"
    assert h.timeline("c-1") == ["custom line for c-1"]


def test_ab_variants_are_a_deterministic_weighted_split() -> None:
    steps = [{"id": "mail", "action": "send_email", "to": "x@example.com",
              "variants": [{"template": "welcome", "weight": 3}, {"template": "welcome_b", "weight": 1}]}]
    picks: list[str] = []
    for _ in range(2):  # the same records get the same variants in a fresh world
        h = Harness(WELCOME, WELCOME_B, flow("f", steps))
        for i in range(200):
            h.create(f"c-{i}", first_name="N")
        picks.append("".join("a" if m.variant == "welcome" else "b" for _, m in h.sent("email")))
    assert picks[0] == picks[1]
    share = Counter(picks[0])["a"] / 200
    assert 0.65 < share < 0.85


def test_no_consent_skips_the_message_and_sends_nothing() -> None:
    h = Harness(WELCOME, SMS, flow("f", [
        {"id": "mail", "action": "send_email", "to": "{{ record.email }}", "template": "welcome"},
        {"id": "sms", "action": "send_sms", "to": "{{ record.phone }}", "template": "hello_sms"},
        {"id": "after", "action": "log", "message": "went on"},
    ]))
    h.create("c-1", email="a@example.com", phone="+1555", email_opt_out=True, sms_opt_in=False)
    assert h.sent() == []
    run = h.run_of("f")
    assert h.statuses(run) == [("mail", "skipped"), ("sms", "skipped"), ("after", "succeeded")]
    assert {a.reason for a in h.attempts(run)[:2]} == {"no_consent"}
    assert run.status == "succeeded"


def test_sms_with_consent() -> None:
    h = Harness(SMS, flow("f", [{"id": "sms", "action": "send_sms", "to": "{{ record.phone }}",
                                 "template": "hello_sms", "sender_id": "ACME"}]))
    h.create("c-1", phone="+15550100", sms_opt_in=True, first_name="Ann")
    msg = one(h, "sms")
    assert (msg.to, msg.text, msg.sender) == (["+15550100"], "Hi Ann", "ACME")
    assert h.timeline("c-1") == ["sms sent"]


def _wa_flow() -> dict[str, Any]:
    return flow("f", [{"id": "wa", "action": "send_whatsapp", "to": "{{ record.phone }}", "template": "hello_wa",
                       "fallback": {"id": "sms", "action": "send_sms", "to": "{{ record.phone }}",
                                    "body": "Hi by SMS"}},
                      {"id": "after", "action": "log", "message": "after"}])


def test_whatsapp_with_opt_in_sends_the_provider_template() -> None:
    h = Harness(WA, _wa_flow())
    h.create("c-1", phone="+1", whatsapp_opt_in=True, sms_opt_in=True, first_name="Ann")
    msg = one(h, "whatsapp")
    assert msg.whatsapp == {"name": "hello_v2", "language": "en_US", "body_params": ["Ann"], "header_params": []}
    assert h.sent("sms") == []
    assert h.timeline("c-1") == ["whatsapp sent: hello_wa", "after"]


def test_whatsapp_without_opt_in_runs_the_fallback_then_continues() -> None:
    h = Harness(WA, _wa_flow())
    h.create("c-1", phone="+1", whatsapp_opt_in=False, sms_opt_in=True)
    assert h.sent("whatsapp") == []
    assert one(h, "sms").text == "Hi by SMS"
    run = h.run_of("f")
    assert run.path == ["wa", "sms", "after"]
    assert h.statuses(run)[0] == ("wa", "skipped")


def test_whatsapp_failure_runs_the_fallback() -> None:
    h = Harness(WA, _wa_flow(), faults=[{"flow": "f", "step": "wa", "error": "HTTP 503", "times": 5}])
    h.create("c-1", phone="+1", whatsapp_opt_in=True, sms_opt_in=True)
    run = h.run_of("f")
    assert run.status == "succeeded"
    assert run.path == ["wa", "sms", "after"]
    assert one(h, "sms")


def test_create_task_with_a_duration_and_a_templated_due_date() -> None:
    h = Harness(flow("f", [
        {"id": "t1", "action": "create_task", "subject": "Call {{ record.first_name }}", "assignee": "li.lei",
         "due": "2d", "priority": "high"},
        {"id": "t2", "action": "create_task", "subject": "Renewal", "due": "{{ record.birthday }}T17:00"},
    ], timezone="Asia/Shanghai"))
    h.create("c-1", first_name="Ann", birthday="2026-02-01")
    t1, t2 = h.tasks
    assert (t1.subject, t1.assignee, t1.priority, t1.status, t1.related_to) == (
        "Call Ann", "li.lei", "high", "not_started", "contact/c-1")
    assert t1.due_at == T0 + dt.timedelta(days=2)
    assert t2.due_at == dt.datetime(2026, 2, 1, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    assert h.run_of("f").outputs["t1"] == {"task_id": t1.id}
    assert h.timeline("c-1") == ["task created: Call Ann", "task created: Renewal"]


def test_create_event_creates_an_event_record() -> None:
    h = Harness(flow("f", [{"id": "demo", "action": "create_event", "subject": "Demo for {{ record.first_name }}",
                            "start": "1d", "duration": "1h", "attendees": ["li.lei"], "location": "Zoom"}]))
    h.create("c-1", first_name="Ann")
    event_id = h.run_of("f").outputs["demo"]["event_id"]
    event = h.record(event_id, object="event")
    assert event.fields["subject"] == "Demo for Ann"
    assert event.fields["start"] == "2026-01-06T09:00:00Z" and event.fields["end"] == "2026-01-06T10:00:00Z"
    assert h.timeline("c-1") == ["event created: Demo for Ann"]


def test_update_record_on_the_record_and_on_a_reference() -> None:
    h = Harness(flow("f", [
        {"id": "mark", "action": "update_record", "set": {"stage": "customer", "score": "{{ 40 + 2 }}"}},
        {"id": "acct", "action": "update_record", "record": "account", "set": {"tier": "key"}},
        {"id": "read", "action": "log", "message": "{{ record.account.industry }} {{ record.score * 2 }}"},
    ]))
    h.create("acme", object="account", name="Acme", industry="software")
    h.create("c-1", account="acme", stage="lead")
    run = h.run_of("f")
    assert run.outputs["mark"] == {"stage": "customer", "score": 42}
    assert h.record("c-1").fields["score"] == 42  # coerced to the integer field type
    assert h.record("acme", object="account").fields["tier"] == "key"
    assert h.timeline("acme", object="account") == ["record updated: tier=key"]
    assert h.timeline("c-1") == ["record updated: stage=customer, score=42", "software 84"]


def test_create_record() -> None:
    h = Harness(flow("f", [{"id": "new", "action": "create_record", "object": "account",
                            "values": {"name": "{{ record.first_name }} Inc"}}]))
    h.create("c-1", first_name="Ann")
    rid = h.run_of("f").outputs["new"]["record_id"]
    assert h.record(rid, object="account").fields == {"name": "Ann Inc"}


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"strategy": "fixed", "user": "{{ 'han' ~ '.meimei' }}"}, ["han.meimei", "han.meimei", "han.meimei"]),
        ({"strategy": "round_robin", "team": "support"}, ["li.lei", "han.meimei", "li.lei"]),
        ({"strategy": "least_loaded", "team": "support"}, ["li.lei", "han.meimei", "li.lei"]),
    ],
)
def test_assign_record_strategies(step: dict[str, Any], expected: list[str]) -> None:
    h = Harness(flow("f", [{"id": "assign", "action": "assign_record", **step}]))
    for i in range(3):
        h.create(f"c-{i}")
    assert [h.record(f"c-{i}").fields["owner"] for i in range(3)] == expected
    assert h.timeline("c-0") == [f"assigned to {expected[0]}"]


def test_least_loaded_counts_open_tasks() -> None:
    h = Harness(flow("f", [
        {"id": "assign", "action": "assign_record", "strategy": "least_loaded", "team": "support"},
        {"id": "work", "action": "create_task", "subject": "x", "assignee": "{{ record.owner.id }}"},
        {"id": "more", "action": "create_task", "subject": "y", "assignee": "{{ record.owner.id }}"},
    ]))
    h.create("c-1")  # li.lei: 1 record + 2 tasks
    h.create("c-2")  # han.meimei
    h.create("c-3")  # han.meimei has 3 as well now: tie → li.lei (listed first)
    h.create("c-4")
    owners = [h.record(f"c-{i}").fields["owner"] for i in range(1, 5)]
    assert owners == ["li.lei", "han.meimei", "li.lei", "han.meimei"]


def test_skills_dispatch_records_the_matched_rule() -> None:
    step = {"id": "dispatch", "action": "assign_record", "strategy": "skills", "team": "support",
            "skills_from": "tags", "language_from": "language", "fallback": "manual_dispatch"}
    h = Harness(flow("f", [step]))
    h.create("t-1", tags=["API-Integration"], language="en")
    h.create("t-2", tags=["billing"], language="zh")
    h.create("t-3", tags=["billing"], language="en")  # han.meimei knows billing but not English
    assert h.record("t-1").fields["owner"] == "li.lei"
    assert h.record("t-1").fields["dispatch_rule"] == "skills: api-integration; language: en"
    assert h.timeline("t-1") == ["assigned to li.lei (skills: api-integration; language: en)"]
    assert h.record("t-2").fields["owner"] == "han.meimei"
    assert "owner" not in h.record("t-3").fields
    (task,) = h.tasks
    assert (task.kind, task.assignee, task.related_to) == ("manual_dispatch", "wang.fang", "contact/t-3")
    h.sim.complete_task(task.id, "done", by="wang.fang", data={"assignee": "li.lei"})
    assert h.record("t-3").fields["owner"] == "li.lei"


def test_skills_without_a_match_or_fallback_fails_the_step() -> None:
    h = Harness(flow("f", [{"id": "dispatch", "action": "assign_record", "strategy": "skills", "team": "support",
                            "skills_from": "tags"}]))
    h.create("t-1", tags=["quantum"])
    run = h.run_of("f")
    assert (run.status, run.error_class) == ("failed", "no_assignee")


def test_merge_duplicates_merges_into_the_original_and_marks_it() -> None:
    h = Harness(flow("f", [{"id": "merge", "action": "merge_duplicates", "match": ["email", "subject"],
                            "window": "1h", "mark_after": 2, "mark": {"risk": "suspected_malicious"}}]))
    h.create("t-1", email="a@x", subject="Refund")
    h.at("10m").create("t-2", email="a@x", subject="Refund")
    h.at("20m").create("t-3", email="b@x", subject="Refund")  # another customer
    h.at("30m").create("t-4", email="a@x", subject="Refund")
    h.at("3h").create("t-5", email="a@x", subject="Refund")  # outside the window: a new original
    outputs = {r.record_id: r.outputs["merge"] for r in h.runs}
    assert outputs == {"t-1": "t-1", "t-2": "t-1", "t-3": "t-3", "t-4": "t-1", "t-5": "t-5"}
    assert h.record("t-2").fields["status"] == "merged" and h.record("t-2").fields["merged_into"] == "t-1"
    assert h.record("t-1").fields.get("risk") == "suspected_malicious"
    assert "status" not in h.record("t-5").fields


def test_notify_expands_teams_and_roles() -> None:
    h = Harness(flow("f", [{"id": "n", "action": "notify", "to": ["support", "manager"], "message": "hi {{ record.id }}",
                            "priority": "high"}]))
    h.create("c-1")
    msg = one(h, "notification")
    assert msg.to == ["li.lei", "han.meimei", "wang.fang"]
    assert (msg.text, msg.priority) == ("hi c-1", "high")
    assert h.timeline("c-1") == ["notified li.lei, han.meimei, wang.fang"]


def test_webhook_outputs_status_and_json_and_keeps_secrets_out_of_state() -> None:
    h = Harness(flow("f", [
        {"id": "push", "action": "webhook", "url": "https://erp.example/orders", "method": "POST",
         "headers": {"Authorization": "Bearer {{ secrets.ERP_TOKEN }}"}, "body": {"id": "{{ record.id }}"},
         "expect_status": [200, 201]},
        {"id": "use", "action": "log", "message": "order {{ steps.push.output.json.order }}"},
    ]), stubs=[{"flow": "f", "step": "push", "status": 201, "json": {"order": "SO-9"}}])
    h.create("c-1")
    run = h.run_of("f")
    assert run.outputs["push"]["status"] == 201 and run.outputs["push"]["json"] == {"order": "SO-9"}
    assert h.timeline("c-1") == ["webhook POST 201", "order SO-9"]
    stored = h.sim.store.list_messages()[0]
    assert stored.headers["Authorization"] == f"Bearer {placeholder('ERP_TOKEN')}"  # never the value
    assert one(h, "webhook").headers["Authorization"] == "Bearer fake-ERP_TOKEN"  # revealed only on delivery


def test_webhook_4xx_is_not_retried() -> None:
    h = Harness(flow("f", [{"id": "push", "action": "webhook", "url": "https://x.example",
                            "retry": {"attempts": 5, "delay": "1m"}}]),
                stubs=[{"flow": "f", "step": "push", "status": 404}])
    h.create("c-1")
    h.run("1h")
    run = h.run_of("f")
    assert (run.status, run.error_class) == ("failed", "HTTP 404")
    assert [a.status for a in h.attempts(run)] == ["failed"]


def test_template_errors_fail_the_step_not_the_engine() -> None:
    h = Harness(flow("f", [{"id": "bad", "action": "log", "message": "{{ record.nope }}", "on_failure": "continue"},
                           {"id": "good", "action": "log", "message": "fine"}]))
    h.create("c-1")
    run = h.run_of("f")
    attempt = h.attempts(run)[0]
    assert (attempt.status, attempt.error_class) == ("failed", "template")
    assert "nope" in (attempt.error or "")
    assert run.status == "succeeded" and h.timeline("c-1") == ["fine"]


def test_human_task_waits_for_completion() -> None:
    h = Harness(flow("f", [{"id": "check", "action": "human_task", "title": "Check {{ record.id }}",
                            "assignee": "li.lei", "instructions": "Look at it"},
                           {"id": "after", "action": "log", "message": "{{ steps.check.output.data.note }}"}]))
    h.create("c-1")
    assert h.run_of("f").status == "waiting"
    h.at("1h")
    h.complete("check", "done", by="li.lei", data={"note": "all good"})
    run = h.run_of("f")
    assert run.status == "succeeded" and h.timeline("c-1")[-1] == "all good"


def test_wait_until_condition_resumes_on_update_or_times_out() -> None:
    steps: list[dict[str, Any]] = [{"id": "paid", "wait": {"until_condition": {"field": "status", "op": "eq", "value": "paid"},
                                     "timeout": "3d"}, "on_failure": {"goto": "chase"}},
             {"id": "thanks", "action": "log", "message": "thanks"},
             {"id": "done", "stop": {"status": "succeeded", "reason": "paid"}},
             {"id": "chase", "action": "log", "message": "chase"}]
    h = Harness(flow("f", steps))
    h.create("c-1", status="open")
    h.create("c-2", status="open")
    h.at("1d").update("c-1", status="paid")
    h.run("5d")
    assert h.timeline("c-1") == ["thanks"]
    assert h.timeline("c-2") == ["chase"]
    run2 = next(r for r in h.runs if r.record_id == "c-2")
    assert ("paid", "failed") in h.statuses(run2)
    assert h.attempts(run2)[0].error_class == "timeout"


def test_if_switch_goto_and_the_visit_loop_guard() -> None:
    h = Harness(flow("f", [
        {"id": "route", "switch": {"cases": [{"when": {"field": "score", "op": "gt", "value": 100},
                                               "steps": [{"id": "big", "action": "log", "message": "big"}]}],
                                   "default": [{"id": "small", "action": "log", "message": "small"}]}},
        {"id": "again", "goto": "route"},
    ]))
    h.create("c-1", score=500)
    run = h.run_of("f")
    assert (run.status, run.error_class) == ("failed", "loop_guard")
    assert run.visits["route"] == 101
    assert h.timeline("c-1").count("big") == 100


def test_call_flow_with_wait_resumes_the_parent_when_the_child_ends() -> None:
    child = flow("child", [{"id": "pause", "wait": {"for": "1h"}}, {"id": "c", "action": "log", "message": "child"}],
                 trigger={"type": "manual"})
    parent = flow("parent", [{"id": "call", "call_flow": {"flow": "child", "wait": True}},
                             {"id": "p", "action": "log", "message": "parent after {{ steps.call.output.status }}"}])
    h = Harness(child, parent)
    h.create("c-1")
    assert h.run_of("parent").status == "waiting"
    h.run("2h")
    assert h.timeline("c-1") == ["child", "parent after succeeded"]
    assert h.run_of("child").parent_run_id == h.run_of("parent").id


def test_call_flow_without_wait_continues_at_once() -> None:
    child = flow("child", [{"id": "pause", "wait": {"for": "1h"}}], trigger={"type": "manual"})
    parent = flow("parent", [{"id": "call", "call_flow": {"flow": "child"}}])
    h = Harness(child, parent)
    h.create("c-1")
    assert h.run_of("parent").status == "succeeded"
    assert h.run_of("child").status == "waiting"


def test_stop_ends_the_run_with_its_status_and_reason() -> None:
    h = Harness(flow("f", [{"id": "end", "stop": {"status": "failed", "reason": "not eligible"}},
                           {"id": "never", "action": "log", "message": "x"}]))
    h.create("c-1")
    run = h.run_of("f")
    assert (run.status, run.outcome, run.path) == ("failed", "not eligible", ["end"])


def test_when_false_skips_the_step() -> None:
    h = Harness(flow("f", [{"id": "gold", "action": "log", "message": "gold", "when":
                            {"field": "tier", "op": "eq", "value": "gold"}}]))
    h.create("c-1", tier="standard")
    run = h.run_of("f")
    assert h.statuses(run) == [("gold", "skipped")] and h.attempts(run)[0].reason == "when false"
