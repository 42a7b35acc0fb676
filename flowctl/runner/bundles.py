"""Bundle versions on the runner: checking an incoming bundle and serving versions to the engine.

A bundle is refused (422) when it would be refused by `flowctl validate`:
the same check passes run over the bundle's resources, so an apply that
bypasses the CLI cannot put a broken flow live. Every applied version is kept;
the live one is the highest (a rollback publishes old content as a new version).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flowctl.errors import FlowctlError
from flowctl.resources.bundle import BUNDLE_KINDS, Bundle, TypedBundle
from flowctl.resources.models import KIND_MODELS
from flowctl.store.sqlite import SqliteStore


class BundleInvalid(FlowctlError):
    """The bundle does not validate; `problems` lists each one as {resource, field, message}."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        first = problems[0]
        where = ": ".join(str(p) for p in (first.get("resource"), first.get("field")) if p)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"the bundle does not validate: {where + ': ' if where else ''}{first['message']}{more}",
            hint="run `flowctl validate` on the tree you are applying",
        )
        self.problems = problems


@dataclass
class CheckedBundle:
    bundle: Bundle
    typed: TypedBundle
    hash: str
    warnings: list[dict[str, Any]]


def check_bundle(data: Any) -> CheckedBundle:
    """Parse and validate bundle JSON. Raises BundleInvalid naming each failing resource and field."""
    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        raise BundleInvalid(
            [
                {
                    "resource": None,
                    "field": "bundle." + ".".join(str(p) for p in e["loc"]),
                    "message": e["msg"],
                }
                for e in exc.errors(include_url=False)
            ]
        ) from None
    problems: list[dict[str, Any]] = []
    for kind in bundle.resources:
        if kind not in BUNDLE_KINDS:
            problems.append({"resource": kind, "field": None, "message": f"unknown kind '{kind}'"})
    if problems:
        raise BundleInvalid(problems)
    for kind, items in bundle.resources.items():
        model = KIND_MODELS[kind]
        for name, item in items.items():
            try:
                model.model_validate(item)
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    problems.append(
                        {
                            "resource": f"{kind}/{name}",
                            "field": ".".join(str(p) for p in err["loc"]) or None,
                            "message": str(err["msg"]).removeprefix("Value error, "),
                        }
                    )
    if problems:
        raise BundleInvalid(problems)
    typed = bundle.typed()
    errors, warnings = _check_passes(typed, bundle.project)
    if errors:
        raise BundleInvalid(errors)
    return CheckedBundle(bundle=bundle, typed=typed, hash=bundle.content_hash(), warnings=warnings)


def _check_passes(
    typed: TypedBundle, project_name: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The validate passes over the bundle's resources (without file positions: a bundle has no files)."""
    from flowctl.check.context import CheckContext
    from flowctl.check.validate import run_passes
    from flowctl.resources.models import ProjectConfig
    from flowctl.resources.project import Project, Source
    from flowctl.resources.yamlload import PositionMap

    project = Project(
        root=Path("."),
        config=ProjectConfig(project=project_name),
        flows=dict(typed.flows),
        sla_policies=dict(typed.sla_policies),
        calendars=dict(typed.calendars),
        teams=dict(typed.teams),
        templates=dict(typed.templates),
        defined_objects=dict(typed.defined_objects),
    )
    # A bundle has no files: each resource's "file" is its kind/name, so a diagnostic names the resource.
    for kind, mapping in project.resource_maps().items():
        for name in mapping:
            project.sources[(kind, name)] = Source(f"{kind}/{name}", PositionMap())
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for diag in run_passes(CheckContext(project)):
        resource = diag.range.file if "/" in diag.range.file and not diag.range.file.startswith("<") else None
        entry = {"resource": resource, "field": None, "message": diag.summary, "code": diag.code}
        (errors if diag.severity == "error" else warnings).append(entry)
    return errors, warnings


class SqliteBundles:
    """The engine's BundleSource over the bundles table, parsing each version once.

    Only the writer thread uses it (through the engine), so the live version
    read from its own connection includes a version applied in the current,
    not yet committed transaction.
    """

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._cache: dict[int, TypedBundle] = {}

    def live_version(self) -> int | None:
        version = self.store.live_bundle_version()
        return version or None

    def bundle(self, version: int) -> TypedBundle:
        hit = self._cache.get(version)
        if hit is not None:
            return hit
        row = self.store.get_bundle(version)
        if row is None or row.data is None:
            raise KeyError(version)
        typed = Bundle.model_validate(row.data).typed()
        self._cache[version] = typed
        return typed

    def remember(self, version: int, typed: TypedBundle) -> None:
        self._cache[version] = typed

    def forget(self, version: int) -> None:
        # A version whose apply rolled back may be reused by the next apply with other content.
        self._cache.pop(version, None)
