"""`flowctl init`: the template tree of a new flows repository and the code that copies it.

The files next to this module (flowctl.yaml, flows/, templates/, tests/, the
GitHub workflow, ...) are package data: they ship inside the wheel and are
copied as they are, with `__PROJECT__` replaced by the project name. The JSON
Schemas are generated at init time so they always match the installed flowctl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from flowctl.errors import ProjectError
from flowctl.resources.jsonschema import export_schemas
from flowctl.resources.project import CONFIG_FILE

PLACEHOLDER = "__PROJECT__"
# This module and Python's caches live in the same folder as the template tree.
_NOT_TEMPLATE = {"__init__.py", "__pycache__"}


@dataclass
class ScaffoldResult:
    directory: Path
    project: str
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "project": self.project,
            "written": self.written,
            "skipped": self.skipped,
        }


def template_files() -> dict[str, str]:
    """Relative path (posix) → content of every file of the template tree."""
    out: dict[str, str] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name in _NOT_TEMPLATE or child.name.endswith(".pyc"):
                continue
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            else:
                out[rel] = child.read_text(encoding="utf-8")

    walk(files("flowctl").joinpath("scaffold"), "")
    return out


def project_name_for(directory: Path) -> str:
    """A valid resource-style name from the folder name (`My CRM Flows` → `my-crm-flows`)."""
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"flows-{name}" if name else "flows"
    return name


def scaffold_project(
    directory: Path | str, *, project: str | None = None, force: bool = False
) -> ScaffoldResult:
    """Create a working flows repository in `directory`.

    Refuses a directory that already holds flowctl.yaml unless `force`. Other
    existing files are kept (reported as skipped) unless `force`, which
    overwrites the scaffold's files and leaves everything else alone.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ProjectError(f"{target} exists and is not a directory", hint="pass a new or empty folder")
    if (target / CONFIG_FILE).exists() and not force:
        raise ProjectError(
            f"{target} already holds a flows repository ({CONFIG_FILE} exists)",
            hint="pick another directory, or pass --force to overwrite the scaffold's files",
        )
    name = project or project_name_for(target)
    result = ScaffoldResult(directory=target, project=name)
    for rel, content in template_files().items():
        path = target / rel
        if path.exists() and not force:
            result.skipped.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content.replace(PLACEHOLDER, name), encoding="utf-8")
        result.written.append(rel)
    schemas = export_schemas(target / "schemas")
    result.written += [f"schemas/{n}" for n in schemas.written]
    return result
