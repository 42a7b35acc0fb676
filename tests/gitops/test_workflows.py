"""The GitHub workflows: flows CI (pull requests plan, main applies) and flowctl's own CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from flowctl.render.plan import MARKDOWN_MARKER
from flowctl.scaffold import scaffold_project

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / ".github/workflows/flows.yml"


def load(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text())
    assert isinstance(data, dict)
    return data


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("with", {}).get("script", "")) for step in job["steps"])


def test_pull_requests_validate_test_and_plan_into_summary_and_comment() -> None:
    wf = load(FLOWS)
    # ruamel reads the `on:` key as a string (YAML 1.2), not as True.
    assert set(wf["on"]) == {"pull_request", "push"}
    check = wf["jobs"]["check"]
    assert check["if"] == "github.event_name == 'pull_request'"
    script = runs(check)
    assert "flowctl validate --format github" in script
    assert "flowctl test" in script
    assert "flowctl plan --format markdown > plan.md" in script
    assert "flowctl plan --offline --format markdown > plan.md" in script
    assert '>> "$GITHUB_STEP_SUMMARY"' in script
    # The comment is found again by the marker the markdown renderer writes first.
    assert f"'{MARKDOWN_MARKER}'" in script and "updateComment" in script
    assert check["permissions"]["pull-requests"] == "write"
    assert check["steps"][0]["with"]["fetch-depth"] == 0


def test_push_to_the_publish_branch_applies() -> None:
    wf = load(FLOWS)
    assert wf["on"]["push"]["branches"] == ["main"]
    job = wf["jobs"]["apply"]
    assert "refs/heads/main" in job["if"]
    assert "flowctl apply --yes" in runs(job)
    assert job["permissions"]["contents"] == "write"  # the publish tag is pushed
    assert job["concurrency"]["cancel-in-progress"] is False
    assert "git config user.name" in runs(job)


def test_flowctl_init_scaffolds_the_same_workflow(tmp_path: Path) -> None:
    scaffold_project(tmp_path / "new-flows", project="new-flows")
    scaffolded = (tmp_path / "new-flows/.github/workflows/flows.yml").read_text()
    # Identical but for where flowctl comes from: this repository builds it, a new one installs it from
    # FLOWCTL_PIP_SPEC, never by the bare name (`flowctl` on PyPI is an unrelated project).
    assert "run: pip install flowctl" not in scaffolded
    wf = YAML(typ="safe").load(scaffolded)
    for job in ("check", "apply"):
        [step] = [s for s in wf["jobs"][job]["steps"] if s.get("name") == "Install flowctl"]
        assert step["env"] == {"FLOWCTL_PIP_SPEC": "${{ vars.FLOWCTL_PIP_SPEC }}"}
        assert step["run"].startswith('pip install "${FLOWCTL_PIP_SPEC:?')  # unset: the job stops, saying why
    assert without_install_steps(scaffolded) == without_install_steps(FLOWS.read_text())


def without_install_steps(text: str) -> list[str]:
    out, skipping = [], False
    for line in text.splitlines():
        if line.strip().startswith("- "):
            skipping = line.strip() == "- name: Install flowctl"
        if not skipping:
            out.append(line)
    return out


def test_project_ci_runs_lint_types_and_the_test_command() -> None:
    ci = load(ROOT / ".github/workflows/ci.yml")
    script = runs(ci["jobs"]["test"])
    assert "ruff check flowctl tests" in script
    assert "mypy flowctl" in script
    assert "bash scripts/test.sh" in script
    assert (ROOT / "scripts/test.sh").is_file()
