"""A trigger blocked by the entry conditions says which condition failed (text trace and JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flowctl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
cli = CliRunner()


def _record(tmp_path: Path) -> Path:
    path = tmp_path / "lead.yaml"
    path.write_text("- {object: contact, id: c-77, first_name: Zed, stage: lead, email: zed@example.com}\n")
    return path


def test_text_trace_names_the_failing_condition(tmp_path: Path) -> None:
    result = cli.invoke(app, ["simulate", "welcome-new-customer", "--record", str(_record(tmp_path)),
                              "--for", "1d", "--project", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert "not started for contact/c-77: conditions" in result.output
    assert "stage eq 'customer' (is 'lead')" in result.output


def test_json_trace_carries_the_explanation(tmp_path: Path) -> None:
    result = cli.invoke(app, ["simulate", "welcome-new-customer", "--record", str(_record(tmp_path)),
                              "--for", "1d", "--project", str(ROOT), "--format", "json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.output)
    entries = trace["trace"] if isinstance(trace, dict) else trace
    [suppressed] = [e for e in entries if e.get("kind") == "suppressed"]
    detail = suppressed.get("detail", suppressed)
    assert detail["reason"] == "conditions"
    assert "stage eq 'customer'" in detail["why"]
