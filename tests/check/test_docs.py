"""Every diagnostic code the checks can emit is documented in docs/diagnostics.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    *sorted((ROOT / "flowctl" / "check").glob("*.py")),
    ROOT / "flowctl" / "resources" / "yamlload.py",
    ROOT / "flowctl" / "resources" / "project.py",
]
CODE = re.compile(
    r'"((?:file|yaml|schema|bad|unknown|duplicate|missing|template|condition|field|date|value|'
    r'goto|unreachable|flow|sla|fixture|call|internal)-[a-z0-9-]+)"'
)
KIND_CODES = {"unknown-calendar", "unknown-team", "unknown-template", "unknown-flow", "unknown-object"}


def test_every_code_is_documented() -> None:
    emitted = set(KIND_CODES)
    for path in SOURCES:
        emitted |= set(CODE.findall(path.read_text()))
    documented = set(re.findall(r"^### `([a-z0-9-]+)`", (ROOT / "docs" / "diagnostics.md").read_text(), re.M))
    assert emitted - documented == set()
    assert len(emitted) > 60
