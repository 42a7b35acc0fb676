"""Bundles: the applied, versioned content of a flows repository.

A bundle is what `apply` pushes to the runner and what a run is pinned to
(SPEC §10.9): every flow, SLA policy, calendar, team, template and object of a
commit, stored as the YAML data the user wrote (`exclude_unset`), so two
bundles compare equal exactly when their content does, whatever the commit.
Flow tests are not part of a bundle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from flowctl.resources.builtins import merged_objects, object_fields
from flowctl.resources.models import (
    KIND_MODELS,
    Calendar,
    FieldDef,
    Flow,
    ObjectSchema,
    SlaPolicy,
    Team,
    Template,
)

BUNDLE_KINDS = ("flow", "sla_policy", "calendar", "team", "template", "object")


class Bundle(BaseModel):
    """Serialized content. `resources[kind][name]` is the resource's data as written."""

    format_version: int = 1
    project: str | None = None
    resources: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)

    @classmethod
    def from_project(cls, project: Any) -> Bundle:
        """Build from a loaded `flowctl.resources.project.Project`."""
        resources: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, mapping in project.resource_maps().items():
            resources[kind] = {
                name: res.model_dump(mode="json", by_alias=True, exclude_unset=True)
                for name, res in sorted(mapping.items())
            }
        return cls(project=project.config.project, resources=resources)

    def canonical_json(self) -> str:
        return json.dumps(self.resources, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def content_hash(self) -> str:
        """sha256 of the resources only: equal content, equal hash ("no changes" compares content)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def typed(self) -> TypedBundle:
        return TypedBundle.from_bundle(self)


@dataclass
class TypedBundle:
    """A bundle parsed back into resource models: what the engine executes."""

    flows: dict[str, Flow] = field(default_factory=dict)
    sla_policies: dict[str, SlaPolicy] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    defined_objects: dict[str, ObjectSchema] = field(default_factory=dict)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> TypedBundle:
        out = cls()
        targets: dict[str, dict[str, Any]] = {
            "flow": out.flows,
            "sla_policy": out.sla_policies,
            "calendar": out.calendars,
            "team": out.teams,
            "template": out.templates,
            "object": out.defined_objects,
        }
        for kind, items in bundle.resources.items():
            model = KIND_MODELS[kind]
            for name, data in items.items():
                targets[kind][name] = model.model_validate(data)
        return out

    @classmethod
    def from_project(cls, project: Any) -> TypedBundle:
        """Share the already-validated models of a loaded project (no re-validation)."""
        return cls(
            flows=dict(project.flows),
            sla_policies=dict(project.sla_policies),
            calendars=dict(project.calendars),
            teams=dict(project.teams),
            templates=dict(project.templates),
            defined_objects=dict(project.defined_objects),
        )

    @property
    def objects(self) -> dict[str, ObjectSchema]:
        return merged_objects(self.defined_objects)

    def object_fields(self, object_name: str) -> dict[str, FieldDef] | None:
        return object_fields(self.objects, object_name)
