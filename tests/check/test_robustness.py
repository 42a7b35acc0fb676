"""Odd input never produces a traceback: random YAML text, and valid resources with random damage."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowctl.check.context import CheckContext
from flowctl.check.validate import run_passes
from flowctl.resources.project import Project, Source, add_resource, load_project
from flowctl.resources.yamlload import YamlLoadError, load_text

from .sample_repo import BASE_FILES, write_repo

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        ["{{ record.x }}", "{{ ", "{% if %}", "3d", "-7d", "goto", "a.b.c", "record_created", "eq"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_text_loads_or_fails_with_a_position(text: str) -> None:
    try:
        load_text(text)
    except YamlLoadError as exc:
        assert exc.code and exc.position.line >= 1 and exc.position.column >= 1


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _damage(data: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    data = copy.deepcopy(data)
    parent = data
    for seg in path[:-1]:
        parent = parent[seg]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return load_project(write_repo(tmp_path_factory.mktemp("robust") / "repo"))


RESOURCES = [
    "flows/welcome.yaml",
    "flows/sla.yaml",
    "templates/welcome_email.yaml",
    "tests/flows/welcome.yaml",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(RESOURCES), st.data(), values, st.booleans())
def test_damaged_resources_never_crash_a_pass(
    base: Project, resource: str, data: st.DataObject, value: Any, delete: bool
) -> None:
    doc = load_text(BASE_FILES[resource])
    path = data.draw(st.sampled_from(_paths(doc.data)))
    damaged = _damage(doc.data, path, value, delete and bool(path))
    if isinstance(damaged, dict) and damaged.get("name") == doc.data.get("name"):
        damaged["name"] = "mutant"  # a new resource next to the intact one
    project = Project(
        root=base.root,
        config=base.config,
        flows=dict(base.flows),
        sla_policies=dict(base.sla_policies),
        calendars=dict(base.calendars),
        teams=dict(base.teams),
        templates=dict(base.templates),
        defined_objects=dict(base.defined_objects),
        sources=dict(base.sources),
    )
    add_resource(damaged, Source("flows/mutant.yaml", doc.positions, BASE_FILES[resource]), project)
    diags = run_passes(CheckContext(project))
    crashes = [d.summary for d in diags if d.code == "internal-error"]
    assert not crashes
    for d in diags:
        assert d.range.line >= 1 and d.range.column >= 1


def test_recursive_alias_is_a_diagnostic(tmp_path: Path) -> None:
    with pytest.raises(YamlLoadError) as info:
        load_text("a: &x [1, *x]\n")
    assert info.value.code == "yaml-too-deep"


def test_billion_laughs_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(YamlLoadError) as info:
        load_text("\n".join(lines) + "\n")
    assert info.value.code == "yaml-too-large"


def test_merge_keys_are_refused() -> None:
    with pytest.raises(YamlLoadError) as info:
        load_text("base: &b {a: 1}\nother:\n  <<: *b\n")
    assert (info.value.code, info.value.position.line, info.value.position.column) == ("yaml-merge-key", 3, 3)
