"""validate on approval steps whose approvers are entries: their templates, keys and titles, at file:line:col."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flowctl.check.validate import validate_path
from flowctl.cli.main import app

from .sample_repo import write_repo

# Line numbers below count from this text: `approvers:` is line 9, the first entry line 10.
FLOW = """\
kind: flow
name: approvals
object: contact
trigger: {type: record_created}
steps:
  - id: approve
    action: approval
    mode: all
    approvers:
      - user: "{{ record.owner.id }}"
        title: "Price approval: {{ record.first_name }}"
        attachments_required: [price_sheet.xlsx]
      - user: "{{ team('support').manager }}"
        title: "Legal review: {{ record.first_name }}"
        instructions: "Check {{ record.email }}"
  - id: chain
    action: log
    message: "{% for link in steps.approve.output.chain %}{{ link.title }} by {{ link.approver }} {% endfor %}"
"""


def _diagnostics(tmp_path: Path, text: str) -> list[tuple[str, str, int, int]]:
    root = write_repo(tmp_path / "repo", {"flows/approvals.yaml": text})
    report = validate_path(root)
    return sorted((d.code, d.range.file, d.range.line, d.range.column) for d in report.diagnostics)


def test_entries_with_their_own_titles_need_no_step_title(tmp_path: Path) -> None:
    assert _diagnostics(tmp_path, FLOW) == []
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "repo"), "--strict"])
    assert result.exit_code == 0, result.output


def test_a_template_in_an_entry_title_is_checked_like_the_step_title(tmp_path: Path) -> None:
    text = FLOW.replace("Legal review: {{ record.first_name }}", "Legal review: {{ record.frist_name }}")
    # line 14: `        title: "Legal review: {{ record.frist_name }}"`; the variable starts at column 34
    assert _diagnostics(tmp_path, text) == [("template-unknown-field", "flows/approvals.yaml", 14, 34)]


def test_a_template_in_an_entry_user_and_instructions_is_checked(tmp_path: Path) -> None:
    text = FLOW.replace("record.owner.id", "record.ownr.id").replace("record.email", "record.emial")
    assert _diagnostics(tmp_path, text) == [
        ("template-unknown-field", "flows/approvals.yaml", 10, 19),
        ("template-unknown-field", "flows/approvals.yaml", 15, 33),
    ]


def test_an_unknown_key_in_an_entry_is_one_error_with_a_suggestion(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", {"flows/approvals.yaml": FLOW.replace("instructions:", "instruction:")})
    report = validate_path(root)
    assert [(d.code, d.range.line, d.range.column) for d in report.diagnostics] == [("schema-unknown-key", 15, 9)]
    assert report.diagnostics[0].hint == "did you mean 'instructions'?"


def test_an_entry_without_a_user_is_an_error(tmp_path: Path) -> None:
    text = FLOW.replace('      - user: "{{ team(\'support\').manager }}"\n', "      - title: only a title\n", 1)
    text = text.replace('        title: "Legal review: {{ record.first_name }}"\n', "", 1)
    got = _diagnostics(tmp_path, text)
    assert got == [("schema-missing-key", "flows/approvals.yaml", 13, 9)], got


def test_the_step_title_may_be_left_out_only_when_every_entry_has_one(tmp_path: Path) -> None:
    text = FLOW.replace('        title: "Legal review: {{ record.first_name }}"\n', "")
    root = write_repo(tmp_path / "repo", {"flows/approvals.yaml": text})
    report = validate_path(root)
    assert [(d.code, d.range.line, d.range.column) for d in report.diagnostics] == [("schema-bad-value", 6, 5)]
    assert "approval needs `title`" in report.diagnostics[0].summary
    assert _diagnostics(tmp_path / "b", text.replace("    mode: all\n", "    mode: all\n    title: Approve\n")) == []
