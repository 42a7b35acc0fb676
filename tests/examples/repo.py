"""Where the example repository lives (the root of this git repository) and how to read its files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from flowctl.resources.yamlload import load_file

ROOT = Path(__file__).resolve().parents[2]

# Each YAML folder of the example repository and the schema its files follow.
YAML_FOLDERS: dict[str, str | None] = {
    "flows": None,  # flows, SLA policies, calendars, teams: by `kind`
    "templates": "template",
    "schemas/objects": "object",
    "tests/flows": "flow_test",
    "tests/fixtures": "fixture",
}


def yaml_files() -> list[Path]:
    files = [ROOT / "flowctl.yaml"]
    for folder in YAML_FOLDERS:
        files += sorted((ROOT / folder).rglob("*.yaml"))
    return files


def load_yaml(path: Path) -> Any:
    return load_file(path).data


def as_json(data: Any) -> Any:
    """YAML values as JSON sees them (dates become ISO strings), for JSON Schema validation."""

    def default(value: Any) -> str:
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    return json.loads(json.dumps(data, default=default))


def schema_name_for(path: Path, data: Any) -> str:
    rel = path.relative_to(ROOT).as_posix()
    if rel == "flowctl.yaml":
        return "flowctl"
    for folder, name in YAML_FOLDERS.items():
        if rel.startswith(folder + "/"):
            return name if name is not None else str(data["kind"])
    raise AssertionError(f"{rel} is not in a known folder")
