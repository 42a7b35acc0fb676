"""Validation passes: load → check → Diagnostic(severity, code, summary, detail, hint, range).

`check_project(project)` and `validate_path(path)` live in flowctl.check.validate;
they are importable from here too. The import is lazy because the loader
(flowctl.resources.project) imports flowctl.check.diagnostics, and the passes
import the loader.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ValidationReport", "check_project", "validate_path"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from flowctl.check import validate

        return getattr(validate, name)
    raise AttributeError(f"module 'flowctl.check' has no attribute {name!r}")
