"""Fixture records for simulations: files of records, inline records, and lookups by id.

A fixture file is a YAML list of records, each with `object` and `id`
(`flowctl.resources.project.load_records_file`). `simulate --record` takes a
file (its first record), `FILE#id`, or a bare id looked up in every file under
the project's fixtures folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowctl.errors import ProjectError
from flowctl.resources.project import YAML_SUFFIXES, Project, load_records_file


def _resolve(project: Project, ref: str, base: Path | None = None) -> Path | None:
    candidates = [project.root / ref]
    if base is not None:
        candidates.append(base / ref)
    candidates.append(Path(ref))
    for path in candidates:
        if path.is_file():
            return path
    return None


def load_records(project: Project, items: list[str | dict[str, Any]], *, base: Path | None = None) -> list[dict[str, Any]]:
    """The records a flow test lists: files (relative to the project root or the test file) and inline records."""
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            if "object" not in item or "id" not in item:
                raise ProjectError(f"an inline record needs `object` and `id`: {item!r}",
                                   hint="e.g. {object: user, id: li.lei, name: Li Lei}")
            out.append(dict(item))
            continue
        path = _resolve(project, item, base)
        if path is None:
            raise ProjectError(f"fixture file not found: {item}",
                               hint=f"paths are relative to the repository root ({project.root})")
        records, _ = load_records_file(path, project.root)
        out.extend(dict(r) for r in records)
    return out


def fixture_files(project: Project) -> list[Path]:
    folder = project.root / project.config.paths.fixtures
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())


def _context(project: Project, chosen: list[dict[str, Any]], target: dict[str, Any]) -> list[dict[str, Any]]:
    """Records around the target: its own file, plus every fixture record of other objects (users, accounts)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for file in fixture_files(project):
        try:
            records, _ = load_records_file(file, project.root)
        except ProjectError:
            continue  # a broken unrelated fixture file must not stop a simulation
        for rec in records:
            if rec["object"] != target["object"]:
                merged[(str(rec["object"]), str(rec["id"]))] = dict(rec)
    for rec in chosen:
        merged[(str(rec["object"]), str(rec["id"]))] = dict(rec)
    return list(merged.values())


def find_record(project: Project, ref: str, *, object_name: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The record `ref` names, plus the records around it (its file, and other objects' fixtures).

    `ref` is a fixture file (its first record of `object_name` when given), `FILE#id`, or an id.
    """
    file_part, _, wanted = ref.partition("#")
    path = _resolve(project, file_part) if file_part else None
    if path is not None:
        records, _ = load_records_file(path, project.root)
        if not records:
            raise ProjectError(f"{file_part} holds no records")
        chosen = [dict(r) for r in records]
        if wanted:
            for rec in records:
                if str(rec["id"]) == wanted:
                    return dict(rec), _context(project, chosen, rec)
            raise ProjectError(f"no record with id '{wanted}' in {file_part}",
                               hint="ids in that file: " + ", ".join(str(r["id"]) for r in records[:10]))
        for rec in records:
            if object_name is None or rec["object"] == object_name:
                return dict(rec), _context(project, chosen, rec)
        raise ProjectError(f"{file_part} holds no {object_name} record")
    if wanted or any(ref.endswith(s) for s in YAML_SUFFIXES):
        raise ProjectError(f"fixture file not found: {file_part}")
    for file in fixture_files(project):
        records, _ = load_records_file(file, project.root)
        for rec in records:
            if str(rec["id"]) == ref and (object_name is None or rec["object"] == object_name):
                return dict(rec), _context(project, [], rec)
    where = project.config.paths.fixtures
    raise ProjectError(f"no fixture record with id '{ref}' under {where}/",
                       hint="pass a fixture file, FILE#id, or an id defined in a fixture file")
