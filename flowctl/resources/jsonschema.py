"""JSON Schemas for every YAML kind, generated from the pydantic models.

Editors (VS Code with the YAML extension, JetBrains, Neovim through
yaml-language-server) read these to complete keys and flag mistakes while a
flow is being typed. The models stay the single source of truth: the files in
`schemas/` are regenerated with `flowctl schema export`, and a test fails when
the committed copies drift from the models.

A resource file points at its schema with a modeline on its first line:
`# yaml-language-server: $schema=../schemas/flow.schema.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flowctl.lang.durations import DURATION_PATTERN
from flowctl.resources.models import KIND_MODELS, ProjectConfig

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_SUFFIX = ".schema.json"


class FixtureRecord(BaseModel):
    """One record of a fixture file (tests/fixtures/*.yaml): its object, its id, then its field values."""

    model_config = ConfigDict(extra="allow")
    object: str = Field(description="the object schema this record follows, e.g. contact")
    id: str = Field(description="the record id flow tests refer to")


# The document that stands for each schema file, and what an editor shows for it.
_TITLES: dict[str, str] = {
    "flow": "flowctl flow: a trigger, entry conditions and steps",
    "sla_policy": "flowctl SLA policy: response and resolution clocks with escalation",
    "calendar": "flowctl business calendar: weekly hours and holidays in a time zone",
    "team": "flowctl team: members with skills, languages and capacity",
    "template": "flowctl message template: email, SMS, WhatsApp or notification",
    "object": "flowctl object schema: the fields of a CRM object and its consent rules",
    "flow_test": "flowctl flow test: records, scripted events and expectations on a virtual clock",
    "flowctl": "flowctl.yaml: project settings",
    "fixture": "flowctl fixture file: a list of records for flow tests",
}


def schema_names() -> list[str]:
    """Every schema this module generates, by name (the file is `<name>.schema.json`)."""
    return [*KIND_MODELS, "flowctl", "fixture"]


def schema_file_name(name: str) -> str:
    return f"{name}{SCHEMA_SUFFIX}"


def _fix_sla_targets(defs: dict[str, Any]) -> None:
    # An SLA target names its clocks as free keys (`first_response: 1h`). Pydantic
    # can only say "any extra key"; editors are more helpful when they know every
    # extra key is a duration.
    target = defs.get("SlaTarget")
    if target is not None:
        target["additionalProperties"] = {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "the target for the clock of this name, e.g. first_response: 2h",
        }


def build_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for one kind, `flowctl` (flowctl.yaml) or `fixture`."""
    if name == "flowctl":
        schema = ProjectConfig.model_json_schema(by_alias=True)
    elif name == "fixture":
        schema = {"type": "array", "items": FixtureRecord.model_json_schema(by_alias=True)}
    elif name in KIND_MODELS:
        schema = KIND_MODELS[name].model_json_schema(by_alias=True)
    else:
        raise KeyError(f"no schema named '{name}'; known: {', '.join(schema_names())}")
    _fix_sla_targets(schema.get("$defs", {}))
    # The dialect and title go first so that a reader of the file sees them first.
    head: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_file_name(name),
        "title": _TITLES[name],
    }
    body = {k: v for k, v in schema.items() if k not in ("title", "$schema", "$id")}
    return {**head, **body}


def render_schema(name: str) -> str:
    """The schema as committed: 2-space JSON, model field order kept, newline at the end."""
    return json.dumps(build_schema(name), indent=2, ensure_ascii=False) + "\n"


def generate_schemas() -> dict[str, str]:
    """file name → content, for every schema."""
    return {schema_file_name(n): render_schema(n) for n in schema_names()}


@dataclass
class ExportResult:
    directory: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "written": self.written, "unchanged": self.unchanged}


def export_schemas(directory: Path | str) -> ExportResult:
    """Write every schema into `directory` (created when missing); files already up to date are not touched."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    result = ExportResult(directory=target)
    for file_name, content in generate_schemas().items():
        path = target / file_name
        if path.is_file() and path.read_text(encoding="utf-8") == content:
            result.unchanged.append(file_name)
            continue
        path.write_text(content, encoding="utf-8")
        result.written.append(file_name)
    return result


def stale_schemas(directory: Path | str) -> list[str]:
    """The schema files in `directory` that are missing or differ from what the models generate now."""
    target = Path(directory)
    stale: list[str] = []
    for file_name, content in generate_schemas().items():
        path = target / file_name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(file_name)
    return stale
