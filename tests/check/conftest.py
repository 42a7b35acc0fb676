"""Fixtures for the validate tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .sample_repo import write_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(tmp_path / "repo")
