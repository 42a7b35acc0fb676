"""`flowctl graph FLOW`: formats, output files, and clear errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.render.graph import render_dot, render_mermaid
from flowctl.resources.project import load_project

ROOT = Path(__file__).resolve().parents[2]


def test_mermaid_is_the_default_and_matches_the_library() -> None:
    result = CliRunner().invoke(app, ["graph", "erp-order-sync", "-C", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert result.stdout == render_mermaid(load_project(ROOT).flows["erp-order-sync"])
    assert "flowchart TD" in result.stdout


def test_dot_format() -> None:
    result = CliRunner().invoke(app, ["graph", "lead-nurture", "--format", "dot", "-C", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert result.stdout == render_dot(load_project(ROOT).flows["lead-nurture"])


def test_out_file_and_format_from_its_suffix(tmp_path: Path) -> None:
    out = tmp_path / "diagrams" / "renewal.dot"
    result = CliRunner().invoke(app, ["graph", "renewal-reminder", "--out", str(out), "-C", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith('digraph "renewal-reminder"')
    assert f"wrote {out}" in result.stdout


def test_a_flow_file_path_works_too() -> None:
    result = CliRunner().invoke(app, ["graph", str(ROOT / "flows" / "csat-survey.yaml")])
    assert result.exit_code == 0, result.output
    assert "%% flow csat-survey" in result.stdout


def test_unknown_flow_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["graph", "welcome-new-customr", "-C", str(ROOT)])
    assert result.exit_code == 1
    assert "unknown flow 'welcome-new-customr'" in result.stderr
    assert "did you mean 'welcome-new-customer'?" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_format_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["graph", "erp-order-sync", "--format", "svg", "-C", str(ROOT)])
    assert result.exit_code == 1
    assert "unknown format 'svg'" in result.stderr


def _repo(tmp_path: Path, flow_text: str) -> Path:
    (tmp_path / "flowctl.yaml").write_text("project: t\n", encoding="utf-8")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "broken.yaml").write_text(flow_text, encoding="utf-8")
    return tmp_path


def test_a_flow_that_does_not_load_names_file_line_and_column(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "kind: flow\nname: broken\nobject: contact\ntrigger: {type: record_created}\nsteps:\n"
        "  - id: a\n    action: log\n    mesage: hi\n",
    )
    result = CliRunner().invoke(app, ["graph", "broken", "-C", str(repo)])
    assert result.exit_code == 1
    assert "flow 'broken' does not load: flows/broken.yaml:8:5: unknown key 'mesage'" in result.stderr


def test_a_broken_flow_file_path_names_file_line_and_column(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "kind: flow\nname: broken\ntrigger: {type: record_created\n")
    result = CliRunner().invoke(app, ["graph", str(repo / "flows" / "broken.yaml")])
    assert result.exit_code == 1
    assert "broken.yaml:" in result.stderr and "YAML syntax error" in result.stderr


def test_an_empty_repository_says_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "flowctl.yaml").write_text("project: t\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["graph", "anything", "-C", str(tmp_path)])
    assert result.exit_code == 1
    assert "unknown flow 'anything'" in result.stderr and "no flows found under" in result.stderr
