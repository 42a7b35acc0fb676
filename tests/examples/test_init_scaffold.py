"""`flowctl init`: a new repository that loads, validates and passes its own flow test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.resources.jsonschema import generate_schemas
from flowctl.resources.project import load_project
from flowctl.resources.yamlload import load_file
from flowctl.scaffold import project_name_for, template_files

EXPECTED_FILES = {
    "flowctl.yaml",
    "README.md",
    ".gitignore",
    ".github/workflows/flows.yml",
    "schemas/objects/contact.yaml",
    "templates/welcome_email.yaml",
    "flows/welcome-new-contact.yaml",
    "tests/flows/welcome-new-contact.yaml",
    "tests/fixtures/contacts.yaml",
    "samples/events/new-contact.json",
}


def _registered(command: str) -> bool:
    return command in {c.name for c in app.registered_commands}


@pytest.fixture
def scaffolded(tmp_path: Path) -> Path:
    target = tmp_path / "Acme Flows"
    result = CliRunner().invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert "Next steps" in result.output and "flowctl validate" in result.output
    return target


def test_template_tree_ships_every_file_and_no_python() -> None:
    assert set(template_files()) == EXPECTED_FILES


def test_init_creates_a_repository_that_loads_without_diagnostics(scaffolded: Path) -> None:
    for rel in EXPECTED_FILES:
        assert (scaffolded / rel).is_file(), rel
    project = load_project(scaffolded)
    assert [d.model_dump() for d in project.diagnostics] == []
    assert project.config.project == "acme-flows"
    assert set(project.flows) == {"welcome-new-contact"}
    assert set(project.templates) == {"welcome_email"}
    assert set(project.defined_objects) == {"contact"}
    assert len(project.tests) == 1
    assert "__PROJECT__" not in (scaffolded / "README.md").read_text(encoding="utf-8")


def test_init_writes_current_json_schemas_for_the_modelines(scaffolded: Path) -> None:
    for file_name, content in generate_schemas().items():
        assert (scaffolded / "schemas" / file_name).read_text(encoding="utf-8") == content
    for path in scaffolded.rglob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        assert (path.parent / first.split("=", 1)[1]).resolve().is_file(), path


def test_ci_workflow_validates_tests_plans_and_applies(scaffolded: Path) -> None:
    workflow = load_file(scaffolded / ".github/workflows/flows.yml").data
    # YAML 1.1 readers turn the `on:` key into True; ours keeps it a string.
    triggers = workflow["on"]
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    check_runs = [s.get("run", "") for s in workflow["jobs"]["check"]["steps"]]
    apply_runs = [s.get("run", "") for s in workflow["jobs"]["apply"]["steps"]]
    assert "flowctl validate --format github" in check_runs
    assert "flowctl test" in check_runs
    assert any("flowctl plan" in r and "--format markdown" in r for r in check_runs)
    assert "flowctl apply --yes" in apply_runs
    assert workflow["jobs"]["check"]["if"] == "github.event_name == 'pull_request'"
    assert "refs/heads/main" in workflow["jobs"]["apply"]["if"]


def test_sample_event_matches_the_scaffold(scaffolded: Path) -> None:
    events = json.loads((scaffolded / "samples/events/new-contact.json").read_text(encoding="utf-8"))
    assert [e["object"] for e in events] == ["user", "contact"]
    assert events[1]["record"]["owner"] == events[0]["record"]["id"]


def test_init_refuses_an_existing_repository_unless_forced(scaffolded: Path) -> None:
    flow_file = scaffolded / "flows/welcome-new-contact.yaml"
    flow_file.write_text(flow_file.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    runner = CliRunner()
    refused = runner.invoke(app, ["init", str(scaffolded)])
    assert refused.exit_code == 1
    assert "already holds a flows repository" in refused.stderr and "--force" in refused.stderr
    assert flow_file.read_text(encoding="utf-8").endswith("# edited\n")
    forced = runner.invoke(app, ["init", str(scaffolded), "--force", "--format", "json"])
    assert forced.exit_code == 0, forced.output
    assert "flows/welcome-new-contact.yaml" in json.loads(forced.stdout)["written"]
    assert not flow_file.read_text(encoding="utf-8").endswith("# edited\n")


def test_init_keeps_unrelated_existing_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("our own readme\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("keep me\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["init", str(tmp_path), "--project", "sales-ops", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skipped"] == ["README.md"] and report["project"] == "sales-ops"
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "our own readme\n"
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me\n"
    assert load_project(tmp_path).config.project == "sales-ops"


def test_init_onto_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(app, ["init", str(target)])
    assert result.exit_code == 1 and "is not a directory" in result.stderr


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("Acme Flows", "acme-flows"), ("2024", "flows-2024"), ("__", "flows"), ("crm_ops", "crm-ops")],
)
def test_project_name_from_the_folder(tmp_path: Path, folder: str, expected: str) -> None:
    assert project_name_for(tmp_path / folder) == expected


def test_scaffold_validates_and_its_flow_test_passes(scaffolded: Path) -> None:
    runner = CliRunner()
    if _registered("validate"):
        result = runner.invoke(app, ["validate", str(scaffolded), "--strict"])
        assert result.exit_code == 0, result.output
    if not _registered("test"):
        pytest.skip("flowctl test is not part of this build yet")
    result = runner.invoke(app, ["test", str(scaffolded)])
    assert result.exit_code == 0, result.output
    assert "1 passed" in result.output
