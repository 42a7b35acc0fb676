"""Request bodies of the runner API (they make the OpenAPI document and the 422 field names).

Answers are documented in docs/formats/api.md; they are built from the
engine's state models (flowctl.engine.state) by `flowctl.runner.views`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flowctl.engine.state import Event


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(ApiModel):
    """One event as the CRM posts it (SPEC §9)."""

    type: Literal["record_created", "record_updated", "record_deleted", "event"]
    object: str | None = Field(None, min_length=1, max_length=200)
    record: dict[str, Any] = Field(default_factory=dict, description='at least {"id": ...}')
    before: dict[str, Any] | None = Field(None, description="previous values of the fields that changed")
    name: str | None = Field(None, min_length=1, max_length=200, description="the custom event's name")
    data: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=500)
    occurred_at: dt.datetime | None = None

    @field_validator("record")
    @classmethod
    def _record_id(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "id" in value:
            rid = value["id"]
            if isinstance(rid, bool) or not isinstance(rid, str | int) or str(rid) == "":
                raise ValueError("record.id must be a non-empty string or an integer")
            value = {**value, "id": str(rid)}
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone, e.g. 2026-04-06T09:00:00Z")
        return value

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for what the event's type requires but it lacks."""
        if self.type == "event":
            return [] if self.name else [("name", "an event of type `event` needs `name`")]
        out = []
        if not self.object:
            out.append(("object", f"a {self.type} event needs `object`"))
        if "id" not in self.record:
            out.append(("record.id", f"a {self.type} event needs `record.id`"))
        return out

    def to_event(self) -> Event:
        # Validated already (the same fields, stricter): build the engine's Event without a second
        # validation. Unset optional fields stay out, as `model_dump(exclude_none=True)` left them;
        # `occurred_at` gets the normalisation Event's validator would apply (aware → UTC).
        values = {k: v for k, v in self.__dict__.items() if v is not None}
        if self.occurred_at is not None:
            values["occurred_at"] = self.occurred_at.astimezone(dt.UTC)
        return Event.model_construct(**values)


class BundleMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    tag: str | None = None
    commit: str | None = None
    publisher: str | None = None
    summary: str | None = None
    action: Literal["apply", "rollback"] = "apply"


class BundlePut(ApiModel):
    bundle: dict[str, Any]
    expected_version: int = Field(ge=0, description="the live version the caller planned against (0 = none)")
    meta: BundleMeta = Field(default_factory=BundleMeta)


class ManualRunIn(ApiModel):
    flow: str = Field(min_length=1)
    record: str | None = Field(None, description="the record id (the flow's object unless `object` is given)")
    object: str | None = None


class TaskCompleteIn(ApiModel):
    decision: Literal["approved", "rejected", "done"]
    comment: str | None = Field(None, max_length=10_000)
    by: str | None = Field(None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)
    attachments: list[str] = Field(default_factory=list)
