"""A small valid flows repository, built in tmp_path, that each test breaks in one place."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

BASE_FILES: dict[str, str] = {
    "flowctl.yaml": "project: check-tests\n",
    "schemas/objects/contact.yaml": """\
kind: object
name: contact
fields:
  first_name: {type: string, required: true}
  email: {type: email}
  phone: {type: phone}
  tier: {type: enum, values: [standard, premium, gold]}
  stage: {type: enum, values: [lead, customer, churned]}
  birthday: {type: date}
  score: {type: number}
  owner: {type: ref, object: user}
  account: {type: ref, object: account}
  email_opt_out: {type: boolean}
  sms_opt_in: {type: boolean}
  whatsapp_opt_in: {type: boolean}
  last_contacted_at: {type: datetime}
  tags: {type: list, items: string}
consent:
  email: {field: email_opt_out, op: ne, value: true}
  sms: {field: sms_opt_in, op: eq, value: true}
  whatsapp: {field: whatsapp_opt_in, op: eq, value: true}
""",
    "schemas/objects/account.yaml": """\
kind: object
name: account
fields:
  name: {type: string}
  industry: {type: enum, values: [tech, retail, finance]}
  renewal_date: {type: date}
""",
    "schemas/objects/case.yaml": """\
kind: object
name: case
fields:
  subject: {type: string}
  priority: {type: enum, values: [low, normal, high]}
  status: {type: enum, values: [new, pending_customer, resolved]}
  first_response_at: {type: datetime}
  assignee: {type: ref, object: user}
  contact: {type: ref, object: contact}
""",
    "templates/welcome_email.yaml": """\
kind: template
name: welcome_email
channel: email
object: contact
subject: "Welcome, {{ record.first_name }}!"
html: |
  <p>Hi {{ record.first_name }},</p>
  <p>Your account: {{ record.account.name }}</p>
""",
    "templates/welcome_sms.yaml": """\
kind: template
name: welcome_sms
channel: sms
body: "Hi {{ record.first_name }}, welcome!"
""",
    "templates/welcome_whatsapp.yaml": """\
kind: template
name: welcome_whatsapp
channel: whatsapp
whatsapp: {name: welcome, language: en_US, body_params: ["{{ record.first_name }}"]}
""",
    "templates/sla_warning.yaml": """\
kind: template
name: sla_warning
channel: email
subject: "SLA {{ sla.clock }} due {{ sla.due_at }}"
text: "Case {{ record.subject }} needs an answer."
""",
    "flows/teams/support.yaml": """\
kind: team
name: support
manager: wang.fang
members:
  - {user: li.lei, skills: [billing], languages: [en]}
  - {user: han.meimei, skills: [api], languages: [zh]}
""",
    "flows/calendars/support-hours.yaml": """\
kind: calendar
name: support-hours
timezone: Asia/Shanghai
weekly:
  mon-fri: ["09:00-12:00", "13:00-18:00"]
holidays: [2026-10-01]
""",
    "flows/welcome.yaml": """\
kind: flow
name: welcome
object: contact
trigger: {type: record_created}
conditions:
  all:
    - {field: email, op: is_set}
    - {field: tier, op: in, value: [premium, gold]}
steps:
  - id: welcome
    action: send_email
    to: "{{ record.email }}"
    template: welcome_email
  - id: assign
    action: assign_record
    strategy: round_robin
    team: support
  - id: onboarding
    action: create_task
    subject: "Onboarding call with {{ record.first_name }} ({{ record.account.industry }})"
    assignee: "{{ record.owner.id }}"
    due: 2d
  - id: hello
    action: send_whatsapp
    to: "{{ record.phone }}"
    template: welcome_whatsapp
    fallback: {id: hello_sms, action: send_sms, to: "{{ record.phone }}", template: welcome_sms}
  - id: wait_a_week
    wait: {for: 7d}
  - id: still_quiet
    if: {field: last_contacted_at, op: more_than_ago, value: 7d}
    then:
      - id: nudge
        action: notify
        to: "{{ record.owner.id }}"
        message: "{{ record.first_name }} has gone quiet (task {{ steps.onboarding.output }})"
""",
    "flows/stage-change.yaml": """\
kind: flow
name: stage-change
object: contact
trigger: {type: field_changed, field: stage, to: customer}
steps:
  - id: mark
    action: update_record
    set: {tier: premium}
  - id: note
    action: log
    message: "became a customer"
""",
    "flows/sla.yaml": """\
kind: sla_policy
name: support-sla
object: case
calendar: support-hours
targets:
  - when: {field: priority, op: eq, value: high}
    first_response: 2h
  - default: true
    first_response: 8h
clocks:
  first_response:
    stop_when: {field: first_response_at, op: is_set}
on_warning:
  - {action: send_email, to: "{{ record.assignee.email }}", template: sla_warning}
on_breach:
  - {action: assign_record, strategy: fixed, user: "{{ team('support').manager }}", field: assignee}
""",
    "tests/flows/welcome.yaml": """\
kind: flow_test
name: premium contact is welcomed
records:
  - tests/fixtures/contacts.yaml
events:
  - {at: 0s, type: record_created, object: contact, id: c-1}
expect:
  runs: [{flow: welcome, record: c-1, status: waiting}]
""",
    "tests/fixtures/contacts.yaml": """\
- {object: contact, id: c-1, first_name: Alice, email: alice@example.com, tier: premium}
- {object: user, id: li.lei, name: Li Lei}
""",
}


def write_repo(root: Path, extra: Mapping[str, str | bytes] | None = None) -> Path:
    """Write the base repository plus `extra` files (text or bytes) under `root`."""
    for rel, content in {**BASE_FILES, **(extra or {})}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root
