"""One defect per input, each reported with its code at the exact file:line:col.

Every case adds (or replaces) files in the small valid repository from
conftest.py; the report must hold exactly the expected diagnostics: nothing
missed, nothing extra, no traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowctl.check.validate import validate_path
from flowctl.cli.main import app

from .sample_repo import BASE_FILES, write_repo


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]
    # (code, file, line, column); severity "error" unless listed in `warnings`
    expect: list[tuple[str, str, int, int]]
    warnings: set[str] = field(default_factory=set)


def flow(
    body: str, name: str = "broken", head: str = "object: contact\ntrigger: {type: record_created}\n"
) -> str:
    """A flow file: kind and name on lines 1-2, then `head` (2 lines by default), then `body`."""
    return f"kind: flow\nname: {name}\n{head}{body}"


# flow(...) puts `steps:` on line 5 and the first step's `- id:` on line 6 (column 3, the `id` key at 5).
LOG_STEP = "  - id: a\n    action: log\n    message: hi\n"

CASES: list[Case] = [
    # ---------------------------------------------------------------- files and YAML
    Case(
        "yaml-syntax",
        {"flows/b.yaml": "kind: flow\nname: b\nsteps: [a, b\n"},
        [("yaml-syntax", "flows/b.yaml", 4, 1)],
    ),
    Case(
        "yaml-duplicate-key",
        {"flows/b.yaml": "kind: flow\nname: b\nobject: contact\nname: c\n"},
        [("yaml-duplicate-key", "flows/b.yaml", 4, 1)],
    ),
    Case("empty-file", {"flows/b.yaml": ""}, [("file-empty", "flows/b.yaml", 1, 1)]),
    Case("comment-only-file", {"flows/b.yaml": "# nothing yet\n"}, [("file-empty", "flows/b.yaml", 1, 1)]),
    Case(
        "list-not-mapping",
        {"flows/b.yaml": "- kind: flow\n- name: b\n"},
        [("file-not-mapping", "flows/b.yaml", 1, 1)],
    ),
    Case(
        "scalar-not-mapping",
        {"flows/b.yaml": "just some words\n"},
        [("file-not-mapping", "flows/b.yaml", 1, 1)],
    ),
    Case(
        "binary-file",
        {"flows/b.yaml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"},
        [("file-binary", "flows/b.yaml", 1, 1)],
    ),
    Case(
        "tab-indented",
        {"flows/b.yaml": "kind: flow\nname: b\nsteps:\n\t- id: a\n"},
        [("yaml-tab", "flows/b.yaml", 4, 1)],
    ),
    Case(
        "ten-megabytes",
        {"flows/b.yaml": "# " + "x" * (10 * 1024 * 1024) + "\n"},
        [("file-too-large", "flows/b.yaml", 1, 1)],
    ),
    Case(
        "not-utf8",
        {"flows/b.yaml": b"kind: flow\nname: b\ndescription: caf\xe9\n"},
        [("file-encoding", "flows/b.yaml", 3, 1)],
    ),
    Case(
        "two-documents",
        {"flows/b.yaml": "kind: team\nname: a\n---\nkind: team\nname: b\n"},
        [("yaml-multiple-documents", "flows/b.yaml", 4, 1)],
    ),
    Case(
        "impossible-date",
        {
            "flows/calendars/c.yaml": "kind: calendar\nname: c\ntimezone: UTC\nweekly: {mon: ['09:00-17:00']}\nholidays: [2026-13-01]\n"
        },
        [("yaml-bad-value", "flows/calendars/c.yaml", 5, 12)],
    ),
    Case(
        "unknown-yaml-tag",
        {"flows/b.yaml": "kind: !shout flow\nname: b\n"},
        [("yaml-bad-value", "flows/b.yaml", 1, 7)],
    ),
    Case(
        "config-unknown-key", {"flowctl.yaml": "projct: x\n"}, [("schema-unknown-key", "flowctl.yaml", 1, 1)]
    ),
    # ---------------------------------------------------------------- schema
    Case(
        "unknown-key",
        {"flows/b.yaml": flow("descripton: misspelt\nsteps:\n" + LOG_STEP)},
        [("schema-unknown-key", "flows/b.yaml", 5, 1)],
    ),
    Case(
        "unknown-key-nested-step",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    if: {field: email, op: is_set}\n    then:\n      - {id: b, action: log, mesage: hi}\n"
            )
        },
        [("schema-unknown-key", "flows/b.yaml", 9, 30)],
    ),
    Case(
        "missing-key",
        {"flows/b.yaml": "kind: flow\nname: b\nobject: contact\nsteps:\n" + LOG_STEP},
        [("schema-missing-key", "flows/b.yaml", 1, 1)],
    ),
    Case(
        "wrong-type",
        {"flows/b.yaml": flow("enabled: maybe\nsteps:\n" + LOG_STEP)},
        [("schema-type", "flows/b.yaml", 5, 10)],
    ),
    Case(
        "wrong-type-union",
        {"flows/b.yaml": flow("steps:\n  - id: a\n    action: notify\n    to: 5\n    message: hi\n")},
        [("schema-type", "flows/b.yaml", 8, 9)],
    ),
    Case(
        "bad-on-failure",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: hi\n    on_failure: retry\n"
            )
        },
        [("schema-type", "flows/b.yaml", 9, 17)],
    ),
    Case(
        "bad-duration",
        {"flows/b.yaml": flow("steps:\n  - id: a\n    wait: {for: 3 days}\n")},
        [("bad-duration", "flows/b.yaml", 7, 17)],
    ),
    Case(
        "bad-cron",
        {"flows/b.yaml": flow(LOG_STEP, head="trigger: {type: schedule, cron: '61 * * * *'}\nsteps:\n")},
        [("bad-cron", "flows/b.yaml", 3, 33)],
    ),
    Case(
        "bad-timezone",
        {"flows/b.yaml": flow("timezone: Europe/Berln\nsteps:\n" + LOG_STEP)},
        [("bad-timezone", "flows/b.yaml", 5, 11)],
    ),
    Case(
        "bad-name",
        {"flows/b.yaml": flow("steps:\n" + LOG_STEP, name="Welcome Flow")},
        [("bad-name", "flows/b.yaml", 2, 7)],
    ),
    Case(
        "unknown-kind",
        {"flows/b.yaml": "kind: flwo\nname: b\n"},
        [("schema-unknown-kind", "flows/b.yaml", 1, 7)],
    ),
    Case(
        "unknown-action",
        {"flows/b.yaml": flow("steps:\n  - id: a\n    action: send_emial\n    to: x@example.com\n")},
        [("schema-unknown-step", "flows/b.yaml", 7, 13)],
    ),
    Case(
        "unknown-operator",
        {"flows/b.yaml": flow("conditions: {field: email, op: equals, value: x}\nsteps:\n" + LOG_STEP)},
        [("schema-unknown-operator", "flows/b.yaml", 5, 32)],
    ),
    Case(
        "unknown-trigger-type",
        {
            "flows/b.yaml": flow(
                "steps:\n" + LOG_STEP, head="object: contact\ntrigger: {type: record_creatd}\n"
            )
        },
        [("schema-unknown-trigger", "flows/b.yaml", 4, 17)],
    ),
    # ---------------------------------------------------------------- names and references
    Case(
        "duplicate-name",
        {"flows/b.yaml": flow("steps:\n" + LOG_STEP, name="welcome")},
        [("duplicate-name", "flows/welcome.yaml", 2, 7)],
    ),
    Case(
        "unknown-template",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: send_email\n    to: x@example.com\n    template: welcom_email\n"
            )
        },
        [("unknown-template", "flows/b.yaml", 9, 15)],
    ),
    Case(
        "wrong-channel-template",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: send_sms\n    to: '+15550100'\n    template: welcome_email\n"
            )
        },
        [("template-wrong-channel", "flows/b.yaml", 9, 15)],
    ),
    Case(
        "unknown-calendar",
        {"flows/b.yaml": flow("steps:\n  - id: a\n    wait: {calendar: support-hour}\n")},
        [("unknown-calendar", "flows/b.yaml", 7, 22)],
    ),
    Case(
        "unknown-team",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: assign_record\n    strategy: round_robin\n    team: suport\n"
            )
        },
        [("unknown-team", "flows/b.yaml", 9, 11)],
    ),
    Case(
        "unknown-object",
        {
            "flows/b.yaml": flow(
                "steps:\n" + LOG_STEP, head="object: contcat\ntrigger: {type: record_created}\n"
            )
        },
        [("unknown-object", "flows/b.yaml", 3, 9)],
    ),
    Case(
        "unknown-call-flow",
        {"flows/b.yaml": flow("steps:\n  - id: a\n    call_flow: {flow: welcom, wait: true}\n")},
        [("unknown-flow", "flows/b.yaml", 7, 23)],
    ),
    Case(
        "unknown-goto-target",
        {"flows/b.yaml": flow("steps:\n" + LOG_STEP + "  - id: b\n    goto: aa\n")},
        [("unknown-goto-target", "flows/b.yaml", 10, 11)],
    ),
    Case(
        "unknown-on-failure-goto",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: hi\n    on_failure: {goto: nowhere}\n"
            )
        },
        [("unknown-goto-target", "flows/b.yaml", 9, 24)],
    ),
    Case(
        "duplicate-step-id-nested",
        {
            "flows/b.yaml": flow(
                "steps:\n"
                + LOG_STEP
                + "  - id: b\n    if: {field: email, op: is_set}\n    then:\n      - {id: a, action: log, message: again}\n"
            )
        },
        [("duplicate-step-id", "flows/b.yaml", 12, 14)],
    ),
    Case(
        "missing-step-id",
        {"flows/b.yaml": flow("steps:\n  - action: log\n    message: hi\n")},
        [("missing-step-id", "flows/b.yaml", 6, 5)],
    ),
    Case(
        "unknown-field-in-condition",
        {"flows/b.yaml": flow("conditions: {field: frist_name, op: is_set}\nsteps:\n" + LOG_STEP)},
        [("unknown-field", "flows/b.yaml", 5, 21)],
    ),
    Case(
        "bad-dotted-ref-path",
        {
            "flows/b.yaml": flow(
                "conditions: {field: account.industy, op: eq, value: tech}\nsteps:\n" + LOG_STEP
            )
        },
        [("unknown-field", "flows/b.yaml", 5, 21)],
    ),
    Case(
        "dotted-path-through-non-ref",
        {
            "flows/b.yaml": flow(
                "conditions: {field: first_name.length, op: gt, value: 3}\nsteps:\n" + LOG_STEP
            )
        },
        [("field-not-a-ref", "flows/b.yaml", 5, 21)],
    ),
    Case(
        "unknown-field-in-set",
        {"flows/b.yaml": flow("steps:\n  - id: a\n    action: update_record\n    set: {stgae: customer}\n")},
        [("unknown-field", "flows/b.yaml", 8, 11)],
    ),
    Case(
        "unknown-field-on-ref-record",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: update_record\n    record: account\n    set: {industri: tech}\n"
            )
        },
        [("unknown-field", "flows/b.yaml", 9, 11)],
    ),
    Case(
        "unknown-skills-field",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: assign_record\n    strategy: skills\n    team: support\n    skills_from: skils\n"
            )
        },
        [("unknown-field", "flows/b.yaml", 10, 18)],
    ),
    Case(
        "unknown-trigger-field",
        {
            "flows/b.yaml": flow(
                "steps:\n" + LOG_STEP, head="object: contact\ntrigger: {type: field_changed, field: stag}\n"
            )
        },
        [("unknown-field", "flows/b.yaml", 4, 39)],
    ),
    Case(
        "unknown-sla-field",
        {
            "flows/sla2.yaml": "kind: sla_policy\nname: sla2\nobject: case\napplies_when: {field: priorty, op: eq, value: high}\ntargets:\n  - {default: true, first_response: 4h}\n"
        },
        [("unknown-field", "flows/sla2.yaml", 4, 23)],
    ),
    # ---------------------------------------------------------------- types
    Case(
        "gt-on-string",
        {"flows/b.yaml": flow("conditions: {field: first_name, op: gt, value: m}\nsteps:\n" + LOG_STEP)},
        [("condition-op-not-for-type", "flows/b.yaml", 5, 37)],
    ),
    Case(
        "within-last-on-number",
        {"flows/b.yaml": flow("conditions: {field: score, op: within_last, value: 7d}\nsteps:\n" + LOG_STEP)},
        [("condition-op-not-for-type", "flows/b.yaml", 5, 32)],
    ),
    Case(
        "bad-enum-value",
        {"flows/b.yaml": flow("conditions: {field: tier, op: eq, value: platinum}\nsteps:\n" + LOG_STEP)},
        [("bad-enum-value", "flows/b.yaml", 5, 42)],
    ),
    Case(
        "bad-enum-value-in-list",
        {
            "flows/b.yaml": flow(
                "conditions: {field: tier, op: in, value: [gold, silver]}\nsteps:\n" + LOG_STEP
            )
        },
        [("bad-enum-value", "flows/b.yaml", 5, 49)],
    ),
    Case(
        "boolean-set-to-string",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: update_record\n    set: {email_opt_out: 'yes'}\n"
            )
        },
        [("value-type-mismatch", "flows/b.yaml", 8, 26)],
    ),
    Case(
        "changed-to-on-create",
        {
            "flows/b.yaml": flow(
                "conditions: {field: stage, op: changed_to, value: customer}\nsteps:\n" + LOG_STEP
            )
        },
        [("condition-change-op-on-create", "flows/b.yaml", 5, 32)],
    ),
    Case(
        "changed-on-schedule",
        {
            "flows/b.yaml": flow(
                "  - id: a\n    when: {field: stage, op: changed}\n    action: log\n    message: hi\n",
                head="object: contact\ntrigger: {type: schedule, cron: '0 9 * * *'}\nsteps:\n",
            )
        },
        [("condition-change-op-without-update", "flows/b.yaml", 7, 30)],
    ),
    Case(
        "date-trigger-on-string",
        {
            "flows/b.yaml": flow(
                "steps:\n" + LOG_STEP, head="object: contact\ntrigger: {type: date, field: first_name}\n"
            )
        },
        [("date-trigger-not-date", "flows/b.yaml", 4, 30)],
    ),
    Case(
        "bad-regex",
        {
            "flows/b.yaml": flow(
                "conditions: {field: email, op: matches, value: '([a-z'}\nsteps:\n" + LOG_STEP
            )
        },
        [("bad-regex", "flows/b.yaml", 5, 48)],
    ),
    # ---------------------------------------------------------------- templates
    Case(
        "undefined-template-field",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: 'Hello {{ record.frist_name }}'\n"
            )
        },
        [("template-unknown-field", "flows/b.yaml", 8, 24)],
    ),
    Case(
        "undefined-template-field-through-ref",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: '{{ record.account.industy }}'\n"
            )
        },
        [("template-unknown-field", "flows/b.yaml", 8, 18)],
    ),
    Case(
        "undefined-field-in-template-file",
        {
            "templates/welcome_email.yaml": BASE_FILES["templates/welcome_email.yaml"].replace(
                "Your account: {{ record.account.name }}", "Your account: {{ record.acount.name }}"
            )
        },
        [("template-unknown-field", "templates/welcome_email.yaml", 8, 23)],
    ),
    Case(
        "undefined-variable",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: '{{ recrod.first_name }}'\n"
            )
        },
        [("template-undefined-variable", "flows/b.yaml", 8, 18)],
    ),
    Case(
        "undefined-filter",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: '{{ record.first_name | shout }}'\n"
            )
        },
        [("template-unknown-filter", "flows/b.yaml", 8, 38)],
    ),
    Case(
        "template-syntax-error-inside-file",
        {
            "templates/welcome_email.yaml": BASE_FILES["templates/welcome_email.yaml"].replace(
                "<p>Your account: {{ record.account.name }}</p>",
                "<p>Your account: {{ record.account.name }</p>",
            )
        },
        [("template-syntax", "templates/welcome_email.yaml", 8, 3)],
    ),
    Case(
        "steps-not-earlier",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: '{{ steps.b.output }}'\n  - id: b\n    action: log\n    message: later\n"
            )
        },
        [("template-step-not-earlier", "flows/b.yaml", 8, 18)],
    ),
    Case(
        "steps-unknown",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: '{{ steps.fetch.output }}'\n"
            )
        },
        [("template-unknown-step", "flows/b.yaml", 8, 18)],
    ),
    Case(
        "sla-outside-sla",
        {"flows/b.yaml": flow("steps:\n  - id: a\n    action: log\n    message: 'due {{ sla.due_at }}'\n")},
        [("template-sla-outside-sla", "flows/b.yaml", 8, 22)],
    ),
    Case(
        "expr-condition-unknown-field",
        {"flows/b.yaml": flow("conditions: {expr: 'record.scor > 10'}\nsteps:\n" + LOG_STEP)},
        [("template-unknown-field", "flows/b.yaml", 5, 21)],
    ),
    Case(
        "template-syntax-error-in-step",
        {"flows/b.yaml": flow("steps:\n  - id: a\n    action: log\n    message: '{{ record.first_name }'\n")},
        [("template-syntax", "flows/b.yaml", 8, 15)],
    ),
    Case(
        "undefined-test",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: log\n    message: '{% if record.score is big %}!{% endif %}'\n"
            )
        },
        [("template-unknown-test", "flows/b.yaml", 8, 37)],
    ),
    Case(
        "whatsapp-step-with-sms-template",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: send_whatsapp\n    to: '+15550100'\n    template: welcome_sms\n"
            )
        },
        [("template-wrong-channel", "flows/b.yaml", 9, 15)],
    ),
    Case(
        "create-record-unknown-object",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    action: create_record\n    object: tsk\n    values: {subject: x}\n"
            )
        },
        [("unknown-object", "flows/b.yaml", 8, 13)],
    ),
    # ---------------------------------------------------------------- graph
    Case(
        "unreachable-after-stop",
        {
            "flows/b.yaml": flow(
                "steps:\n  - id: a\n    stop: {status: succeeded}\n  - id: b\n    action: log\n    message: never\n"
            )
        },
        [("unreachable-step", "flows/b.yaml", 8, 5)],
        warnings={"unreachable-step"},
    ),
    Case(
        "goto-loop-without-wait",
        {"flows/b.yaml": flow("steps:\n" + LOG_STEP + "  - id: again\n    goto: a\n")},
        [("goto-loop-without-wait", "flows/b.yaml", 10, 11)],
    ),
    # ---------------------------------------------------------------- across flows
    Case(
        "flow-trigger-cycle",
        {
            "flows/ping.yaml": flow(
                "steps:\n  - id: p\n    action: update_record\n    set: {stage: lead}\n",
                name="ping",
                head="object: contact\ntrigger: {type: field_changed, field: tier}\n",
            ),
            "flows/pong.yaml": flow(
                "steps:\n  - id: p\n    action: update_record\n    set: {tier: gold}\n",
                name="pong",
                head="object: contact\ntrigger: {type: record_updated, fields: [stage]}\n",
            ),
        },
        [("flow-trigger-cycle", "flows/ping.yaml", 4, 10), ("flow-trigger-cycle", "flows/pong.yaml", 4, 10)],
    ),
    Case(
        "field-write-conflict",
        {
            "flows/one.yaml": flow(
                "steps:\n  - id: s\n    action: update_record\n    set: {stage: lead}\n", name="one"
            ),
            "flows/two.yaml": flow(
                "steps:\n  - id: s\n    action: update_record\n    set: {stage: customer}\n", name="two"
            ),
        },
        [
            ("field-write-conflict", "flows/one.yaml", 8, 18),
            ("field-write-conflict", "flows/two.yaml", 8, 18),
        ],
        warnings={"field-write-conflict"},
    ),
    # ---------------------------------------------------------------- SLA and flow tests
    Case(
        "sla-target-in-days",
        {"flows/sla.yaml": BASE_FILES["flows/sla.yaml"].replace("first_response: 8h", "first_response: 1d")},
        [("sla-target-in-days", "flows/sla.yaml", 9, 21)],
        warnings={"sla-target-in-days"},
    ),
    Case(
        "test-unknown-flow",
        {"tests/flows/b.yaml": "kind: flow_test\nname: b\nflows: [welcom]\n"},
        [("unknown-flow", "tests/flows/b.yaml", 3, 9)],
    ),
    Case(
        "test-missing-fixture",
        {"tests/flows/b.yaml": "kind: flow_test\nname: b\nrecords:\n  - tests/fixtures/nope.yaml\n"},
        [("missing-fixture-file", "tests/flows/b.yaml", 4, 5)],
    ),
    Case(
        "fixture-unknown-field",
        {
            "tests/fixtures/contacts.yaml": "- {object: contact, id: c-1, first_name: A}\n- {object: contact, id: c-2, frist_name: B}\n"
        },
        [("unknown-field", "tests/fixtures/contacts.yaml", 2, 30)],
    ),
]


def _report(tmp_path: Path, case: Case):
    root = write_repo(tmp_path / "repo", case.files)
    return validate_path(root)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_input(tmp_path: Path, case: Case) -> None:
    report = _report(tmp_path, case)
    got = sorted((d.code, d.range.file, d.range.line, d.range.column) for d in report.diagnostics)
    assert got == sorted(case.expect), "\n".join(
        f"{d.location} {d.code} {d.summary}" for d in report.diagnostics
    )
    for d in report.diagnostics:
        assert d.severity == ("warning" if d.code in case.warnings else "error"), d
        assert d.summary and "Traceback" not in d.summary
    assert report.valid == (not any(d.severity == "error" for d in report.diagnostics))


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 45
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_never_prints_a_traceback(tmp_path: Path, case: Case) -> None:
    root = write_repo(tmp_path / "repo", case.files)
    for fmt in ("text", "json", "github"):
        result = CliRunner().invoke(app, ["validate", str(root), "--format", fmt])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        expect_fail = any(code not in case.warnings for code, *_ in case.expect)
        assert result.exit_code == (1 if expect_fail else 0), result.output
