"""JSON Schemas: generated from the models, committed in schemas/, accepted by the examples."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.resources.jsonschema import build_schema, generate_schemas, schema_names, stale_schemas

from .repo import ROOT, as_json, load_yaml, schema_name_for, yaml_files


def test_committed_schemas_match_the_models() -> None:
    stale = stale_schemas(ROOT / "schemas")
    assert stale == [], f"regenerate with `flowctl schema export` and commit: {stale}"


def test_one_schema_per_kind_plus_settings_and_fixtures() -> None:
    assert set(generate_schemas()) == {
        "flow.schema.json", "sla_policy.schema.json", "calendar.schema.json", "team.schema.json",
        "template.schema.json", "object.schema.json", "flow_test.schema.json", "flowctl.schema.json",
        "fixture.schema.json",
    }  # fmt: skip


@pytest.mark.parametrize("name", schema_names())
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = build_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(build_schema(name))


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_example_file_is_valid_against_its_schema(path: Path) -> None:
    data = load_yaml(path)
    errors = sorted(_validator(schema_name_for(path, data)).iter_errors(as_json(data)), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])


@pytest.mark.parametrize(
    ("name", "doc", "where"),
    [
        # unknown key on a step: the editor underlines it
        (
            "flow",
            {
                "kind": "flow",
                "name": "x",
                "object": "contact",
                "trigger": {"type": "record_created"},
                "steps": [{"id": "a", "action": "log", "mesage": "hi"}],
            },
            "steps/0",
        ),
        # a duration without a unit
        (
            "flow",
            {
                "kind": "flow",
                "name": "x",
                "object": "contact",
                "trigger": {"type": "record_created"},
                "steps": [{"id": "a", "wait": {"for": "7"}}],
            },
            "steps/0",
        ),
        # an unknown trigger type
        (
            "flow",
            {
                "kind": "flow",
                "name": "x",
                "trigger": {"type": "on_create"},
                "steps": [{"id": "a", "action": "log", "message": "hi"}],
            },
            "trigger",
        ),
        # an SLA target whose clock duration is not a duration
        (
            "sla_policy",
            {
                "kind": "sla_policy",
                "name": "s",
                "object": "case",
                "targets": [{"default": True, "first_response": "soon"}],
            },
            "targets/0/first_response",
        ),
        # flowctl.yaml with a misspelt section
        ("flowctl", {"project": "p", "runer": {"url": "http://127.0.0.1:8787"}}, ""),
        # a fixture record without an id
        ("fixture", [{"object": "contact", "first_name": "Ada"}], "0"),
    ],
)
def test_schemas_reject_what_the_loader_rejects(name: str, doc: Any, where: str) -> None:
    errors = list(_validator(name).iter_errors(doc))
    assert errors, f"{name} schema accepted {doc}"
    assert any("/".join(map(str, e.absolute_path)).startswith(where) for e in errors), [
        e.message for e in errors
    ]


def test_export_writes_then_leaves_up_to_date_files_alone(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["schema", "export", str(tmp_path), "--format", "json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert sorted(report["written"]) == sorted(generate_schemas())
    assert report["unchanged"] == []
    for file_name, content in generate_schemas().items():
        assert (tmp_path / file_name).read_text(encoding="utf-8") == content
    second = runner.invoke(app, ["schema", "export", str(tmp_path), "--format", "json"])
    assert json.loads(second.stdout)["written"] == []


def test_check_fails_on_a_stale_schema_and_names_it(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["schema", "export", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["schema", "export", str(tmp_path), "--check"]).exit_code == 0
    flow_schema = tmp_path / "flow.schema.json"
    flow_schema.write_text(
        flow_schema.read_text(encoding="utf-8").replace('"steps"', '"stepz"'), encoding="utf-8"
    )
    (tmp_path / "team.schema.json").unlink()
    result = runner.invoke(app, ["schema", "export", str(tmp_path), "--check"])
    assert result.exit_code == 1
    assert "flow.schema.json" in result.output and "team.schema.json" in result.output
    assert "flowctl schema export" in result.stderr
    assert "Traceback" not in result.output


def test_export_into_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "schemas"
    target.write_text("not a folder", encoding="utf-8")
    result = CliRunner().invoke(app, ["schema", "export", str(target)])
    assert result.exit_code == 1
    assert "is a file, not a directory" in result.stderr
