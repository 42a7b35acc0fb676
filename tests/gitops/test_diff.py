"""Resource- and field-level diff: the algorithm, and `flowctl diff` on real repositories."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.gitops.diff import FieldChange, diff_bundles, diff_values
from flowctl.resources.bundle import Bundle

from .conftest import Repo, greet_flow, init_repo, seed_project

cli = CliRunner()


def test_steps_are_matched_by_id_so_an_insert_is_one_change() -> None:
    before = {"steps": [{"id": "a", "action": "log", "message": "x"}, {"id": "b", "action": "log", "message": "y"}]}
    after = {"steps": [{"id": "a", "action": "log", "message": "x"}, {"id": "new", "action": "log", "message": "n"},
                       {"id": "b", "action": "log", "message": "y"}]}  # fmt: skip
    assert diff_values(before, after) == [
        FieldChange(path="steps[new]", change="added", after={"id": "new", "action": "log", "message": "n"})
    ]


def test_reordering_steps_is_reported() -> None:
    a = {"id": "a", "action": "log", "message": "x"}
    b = {"id": "b", "action": "log", "message": "y"}
    changes = diff_values({"steps": [a, b]}, {"steps": [b, a]})
    assert changes == [FieldChange(path="steps (order)", change="changed", before=["a", "b"], after=["b", "a"])]


def test_nested_fields_removed_keys_and_json_equality() -> None:
    before = {"trigger": {"type": "field_changed", "field": "stage", "to": "won"}, "enabled": 1, "dedupe": "10m"}
    after = {"trigger": {"type": "field_changed", "field": "stage", "to": "lost"}, "enabled": True}
    assert diff_values(before, after) == [
        FieldChange(path="trigger.to", change="changed", before="won", after="lost"),
        # 1 == True in Python, but not in YAML: the change must show.
        FieldChange(path="enabled", change="changed", before=1, after=True),
        FieldChange(path="dedupe", change="removed", before="10m"),
    ]


def test_lists_of_scalars_change_as_a_whole_and_unkeyed_lists_by_index() -> None:
    assert diff_values({"values": ["a", "b"]}, {"values": ["a", "c"]}) == [
        FieldChange(path="values", change="changed", before=["a", "b"], after=["a", "c"])
    ]
    cases_before = {"cases": [{"when": {"field": "x", "op": "is_set"}, "steps": []}]}
    cases_after = {"cases": [{"when": {"field": "y", "op": "is_set"}, "steps": []}, {"when": {"expr": "1"}, "steps": []}]}
    assert [c.path for c in diff_values(cases_before, cases_after)] == ["cases[0].when.field", "cases[1]"]


def test_keys_that_are_not_identifiers_are_quoted() -> None:
    changes = diff_values({"weekly": {"mon-fri": ["09:00-17:00"]}, "a.b": 1}, {"weekly": {"mon-fri": ["10:00-17:00"]}, "a.b": 2})
    assert [c.path for c in changes] == ["weekly.mon-fri", '"a.b"']


def _bundle(resources: dict[str, dict[str, dict[str, object]]]) -> Bundle:
    return Bundle(resources=resources)


def test_bundle_diff_orders_by_kind_then_name_and_counts() -> None:
    before = _bundle({"flow": {"b": {"kind": "flow", "name": "b", "object": "deal"}},
                      "template": {"t": {"kind": "template", "name": "t", "channel": "sms", "body": "x"}}})  # fmt: skip
    after = _bundle({"flow": {"a": {"kind": "flow", "name": "a", "object": "deal"},
                              "b": {"kind": "flow", "name": "b", "object": "case"}}})  # fmt: skip
    diff = diff_bundles(before, after)
    assert [(r.kind, r.name, r.change) for r in diff.resources] == [
        ("flow", "a", "added"), ("flow", "b", "changed"), ("template", "t", "removed"),
    ]  # fmt: skip
    assert diff.counts().model_dump() == {"added": 1, "changed": 1, "removed": 1}
    # kind and name are the identity, not fields
    assert [f.path for f in diff.resources[0].fields] == ["object"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=12,
)


@given(json_values, json_values)
def test_no_changes_exactly_when_equal_as_json(a: object, b: object) -> None:
    same = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert (diff_values(a, b) == []) == same


def test_cli_diff_working_tree_against_head(repo: Repo) -> None:
    repo.write("flows/greet.yaml", greet_flow("v2"))
    result = cli.invoke(app, ["diff", "-C", str(repo.root)])
    assert result.exit_code == 0, result.output
    assert "~ flow greet (changed)" in result.output
    assert '~ steps[hello].message: "v1: started" → "v2: started"' in result.output
    assert "0 added, 1 changed, 0 removed." in result.output
    assert cli.invoke(app, ["diff", "-C", str(repo.root), "--exit-code"]).exit_code == 1


def test_cli_diff_between_two_refs_as_json(repo: Repo) -> None:
    first = repo.git("rev-parse", "HEAD")
    repo.write("templates/reminder.yaml", "kind: template\nname: reminder\nchannel: sms\nbody: Hi\n")
    (repo.root / "flows/support-team.yaml").unlink()
    second = repo.commit("add reminder, drop team")
    result = cli.invoke(app, ["diff", first, "HEAD", "-C", str(repo.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["from"] == {"ref": first, "commit": first}
    assert data["to"] == {"ref": "HEAD", "commit": second}
    assert data["summary"] == {"added": 1, "changed": 0, "removed": 1}
    assert [(r["kind"], r["name"], r["change"]) for r in data["resources"]] == [
        ("team", "support", "removed"), ("template", "reminder", "added"),
    ]  # fmt: skip
    added = data["resources"][1]["fields"]
    assert {"path": "body", "change": "added", "before": None, "after": "Hi"} in added


def test_cli_diff_no_differences_and_unknown_ref(repo: Repo) -> None:
    same = cli.invoke(app, ["diff", "-C", str(repo.root), "--exit-code"])
    assert same.exit_code == 0
    assert "No differences" in same.output
    bad = cli.invoke(app, ["diff", "no-such-branch", "-C", str(repo.root)])
    assert bad.exit_code == 1
    assert "unknown git revision 'no-such-branch'" in bad.output


def test_cli_diff_outside_a_git_repository(tmp_path: Path) -> None:
    result = cli.invoke(app, ["diff", "-C", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not inside a git repository" in result.output
    assert "Traceback" not in result.output


def test_project_in_a_subdirectory_of_the_repository(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "mono")
    repo.write("README.md", "not flows\n")
    sub = Repo(tmp_path / "mono" / "crm")
    seed_project(sub)
    repo.commit("flows under crm/")
    sub.write("flows/greet.yaml", greet_flow("v2"))
    result = cli.invoke(app, ["diff", "-C", str(sub.root / "flows"), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.output)["resources"]] == ["greet"]
