"""The passes on inputs that must NOT be reported, and finer points of what is."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowctl.check.context import CheckContext
from flowctl.check.validate import run_passes, validate_path
from flowctl.resources.bundle import Bundle
from flowctl.resources.models import ProjectConfig
from flowctl.resources.project import Project, load_project

from .sample_repo import write_repo

HEAD = "kind: flow\nname: f\nobject: contact\ntrigger: {type: record_created}\n"


def codes(tmp_path: Path, files: dict[str, str | bytes]) -> list[str]:
    report = validate_path(write_repo(tmp_path / "repo", files))
    return [d.code for d in report.diagnostics]


# --------------------------------------------------------------------------- graph


@pytest.mark.parametrize(
    "steps",
    [
        # A loop that waits is a polling loop, not a spin.
        "  - id: check\n    action: log\n    message: poll\n  - id: pause\n    wait: {for: 1h}\n  - id: again\n    goto: check\n",
        # An approval in the loop waits for people.
        "  - id: ask\n    action: approval\n    title: ok?\n    approvers: [a]\n    on_reject:\n      - {id: back, goto: ask}\n",
        # A call_flow that waits for its child.
        "  - id: child\n    call_flow: {flow: welcome, wait: true}\n  - id: loop\n    goto: child\n",
        # A forward goto skips steps that a later goto reaches again.
        "  - id: a\n    goto: c\n  - id: b\n    action: log\n    message: b\n  - id: c\n    if: {field: email, op: is_set}\n    then:\n      - {id: w, wait: {for: 1d}}\n      - {id: back, goto: b}\n",
        # A step after an if whose branch stops is reachable through the other branch.
        "  - id: a\n    if: {field: email, op: is_set}\n    then:\n      - {id: s, stop: {status: succeeded}}\n  - id: b\n    action: log\n    message: b\n",
        # `when` can skip a goto, so what follows is reachable.
        "  - id: a\n    action: log\n    message: a\n  - id: w\n    wait: {for: 1d}\n  - id: g\n    goto: a\n    when: {field: email, op: is_set}\n  - id: b\n    action: log\n    message: b\n",
    ],
    ids=[
        "loop-with-wait",
        "loop-through-approval",
        "loop-through-waiting-call",
        "forward-goto",
        "one-branch-stops",
        "conditional-goto",
    ],
)
def test_graph_accepts(tmp_path: Path, steps: str) -> None:
    assert codes(tmp_path, {"flows/f.yaml": HEAD + "steps:\n" + steps}) == []


def test_unreachable_run_is_one_diagnostic_listing_every_step(tmp_path: Path) -> None:
    steps = (
        "  - id: a\n    stop: {status: failed, reason: no}\n"
        "  - id: b\n    if: {field: email, op: is_set}\n    then:\n      - {id: c, action: log, message: c}\n"
        "  - id: d\n    action: log\n    message: d\n"
    )
    report = validate_path(write_repo(tmp_path / "repo", {"flows/f.yaml": HEAD + "steps:\n" + steps}))
    [diag] = report.diagnostics
    assert (diag.code, diag.severity, diag.range.line) == ("unreachable-step", "warning", 8)
    assert diag.summary == "steps 'b', 'd' can never run"


def test_if_whose_branches_both_stop_makes_the_next_step_unreachable(tmp_path: Path) -> None:
    steps = (
        "  - id: a\n    if: {field: email, op: is_set}\n"
        "    then: [{id: s1, stop: {status: succeeded}}]\n    else: [{id: s2, stop: {status: failed}}]\n"
        "  - id: b\n    action: log\n    message: b\n"
    )
    assert codes(tmp_path, {"flows/f.yaml": HEAD + "steps:\n" + steps}) == ["unreachable-step"]


def test_on_failure_goto_loop_is_reported(tmp_path: Path) -> None:
    steps = (
        "  - id: push\n    action: webhook\n    url: https://erp.example/x\n    on_failure: {goto: push}\n"
    )
    report = validate_path(write_repo(tmp_path / "repo", {"flows/f.yaml": HEAD + "steps:\n" + steps}))
    [diag] = report.diagnostics
    assert diag.code == "goto-loop-without-wait"
    assert (diag.range.line, diag.range.column) == (9, 24)


# --------------------------------------------------------------------------- across flows


def _flow(name: str, trigger: str, sets: str, extra: str = "") -> str:
    return (
        f"kind: flow\nname: {name}\nobject: contact\ntrigger: {trigger}\n{extra}"
        f"steps:\n  - id: s\n    action: update_record\n    set: {sets}\n"
    )


def test_flow_that_triggers_itself(tmp_path: Path) -> None:
    files = {"flows/self.yaml": _flow("self", "{type: record_updated}", "{last_contacted_at: '{{ now }}'}")}
    report = validate_path(write_repo(tmp_path / "repo", files))
    [diag] = report.diagnostics
    assert diag.code == "flow-trigger-cycle" and "triggers itself" in diag.summary


@pytest.mark.parametrize(
    "files",
    [
        # reentry: never ends the cycle: the flow cannot run twice for one record.
        {"flows/self.yaml": _flow("self", "{type: record_updated}", "{score: 1}", extra="reentry: never\n")},
        # record_updated narrowed to other fields.
        {"flows/self.yaml": _flow("self", "{type: record_updated, fields: [email]}", "{score: 1}")},
        # field_changed into a value the other flow never writes.
        {
            "flows/a.yaml": _flow("a", "{type: field_changed, field: tier, to: gold}", "{stage: lead}"),
            "flows/b.yaml": _flow("b", "{type: field_changed, field: stage}", "{tier: premium}"),
        },
        # It starts only when its conditions turn true, and it does not write what they read.
        {
            "flows/self.yaml": _flow(
                "self",
                "{type: record_updated, when_conditions_become_true: true}",
                "{score: 1}",
                extra="conditions: {field: stage, op: eq, value: customer}\n",
            )
        },
        # A disabled flow processes no triggers.
        {
            "flows/a.yaml": _flow("a", "{type: field_changed, field: tier}", "{stage: lead}"),
            "flows/b.yaml": _flow(
                "b", "{type: field_changed, field: stage}", "{tier: gold}", extra="enabled: false\n"
            ),
        },
    ],
    ids=["reentry-never", "fields-narrowed", "to-value-never-written", "conditions-become-true", "disabled"],
)
def test_no_trigger_cycle(tmp_path: Path, files: dict[str, str | bytes]) -> None:
    assert codes(tmp_path, files) == []


def test_same_value_or_different_trigger_is_no_conflict(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "flows/one.yaml": _flow("one", "{type: record_created}", "{stage: lead}"),
        "flows/two.yaml": _flow("two", "{type: record_created}", "{stage: lead}"),
        "flows/three.yaml": _flow("three", "{type: record_deleted}", "{stage: churned}"),
        "flows/four.yaml": _flow("four", "{type: record_created}", "{stage: '{{ record.stage }}'}"),
    }
    assert codes(tmp_path, files) == []


# --------------------------------------------------------------------------- references and types


def test_everything_the_spec_allows_is_accepted(tmp_path: Path) -> None:
    flow = (
        "kind: flow\nname: f\nobject: contact\ntimezone: Europe/Berlin\n"
        "trigger: {type: record_updated, fields: [stage, account.industry], when_conditions_become_true: true}\n"
        "conditions:\n  all:\n    - {field: stage, op: changed_to, value: customer}\n"
        "    - {not: {field: account.industry, op: in, value: [retail]}}\n"
        "    - {field: birthday, op: before, value: 2000-01-01}\n"
        "    - {field: score, op: between, value: [1, 5.5]}\n"
        "    - {field: tags, op: contains, value: vip}\n"
        "    - {field: email, op: ends_with, value: '@example.com'}\n"
        "    - {expr: \"record.score > 3 and trigger.type == 'record_updated' and record.owner.name is defined\"}\n"
        "steps:\n"
        "  - id: fetch\n    action: webhook\n    url: 'https://crm.example/{{ record.id }}'\n"
        "    body: {name: '{{ record.first_name | title }}', when: '{{ now }}', key: '{{ secrets.API_KEY }}'}\n"
        "  - id: set\n    action: update_record\n    record: account\n    set: {industry: tech, renewal_date: '{{ now }}'}\n"
        "  - id: tell\n    action: notify\n    to: \"{{ team('support').manager }}\"\n"
        '    message: "{% for t in record.tags %}{{ t | upper }}{{ loop.index }}{% endfor %} {{ steps.fetch.output.json.x }}"\n'
        "  - id: route\n    switch:\n      cases:\n        - when: {field: tier, op: eq, value: gold}\n"
        '          steps: [{id: big, action: log, message: "{{ record.account.name }} {{ run.id }}"}]\n'
        "      default: [{id: small, action: log, message: small}]\n"
        '  - id: until\n    wait: {until: "{{ record.account.renewal_date }}T09:00"}\n'
        "  - id: paid\n    wait: {until_condition: {field: stage, op: eq, value: customer}, timeout: 3d}\n"
        "    on_failure: continue\n"
        "  - id: create\n    action: create_record\n    object: task\n    values: {subject: hi, priority: high}\n"
        "  - id: email\n    action: send_email\n    to: '{{ record.email }}'\n"
        "    variants: [{template: welcome_email, weight: 2}, {template: welcome_email}]\n"
    )
    files: dict[str, str | bytes] = {"flows/f.yaml": flow}
    assert codes(tmp_path, files) == []


def test_changed_operators_are_fine_in_sla_policies_and_waits(tmp_path: Path) -> None:
    sla = (
        "kind: sla_policy\nname: s\nobject: case\n"
        "targets:\n  - {when: {field: priority, op: changed_to, value: high}, resolution: 4h}\n"
        "  - {default: true, resolution: 8h}\n"
        "on_breach:\n  - {action: notify, to: '{{ record.assignee.id }}', message: '{{ sla.clock }} {{ sla.elapsed }}'}\n"
    )
    wait = (
        HEAD
        + "steps:\n  - id: w\n    wait: {until_condition: {field: stage, op: changed_to, value: customer}}\n"
    )
    assert codes(tmp_path, {"flows/s.yaml": sla, "flows/w.yaml": wait}) == []


def test_unused_template_is_checked_too(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "templates/spare.yaml": "kind: template\nname: spare\nchannel: sms\nobject: contact\nbody: '{{ record.nme }}'\n"
    }
    assert codes(tmp_path, files) == ["template-unknown-field"]


def test_template_checked_against_each_users_object(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "templates/note.yaml": "kind: template\nname: note\nchannel: email\nsubject: 'Re: {{ record.subject }}'\ntext: hi\n",
        "flows/f.yaml": HEAD + "steps:\n  - {id: a, action: send_email, to: x@example.com, template: note}\n",
    }
    report = validate_path(write_repo(tmp_path / "repo", files))
    [diag] = report.diagnostics
    assert diag.code == "template-unknown-field"
    assert (diag.range.file, diag.range.line, diag.range.column) == ("templates/note.yaml", 4, 18)
    assert diag.summary == "record.subject: contact has no field 'subject'"


def test_template_object_must_match_the_flow(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "flows/f.yaml": HEAD.replace("object: contact", "object: case")
        + "steps:\n  - {id: a, action: send_email, to: x@example.com, template: welcome_email}\n"
    }
    assert codes(tmp_path, files) == ["template-object-mismatch"]


def test_schema_error_does_not_cascade_into_reference_errors(tmp_path: Path) -> None:
    # The broken template fails the schema; the flow using it reports nothing more than that.
    files: dict[str, str | bytes] = {
        "templates/welcome_sms.yaml": "kind: template\nname: welcome_sms\nchannel: sms\n"
    }
    report = validate_path(write_repo(tmp_path / "repo", files))
    assert [d.code for d in report.diagnostics] == ["schema-bad-value"]


def test_passes_run_on_a_project_without_sources() -> None:
    """The runner checks applied bundles with the same passes; nothing has a file there."""
    root = Path(__file__).resolve().parents[2]
    project = load_project(root)
    bundle = Bundle.from_project(project).typed()
    bare = Project(
        root=Path("."),
        config=ProjectConfig(),
        flows=dict(bundle.flows),
        sla_policies=dict(bundle.sla_policies),
        calendars=dict(bundle.calendars),
        teams=dict(bundle.teams),
        templates=dict(bundle.templates),
        defined_objects=dict(bundle.defined_objects),
    )
    diags = run_passes(CheckContext(bare))
    assert not [d for d in diags if d.code == "internal-error"]


def test_example_repository_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    if not (root / "flows").is_dir():
        pytest.skip("the example repository is not there yet")
    report = validate_path(root)
    assert report.error_count == 0, [f"{d.location} {d.code} {d.summary}" for d in report.diagnostics]
