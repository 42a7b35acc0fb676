"""A small flows repository written into a temporary directory for simulate/test CLI tests."""

from __future__ import annotations

from pathlib import Path

FILES: dict[str, str] = {
    "flowctl.yaml": "project: sample\n",
    "schemas/objects/contact.yaml": """\
kind: object
name: contact
fields:
  first_name: {type: string}
  email: {type: email}
  stage: {type: enum, values: [lead, customer]}
  owner: {type: ref, object: user}
  email_opt_out: {type: boolean}
consent:
  email: {field: email_opt_out, op: ne, value: true}
""",
    "templates/welcome_email.yaml": """\
kind: template
name: welcome_email
channel: email
subject: "Welcome, {{ record.first_name }}!"
text: "Hi {{ record.first_name }}, glad you are here."
""",
    "flows/team.yaml": """\
kind: team
name: success
manager: ada
members:
  - {user: ada}
  - {user: bob}
""",
    "flows/welcome.yaml": """\
kind: flow
name: welcome
object: contact
trigger: {type: record_created}
conditions: {field: stage, op: eq, value: customer}
steps:
  - id: mail
    action: send_email
    to: "{{ record.email }}"
    template: welcome_email
    retry: {attempts: 2, delay: 10m}
  - id: assign
    action: assign_record
    strategy: round_robin
    team: success
  - id: call
    action: create_task
    subject: "Call {{ record.first_name }}"
    assignee: "{{ record.owner.id }}"
    due: 2d
  - id: pause
    wait: {for: 3d}
  - id: check_in
    action: log
    message: "three days since the welcome"
""",
    "tests/fixtures/contacts.yaml": """\
- {object: user, id: ada, name: Ada, email: ada@acme.example}
- {object: user, id: bob, name: Bob, email: bob@acme.example}
- {object: contact, id: c-1, first_name: Ann, email: ann@example.com, stage: customer}
- {object: contact, id: c-2, first_name: Ben, email: ben@example.com, stage: lead}
""",
    "tests/flows/welcome.yaml": """\
kind: flow_test
name: a new customer is welcomed and assigned
records: [tests/fixtures/contacts.yaml]
events:
  - {at: 0s, type: record_created, object: contact, id: c-1}
  - {at: 1h, type: record_created, object: contact, id: c-2}
run_for: 5d
faults:
  - {flow: welcome, step: mail, error: "HTTP 503", times: 1}
expect:
  runs: [{flow: welcome, record: c-1, status: succeeded, count: 1}, {flow: welcome, count: 1}]
  messages:
    - {channel: email, to: ann@example.com, subject_contains: Welcome, at: "2026-01-05T09:10:00Z"}
  tasks: [{subject_contains: Call Ann, assignee: ada, status: not_started}]
  records: [{object: contact, id: c-1, fields: {owner: ada}}]
  timeline: [{record: c-1, contains: three days since}]
  no_messages_to: [ben@example.com]
""",
}


def write_repo(root: Path, extra: dict[str, str] | None = None) -> Path:
    for rel, text in {**FILES, **(extra or {})}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
