"""Loading a flows repository: flowctl.yaml plus every resource under the configured paths.

`load_project` never raises for bad content: a file that does not load or
validate becomes a Diagnostic, and the rest of the repository still loads, so
`validate` reports everything in one pass.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flowctl.check.diagnostics import Diagnostic, Range
from flowctl.check.schema import validation_diagnostics
from flowctl.errors import ProjectError
from flowctl.resources.builtins import merged_objects, object_fields
from flowctl.resources.models import (
    KIND_MODELS,
    Calendar,
    FieldDef,
    Flow,
    FlowTest,
    ObjectSchema,
    ProjectConfig,
    SlaPolicy,
    Team,
    Template,
)
from flowctl.resources.yamlload import LoadedDocument, PositionMap, YamlLoadError, load_file

CONFIG_FILE = "flowctl.yaml"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Source:
    """Where a resource came from: its file (relative to the project root) and node positions."""

    file: str
    positions: PositionMap
    # The file's text, so a diagnostic can point inside a multi-line value.
    text: str = ""

    def range(self, path: tuple[str | int, ...] = (), *, prefer_key: bool = False) -> Range:
        pos = self.positions.find(path, prefer_key=prefer_key)
        return Range(file=self.file, line=pos.line, column=pos.column)


@dataclass
class Project:
    root: Path
    config: ProjectConfig
    flows: dict[str, Flow] = field(default_factory=dict)
    sla_policies: dict[str, SlaPolicy] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    # Only the objects defined in the repository; `objects` merges in the built-ins.
    defined_objects: dict[str, ObjectSchema] = field(default_factory=dict)
    tests: list[FlowTest] = field(default_factory=list)
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)
    test_sources: list[Source] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # (kind, name) of resources that are there but failed validation: references
    # to them are not "unknown" (the schema diagnostic already says what is wrong).
    invalid: set[tuple[str, str]] = field(default_factory=set)

    # ----------------------------------------------------------------- lookups
    @property
    def objects(self) -> dict[str, ObjectSchema]:
        return merged_objects(self.defined_objects)

    def object_fields(self, object_name: str) -> dict[str, FieldDef] | None:
        """Every field a record of this object has, system fields included; None for an unknown object."""
        return object_fields(self.objects, object_name)

    def source(self, kind: str, name: str) -> Source:
        return self.sources[(kind, name)]

    def range(self, kind: str, name: str, path: tuple[str | int, ...] = (), *, prefer_key: bool = False) -> Range:
        src = self.sources.get((kind, name))
        if src is None:
            return Range(file="<builtin>")
        return src.range(path, prefer_key=prefer_key)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def resource_maps(self) -> dict[str, dict[str, Any]]:
        return {
            "flow": self.flows,
            "sla_policy": self.sla_policies,
            "calendar": self.calendars,
            "team": self.teams,
            "template": self.templates,
            "object": self.defined_objects,
        }


# --------------------------------------------------------------------------- loading


def find_root(start: Path) -> Path:
    """The directory holding flowctl.yaml at or above `start`; `start` itself (or its folder) when none."""
    start = start.resolve()
    here = start if start.is_dir() else start.parent
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    return here


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def load_config(root: Path, diagnostics: list[Diagnostic] | None = None) -> ProjectConfig:
    path = root / CONFIG_FILE
    if not path.is_file():
        return ProjectConfig()
    source_file = CONFIG_FILE
    try:
        doc = load_file(path)
    except YamlLoadError as exc:
        if diagnostics is None:
            raise ProjectError(f"{source_file}:{exc.position.line}:{exc.position.column}: {exc.message}") from None
        diagnostics.append(_yaml_diag(exc, source_file))
        return ProjectConfig()
    if not isinstance(doc.data, dict):
        msg = "flowctl.yaml must be a mapping of settings"
        if diagnostics is None:
            raise ProjectError(f"{source_file}:1:1: {msg}")
        diagnostics.append(Diagnostic(code="schema-type", summary=msg, range=Range(file=source_file)))
        return ProjectConfig()
    try:
        return ProjectConfig.model_validate(doc.data)
    except ValidationError as exc:
        diags = validation_diagnostics(exc, doc.data, Source(source_file, doc.positions, doc.text), ProjectConfig)
        if diagnostics is None:
            first = diags[0]
            raise ProjectError(f"{first.location}: {first.summary}", hint=first.hint) from None
        diagnostics.extend(diags)
        return ProjectConfig()


def _yaml_diag(exc: YamlLoadError, file: str) -> Diagnostic:
    return Diagnostic(
        code=exc.code,
        summary=exc.message,
        hint=exc.hint,
        range=Range(file=file, line=exc.position.line, column=exc.position.column),
    )


def resource_files(root: Path, config: ProjectConfig) -> list[Path]:
    """Every YAML file validate reads: *.yaml / *.yml under the configured paths (fixtures are data, not resources)."""
    seen: set[Path] = set()
    files: list[Path] = []
    fixtures = (root / config.paths.fixtures).resolve()
    for folder in (config.paths.flows, config.paths.templates, config.paths.objects, config.paths.tests):
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix not in YAML_SUFFIXES or not path.is_file():
                continue
            resolved = path.resolve()
            if resolved in seen or fixtures in resolved.parents:
                continue
            seen.add(resolved)
            files.append(path)
    return files


def load_document(path: Path, root: Path, project: Project) -> None:
    """Load one resource file into `project`, recording diagnostics instead of raising."""
    rel = _rel(path, root)
    project.files.append(rel)
    try:
        doc: LoadedDocument = load_file(path)
    except YamlLoadError as exc:
        project.diagnostics.append(_yaml_diag(exc, rel))
        return
    add_resource(doc.data, Source(rel, doc.positions, doc.text), project)


def add_resource(data: Any, source: Source, project: Project) -> None:
    if not isinstance(data, dict):
        what = {list: "a list", str: "text", int: "a number", float: "a number", bool: "a boolean"}.get(
            type(data), f"a {type(data).__name__}"
        )
        project.diagnostics.append(
            Diagnostic(
                code="file-not-mapping",
                summary=f"a resource file must be a mapping with `kind` and `name`, not {what}",
                hint="one resource per file; fixture lists belong in tests/fixtures/",
                range=source.range(),
            )
        )
        return
    kind = data.get("kind")
    if kind is None:
        project.diagnostics.append(
            Diagnostic(
                code="schema-missing-kind",
                summary="missing required key 'kind'",
                hint="one of: " + ", ".join(KIND_MODELS),
                range=source.range(),
            )
        )
        return
    model = KIND_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        close = difflib.get_close_matches(str(kind), list(KIND_MODELS), n=1)
        project.diagnostics.append(
            Diagnostic(
                code="schema-unknown-kind",
                summary=f"unknown kind '{kind}'",
                hint=(f"did you mean '{close[0]}'? " if close else "") + "kinds: " + ", ".join(KIND_MODELS),
                range=source.range(("kind",)),
            )
        )
        return
    try:
        resource = model.model_validate(data)
    except ValidationError as exc:
        project.diagnostics.extend(validation_diagnostics(exc, data, source, model))
        if isinstance(data.get("name"), str):
            project.invalid.add((kind, data["name"]))
        return
    except Exception as exc:  # a validator failing on input it did not expect must not stop the load
        project.diagnostics.append(
            Diagnostic(
                code="internal-error",
                summary=f"this {kind} could not be validated: {type(exc).__name__}: {exc}",
                hint="this is a bug in flowctl; please report it with this file",
                range=source.range(),
            )
        )
        return
    if isinstance(resource, FlowTest):
        project.tests.append(resource)
        project.test_sources.append(source)
        return
    maps = project.resource_maps()
    name = resource.name  # type: ignore[attr-defined]
    target = maps[kind]
    if name in target:
        first = project.sources[(kind, name)]
        project.diagnostics.append(
            Diagnostic(
                code="duplicate-name",
                summary=f"{kind} '{name}' is defined twice",
                detail=f"first defined in {first.file}:{first.range(('name',)).line}",
                hint="rename one of them; names are unique per kind",
                range=source.range(("name",)),
            )
        )
        return
    target[name] = resource
    project.sources[(kind, name)] = source


def load_project(path: Path | str = ".") -> Project:
    """Load the repository containing `path`. Raises ProjectError only when `path` does not exist."""
    start = Path(path)
    if not start.exists():
        raise ProjectError(f"no such file or directory: {start}", hint="pass the flows repository or a file inside it")
    root = find_root(start)
    diagnostics: list[Diagnostic] = []
    config = load_config(root, diagnostics)
    project = Project(root=root, config=config, diagnostics=diagnostics)
    with gc_paused():
        for file in resource_files(root, config):
            load_document(file, root, project)
    return project


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    Loading creates hundreds of thousands of long-lived nodes, dicts and
    models; the collector would scan them again and again (about half the
    load time of a 1,000-flow repository) and find no garbage cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_records_file(path: Path, root: Path) -> tuple[list[dict[str, Any]], Source]:
    """A fixture file: a YAML list of records (each with `object` and `id`). Raises ProjectError."""
    rel = _rel(path, root)
    try:
        doc = load_file(path)
    except YamlLoadError as exc:
        raise ProjectError(f"{rel}:{exc.position.line}:{exc.position.column}: {exc.message}", hint=exc.hint) from None
    data = doc.data
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ProjectError(f"{rel}:1:1: a fixture file must be a list of records")
    source = Source(rel, doc.positions, doc.text)
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or "id" not in rec or "object" not in rec:
            r = source.range((i,))
            raise ProjectError(
                f"{r.file}:{r.line}:{r.column}: each fixture record needs `object` and `id`",
                hint="e.g. - {object: contact, id: c-1, email: a@example.com}",
            )
    return data, source
