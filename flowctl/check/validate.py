"""`validate` as a library: load a repository, run every pass, report.

    report = validate_path("flows/welcome.yaml", strict=False)
    report.valid, report.error_count, report.diagnostics

The whole repository is always loaded (references need it); a PATH inside it
narrows which files' diagnostics are reported. `check_project` is what other
commands (plan, apply, test) call to know whether a loaded tree is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from flowctl.check.conditions import check_conditions
from flowctl.check.context import CheckContext
from flowctl.check.cross_flow import check_cross_flow
from flowctl.check.diagnostics import Diagnostic, Range
from flowctl.check.flow_tests import check_flow_tests
from flowctl.check.graph import check_graph
from flowctl.check.references import check_references
from flowctl.check.sla import check_sla
from flowctl.check.templating import check_templates
from flowctl.errors import ProjectError
from flowctl.resources.project import (
    CONFIG_FILE,
    YAML_SUFFIXES,
    Project,
    gc_paused,
    load_document,
    load_project,
)

Pass = Callable[[CheckContext], Iterable[Diagnostic]]

# In the order a reader fixes things: names first, then types, then structure.
PASSES: list[tuple[str, Pass]] = [
    ("references", check_references),
    ("conditions", check_conditions),
    ("templates", check_templates),
    ("graph", check_graph),
    ("cross-flow", check_cross_flow),
    ("sla", check_sla),
    ("flow tests", check_flow_tests),
]


def run_passes(ctx: CheckContext) -> list[Diagnostic]:
    """Every pass over a loaded project, plus the loader's diagnostics; sorted, without duplicates."""
    found: list[Diagnostic] = list(ctx.project.diagnostics)
    for name, check in PASSES:
        try:
            for diag in check(ctx):
                found.append(diag)
        except Exception as exc:  # a pass must never turn odd input into a traceback
            found.append(
                Diagnostic(
                    code="internal-error",
                    summary=f"the {name} check stopped: {type(exc).__name__}: {exc}",
                    hint="this is a bug in flowctl; please report it with the files that trigger it",
                    range=Range(file=CONFIG_FILE),
                )
            )
    unique: dict[tuple[str, int, int, str, str], Diagnostic] = {}
    for d in found:
        unique.setdefault((d.range.file, d.range.line, d.range.column, d.code, d.summary), d)
    return sorted(unique.values(), key=Diagnostic.sort_key)


def check_project(project: Project) -> list[Diagnostic]:
    """All diagnostics for a loaded project (errors and warnings)."""
    return run_passes(CheckContext(project))


@dataclass
class ValidationReport:
    root: Path
    scope: str  # the PATH asked for, relative to the root ("" for the whole repository)
    files: list[str]  # files checked within the scope
    diagnostics: list[Diagnostic] = field(default_factory=list)  # within the scope
    strict: bool = False

    @property
    def error_count(self) -> int:
        return sum(d.severity == "error" for d in self.diagnostics)

    @property
    def warning_count(self) -> int:
        return sum(d.severity == "warning" for d in self.diagnostics)

    @property
    def valid(self) -> bool:
        return self.error_count == 0 and not (self.strict and self.warning_count)

    @property
    def files_with_problems(self) -> int:
        return len({d.range.file for d in self.diagnostics})


def _in_scope(file: str, scope: str) -> bool:
    return not scope or file == scope or file.startswith(scope.rstrip("/") + "/")


def validate_path(path: Path | str = ".", *, strict: bool = False) -> ValidationReport:
    """Validate the repository containing `path`, reporting on the files under `path`.

    Raises ProjectError only when `path` does not exist.
    """
    start = Path(path)
    if not start.exists():
        raise ProjectError(
            f"no such file or directory: {start}", hint="pass the flows repository or a file inside it"
        )
    with gc_paused():  # see gc_paused: validate builds many objects and frees none until it ends
        return _validate(start, strict)


def _validate(start: Path, strict: bool) -> ValidationReport:
    project = load_project(start)
    root = project.root
    try:
        scope = start.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        scope = start.as_posix()
    if scope == ".":
        scope = ""

    ctx = CheckContext(project)
    fixtures_dir = (root / project.config.paths.fixtures).resolve()
    if (
        start.is_file()
        and start.suffix in YAML_SUFFIXES
        and scope not in project.files
        and scope != CONFIG_FILE
    ):
        if fixtures_dir in start.resolve().parents:
            ctx.extra_fixtures.append(scope)
        else:
            # A file outside the configured paths: check it as a resource of this repository.
            load_document(start, root, project)
            ctx = CheckContext(project)

    diagnostics = run_passes(ctx)
    files = list(project.files)
    if (root / CONFIG_FILE).is_file():
        files.insert(0, CONFIG_FILE)
    files += [f for f in ctx.fixture_files if f not in files]
    return ValidationReport(
        root=root,
        scope=scope,
        files=[f for f in files if _in_scope(f, scope)],
        # An internal error is shown whatever the scope: it may hide problems anywhere.
        diagnostics=[d for d in diagnostics if _in_scope(d.range.file, scope) or d.code == "internal-error"],
        strict=strict,
    )
