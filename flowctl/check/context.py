"""What every validation pass shares: the project, field lookups, and positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowctl.check.diagnostics import Diagnostic, Range, Severity
from flowctl.check.fields import FieldProblem, FieldResolver
from flowctl.lang.templates import is_templated
from flowctl.resources.project import Project, Source


@dataclass
class Owner:
    """The resource a diagnostic is about: its kind, name and source (for positions)."""

    kind: str
    name: str
    source: Source | None

    def range(self, path: tuple[str | int, ...] = (), *, prefer_key: bool = False) -> Range:
        if self.source is None:
            return Range(file="<builtin>")
        return self.source.range(path, prefer_key=prefer_key)


@dataclass
class CheckContext:
    project: Project
    # Fixture files to check even when no test names them (`flowctl validate tests/fixtures/x.yaml`).
    extra_fixtures: list[str] = field(default_factory=list)
    # Fixture files the checks read (relative paths): they count as checked files.
    fixture_files: list[str] = field(default_factory=list)
    resolver: FieldResolver = field(init=False)

    def __post_init__(self) -> None:
        self.resolver = FieldResolver(self.project)

    def owner(self, kind: str, name: str) -> Owner:
        return Owner(kind, name, self.project.sources.get((kind, name)))

    @staticmethod
    def diag(
        owner: Owner,
        path: tuple[str | int, ...],
        code: str,
        summary: str,
        *,
        hint: str | None = None,
        detail: str | None = None,
        severity: Severity = "error",
        prefer_key: bool = False,
    ) -> Diagnostic:
        return Diagnostic(
            severity=severity,
            code=code,
            summary=summary,
            hint=hint,
            detail=detail,
            range=owner.range(path, prefer_key=prefer_key),
        )

    @staticmethod
    def from_problem(
        owner: Owner,
        path: tuple[str | int, ...],
        problem: FieldProblem,
        what: str = "",
        *,
        prefer_key: bool = False,
    ) -> Diagnostic:
        summary = f"{what}: {problem.summary}" if what else problem.summary
        return Diagnostic(
            code=problem.code,
            summary=summary,
            hint=problem.hint,
            range=owner.range(path, prefer_key=prefer_key),
        )


def is_dynamic(value: Any) -> bool:
    """A templated value is only known at run time: reference checks skip it."""
    return is_templated(value)
