"""Diagnostics: what validate reports, each pointing at file:line:col."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning"]


class Range(BaseModel):
    file: str
    line: int = 1
    column: int = 1


class Diagnostic(BaseModel):
    """One finding. `code` is stable (documented in docs/diagnostics.md); `summary` is one line."""

    severity: Severity = "error"
    code: str
    summary: str
    detail: str | None = None
    hint: str | None = None
    range: Range = Field(default_factory=lambda: Range(file="<unknown>"))

    @property
    def location(self) -> str:
        return f"{self.range.file}:{self.range.line}:{self.range.column}"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.range.file, self.range.line, self.range.column, self.code)
