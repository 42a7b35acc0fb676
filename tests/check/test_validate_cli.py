"""`flowctl validate` end to end: exit codes, the three formats, PATH scoping, --strict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from typer.testing import CliRunner

from flowctl.cli.main import app

from .sample_repo import BASE_FILES, write_repo

# One error and one warning in two files, for the format snapshots.
BROKEN = {
    "flows/b.yaml": (
        "kind: flow\nname: broken\nobject: contact\ntrigger: {type: record_created}\nsteps:\n"
        "  - id: a\n    action: send_email\n    to: '{{ record.email }}'\n    template: welcom_email\n"
    ),
    "flows/sla.yaml": BASE_FILES["flows/sla.yaml"].replace("first_response: 8h", "first_response: 1d"),
}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_valid_repository_exits_0(repo: Path) -> None:
    code, out = run(str(repo))
    assert code == 0, out
    assert out.strip() == f"✓ {len(BASE_FILES)} files valid"


def test_invalid_repository_exits_1_with_location_code_and_hint(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", BROKEN)
    code, out = run(str(root))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "flows/b.yaml:9:15  error  unknown-template  unknown template 'welcom_email'"
    assert lines[1] == "    hint: did you mean 'welcome_email'?"
    assert lines[-1] == "1 error, 1 warning in 2 files"


def test_strict_turns_a_warning_into_exit_1(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", {"flows/sla.yaml": BROKEN["flows/sla.yaml"]})
    code, out = run(str(root))
    assert code == 0
    assert out.splitlines()[-1] == f"✓ {len(BASE_FILES)} files valid (1 warning)"
    code, out = run(str(root), "--strict")
    assert code == 1
    assert out.splitlines()[-1] == "1 warning in 1 file (--strict: warnings count as errors)"
    code, out = run(str(root), "--strict", "--format", "json")
    assert code == 1 and json.loads(out)["valid"] is False


def test_json_format(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    root = write_repo(tmp_path / "repo", BROKEN)
    code, out = run(str(root), "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert list(data) == [
        "format_version",
        "valid",
        "error_count",
        "warning_count",
        "files_checked",
        "diagnostics",
    ]
    assert (data["format_version"], data["valid"], data["error_count"], data["warning_count"]) == (
        1,
        False,
        1,
        1,
    )
    assert data["files_checked"] == len(BASE_FILES) + 1
    assert out == snapshot


def test_github_format(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    root = write_repo(tmp_path / "repo", BROKEN)
    code, out = run(str(root), "--format", "github")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == (
        "::error file=flows/b.yaml,line=9,col=15,title=unknown-template::unknown template 'welcom_email'"
    )
    assert lines[1].startswith("::warning file=flows/sla.yaml,line=9,col=21,title=sla-target-in-days::")
    assert out == snapshot


def test_github_escapes_newlines_and_separators(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", {"flows/a,b.yaml": "kind: flwo\nname: x\n"})
    code, out = run(str(root), "--format", "github")
    assert code == 1
    assert out.splitlines()[0].startswith(
        "::error file=flows/a%2Cb.yaml,line=1,col=7,title=schema-unknown-kind::"
    )


def test_path_narrows_the_report_to_a_file(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", BROKEN)
    code, out = run(str(root / "flows" / "b.yaml"), "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert data["files_checked"] == 1
    assert [d["range"]["file"] for d in data["diagnostics"]] == ["flows/b.yaml"]
    # References still resolve against the whole repository: a valid file in it is valid.
    code, out = run(str(root / "flows" / "welcome.yaml"))
    assert code == 0 and out.strip() == "✓ 1 file valid"


def test_path_narrows_the_report_to_a_folder(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", BROKEN)
    code, out = run(str(root / "templates"), "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["files_checked"] == 4 and data["diagnostics"] == []


def test_default_path_is_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_repo(tmp_path / "repo", BROKEN)
    monkeypatch.chdir(root / "flows")
    code, out = run("--format", "json")
    # From a folder inside the repository: the whole repo is loaded, that folder is reported.
    data = json.loads(out)
    assert code == 1
    assert {d["range"]["file"] for d in data["diagnostics"]} == {"flows/b.yaml", "flows/sla.yaml"}


def test_file_outside_the_configured_paths_is_checked(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", {"drafts/new.yaml": "kind: team\nname: drafts\nmembers: []\n"})
    code, out = run(str(root / "drafts" / "new.yaml"))
    assert code == 1
    assert out.startswith("drafts/new.yaml:3:10  error  schema-type")


def test_a_fixture_file_can_be_validated_alone(tmp_path: Path) -> None:
    root = write_repo(
        tmp_path / "repo", {"tests/fixtures/extra.yaml": "- {object: contact, id: c-9, tier: diamond}\n"}
    )
    code, out = run(str(root / "tests" / "fixtures" / "extra.yaml"))
    assert code == 1
    assert out.startswith("tests/fixtures/extra.yaml:1:36  error  bad-enum-value")


def test_missing_path_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no such file or directory" in result.output
    assert "Traceback" not in result.output


def test_bad_format_is_a_usage_error(repo: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(repo), "--format", "xml"])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_help_shows_an_example() -> None:
    result = CliRunner().invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    assert "flowctl validate flows/welcome.yaml --strict" in result.output


def test_real_subprocess(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", BROKEN)
    flowctl = Path(sys.executable).with_name("flowctl")
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [str(flowctl), "validate", "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["error_count"] == 1
    assert proc.stderr == ""
    ok = subprocess.run(
        [str(flowctl), "validate", str(root / "templates")], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "✓ 4 files valid"
