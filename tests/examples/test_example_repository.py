"""The example flows repository at the root: it loads cleanly, covers every seed scenario, and its
fixtures, flow tests and sample events agree with the object schemas and with each other."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.engine.state import Event
from flowctl.resources.models import (
    Approval,
    ApproverEntry,
    AssignRecord,
    DateTrigger,
    EventTrigger,
    FieldChangedTrigger,
    FieldDef,
    FlowTest,
    Holiday,
    LeafCondition,
    MergeDuplicates,
    Webhook,
)
from flowctl.resources.project import Project, load_project, load_records_file

from .repo import ROOT, load_yaml, schema_name_for, yaml_files

SYSTEM_KEYS = {"object", "id", "created_at", "updated_at"}
T = TypeVar("T")


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


def _registered(command: str) -> bool:
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    return command in names


def test_repository_loads_without_diagnostics(project: Project) -> None:
    assert project.config.project == "acme-crm"
    assert [d.model_dump() for d in project.diagnostics] == []
    assert set(project.defined_objects) >= {"lead", "contact", "account", "deal", "case"}
    assert set(project.teams) == {"support", "customer-success", "sales", "legal"}
    assert set(project.calendars) == {"support-hours"}
    assert set(project.sla_policies) == {"support-sla"}
    assert set(project.templates) >= {
        "welcome_email", "welcome_sms", "welcome_whatsapp", "csat_survey", "renewal_reminder",
        "birthday_greeting", "nurture_intro", "nurture_case_study", "nurture_offer",
    }  # fmt: skip


def test_validate_accepts_the_repository_strictly() -> None:
    if not _registered("validate"):
        pytest.skip("flowctl validate is not part of this build yet")
    result = CliRunner().invoke(app, ["validate", str(ROOT), "--strict"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("test_file", sorted(p.name for p in (ROOT / "tests/flows").glob("*.yaml")))
def test_flow_test_passes(test_file: str) -> None:
    if not _registered("test"):
        pytest.skip("flowctl test is not part of this build yet")
    result = CliRunner().invoke(app, ["test", str(ROOT / "tests/flows" / test_file)])
    assert result.exit_code == 0, result.output


def _step(project: Project, flow: str, step_id: str, model: type[T]) -> T:
    step = next(s for s in project.flows[flow].steps if s.id == step_id)
    assert isinstance(step, model), f"{flow}.{step_id} is a {type(step).__name__}"
    return step


def test_seed_requirements_are_expressed(project: Project) -> None:
    # PowerX C: one approval list, both tasks at once, each with its required documents.
    approvals = _step(project, "proposal-approval", "approvals", Approval)
    assert approvals.mode == "all"
    price, legal = approvals.approvers
    assert isinstance(price, ApproverEntry) and isinstance(legal, ApproverEntry)
    assert (price.title or "").startswith("Price approval") and (legal.title or "").startswith("Legal review")
    assert price.attachments_required == ["quote.pdf", "discount-justification.pdf"]
    assert legal.attachments_required == ["contract-draft.docx", "nda.pdf"]
    # PowerX D: 3 attempts, then a person.
    push = _step(project, "erp-order-sync", "push_order_to_erp", Webhook)
    assert push.retry is not None and push.retry.attempts == 3 and push.on_failure == "compensate"
    # Case A: skills, language, manual dispatch.
    dispatch = _step(project, "ticket-dispatch", "dispatch", AssignRecord)
    assert (dispatch.strategy, dispatch.skills_from, dispatch.language_from, dispatch.fallback) == (
        "skills", "tags", "locale", "manual_dispatch",
    )  # fmt: skip
    li_lei = next(m for m in project.teams["support"].members if m.user == "li.lei")
    assert "api-integration" in li_lei.skills and {"zh", "en"} <= set(li_lei.languages)
    # Case D-2: the exact merge rule.
    merge = _step(project, "duplicate-ticket-merge", "merge", MergeDuplicates)
    assert (merge.match, merge.window, merge.mark_after, merge.mark) == (
        ["customer", "subject"], "1h", 3, {"risk": "suspected_malicious"},
    )  # fmt: skip
    # Case B: 2h response for high priority, pauses on suspended / pending_customer.
    sla = project.sla_policies["support-sla"]
    assert [t.durations["first_response"] for t in sla.targets] == ["1h", "2h", "8h"]
    pause = sla.clocks["resolution"].pause_when
    assert isinstance(pause, LeafCondition) and set(pause.value) == {"pending_customer", "suspended"}
    # Date triggers.
    birthday = project.flows["birthday-greeting"].trigger
    renewal = project.flows["renewal-reminder"].trigger
    assert isinstance(birthday, DateTrigger) and (birthday.repeat, birthday.at) == ("yearly", "09:00")
    assert isinstance(renewal, DateTrigger) and renewal.offset == "-30d"
    # The welcome email's Vietnamese locale and the support calendar.
    assert "vi" in project.templates["welcome_email"].locales
    calendar = project.calendars["support-hours"]
    assert calendar.timezone == "Asia/Shanghai"
    assert calendar.weekly == {"mon-fri": ["09:00-12:00", "13:00-18:00"]}
    assert any(isinstance(h, Holiday) and h.name == "National Day" for h in calendar.holidays)


def _flows_named_by(test: FlowTest) -> set[str]:
    names = set(test.flows or [])
    names |= {r.flow for r in test.expect.runs if r.flow}
    names |= {f.flow for f in test.faults} | {s.flow for s in test.stubs}
    return names


def test_every_flow_and_policy_has_a_flow_test(project: Project) -> None:
    covered: set[str] = set()
    for test in project.tests:
        covered |= _flows_named_by(test)
    assert set(project.flows) - covered == set()
    assert set(project.sla_policies) - covered == set()


@pytest.mark.parametrize(
    "scenario",
    ["PowerX A-1", "PowerX B-1", "PowerX C-1", "PowerX D-1", "Case A-1", "Case B-1", "Case D-1", "Case D-2"],
)
def test_every_seed_test_case_has_a_flow_test(project: Project, scenario: str) -> None:
    assert any(f"{scenario}:" in t.name for t in project.tests), scenario


# --------------------------------------------------------------------------- fixtures


def _fixture_records(project: Project) -> dict[tuple[str, str], dict[str, Any]]:
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((ROOT / "tests/fixtures").glob("*.yaml")):
        rows, _ = load_records_file(path, ROOT)
        for row in rows:
            key = (row["object"], str(row["id"]))
            assert key not in records, f"{path.name}: {key} is defined twice across fixture files"
            records[key] = row
    return records


def _check_value(fd: FieldDef, value: Any, where: str, known_ids: set[tuple[str, str]] | None) -> None:
    if value is None:
        return
    if fd.type == "enum":
        assert value in (fd.values or []), f"{where}: {value!r} is not one of {fd.values}"
    elif fd.type == "ref" and known_ids is not None:
        assert (fd.object, str(value)) in known_ids, f"{where}: no {fd.object} record {value!r}"
    elif fd.type in ("integer",):
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an integer"
    elif fd.type == "number":
        assert isinstance(value, int | float) and not isinstance(value, bool), (
            f"{where}: {value!r} is not a number"
        )
    elif fd.type == "boolean":
        assert isinstance(value, bool), f"{where}: {value!r} is not a boolean"
    elif fd.type == "list":
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
    elif fd.type == "date":
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)), f"{where}: {value!r} is not a date"


def _check_record(
    project: Project, obj: str, row: dict[str, Any], where: str, known: set[tuple[str, str]] | None
) -> None:
    fields = project.object_fields(obj)
    assert fields is not None, f"{where}: unknown object {obj!r}"
    for name, value in row.items():
        if name in SYSTEM_KEYS:
            continue
        assert name in fields, f"{where}: {obj} has no field {name!r}"
        _check_value(fields[name], value, f"{where}.{name}", known)


def test_fixture_records_follow_the_object_schemas(project: Project) -> None:
    records = _fixture_records(project)
    known = set(records)
    for (obj, rid), row in records.items():
        _check_record(project, obj, row, f"{obj}/{rid}", known)
        for name, fd in (project.object_fields(obj) or {}).items():
            if fd.required:
                assert row.get(name) not in (None, ""), f"{obj}/{rid}: required field {name!r} missing"


def test_flow_test_events_refer_to_loaded_records(project: Project) -> None:
    for test in project.tests:
        loaded: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in test.records:
            if isinstance(entry, str):
                assert (ROOT / entry).is_file(), f"{test.name}: no fixture file {entry}"
                rows, _ = load_records_file(ROOT / entry, ROOT)
                loaded |= {(r["object"], str(r["id"])): r for r in rows}
            else:
                loaded[(entry["object"], str(entry["id"]))] = entry
        for event in test.events:
            if event.type in ("record_created", "record_updated", "record_deleted"):
                assert event.object and event.id, f"{test.name}: {event.type} needs object and id"
                assert (event.object, event.id) in loaded, (
                    f"{test.name}: {event.object} {event.id} is not loaded"
                )
                if event.set:
                    _check_record(project, event.object, event.set, f"{test.name}: set", None)
            elif event.type == "event" and isinstance(event.record, str):
                assert event.object and (event.object, event.record) in loaded, f"{test.name}: {event.record}"
        for rec in test.expect.records:
            assert (rec.object, rec.id) in loaded, (
                f"{test.name}: expects unknown record {rec.object} {rec.id}"
            )
            _check_record(project, rec.object, rec.fields, f"{test.name}: expect", None)


# --------------------------------------------------------------------------- sample events


def _sample_events() -> list[tuple[str, Event]]:
    out: list[tuple[str, Event]] = []
    for path in sorted((ROOT / "samples/events").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for item in data if isinstance(data, list) else [data]:
            out.append((path.name, Event.model_validate(item)))
    return out


def test_sample_events_have_the_runner_event_shape_and_match_the_schemas(project: Project) -> None:
    events = _sample_events()
    assert len({name for name, _ in events}) >= 8
    created = {(str(e.object), str(e.record_id)) for _, e in events if e.type == "record_created"}
    keys = [e.idempotency_key for _, e in events]
    assert all(keys) and len(keys) == len(set(keys)), "every sample needs its own idempotency key"
    for name, event in events:
        assert event.object in project.objects, f"{name}: unknown object {event.object}"
        assert event.record_id, f"{name}: record needs an id"
        if event.type == "event":
            names = {f.trigger.name for f in project.flows.values() if isinstance(f.trigger, EventTrigger)}
            assert event.name in names, f"{name}: no flow listens to {event.name}"
            continue
        _check_record(project, str(event.object), event.record, name, created)
        if event.type == "record_updated":
            assert (event.object, event.record_id) in created, f"{name}: updates a record no sample creates"


@pytest.mark.parametrize(
    ("sample", "flow"),
    [
        ("new-premium-contact.json", "welcome-new-customer"),
        ("high-priority-api-case.json", "ticket-dispatch"),
        ("proposal-needs-approval.json", "proposal-approval"),
        ("deal-won.json", "erp-order-sync"),
        ("case-resolved.json", "csat-survey"),
        ("new-webinar-lead.json", "lead-nurture"),
    ],
)
def test_each_scenario_sample_matches_its_flows_trigger(project: Project, sample: str, flow: str) -> None:
    event = next(e for name, e in _sample_events() if name == sample)
    target = project.flows[flow]
    assert event.object == target.object
    trigger = target.trigger
    if isinstance(trigger, FieldChangedTrigger):
        assert event.type == "record_updated"
        assert event.record.get(trigger.field) == trigger.to
    else:
        assert event.type == trigger.type


# --------------------------------------------------------------------------- editor modelines


def test_every_yaml_file_points_editors_at_its_schema() -> None:
    for path in yaml_files():
        first = path.read_text(encoding="utf-8").splitlines()[0]
        m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert m, f"{path.relative_to(ROOT)}: first line should be the yaml-language-server modeline"
        target = (path.parent / m.group(1)).resolve()
        expected = schema_name_for(path, load_yaml(path))
        assert target == (ROOT / "schemas" / f"{expected}.schema.json").resolve(), path
        assert target.is_file(), f"{path}: {target} does not exist"


def test_scenario_files_name_their_seed(project: Project) -> None:
    # The flows a reader copies say which product scenario they implement.
    for name in ("welcome-new-customer", "proposal-approval", "erp-order-sync", "ticket-dispatch"):
        text = Path(ROOT / "flows" / f"{name}.yaml").read_text(encoding="utf-8")
        assert "PowerX" in text.splitlines()[1], name
