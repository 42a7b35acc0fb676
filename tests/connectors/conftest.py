from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .provider_fakes import FakeHttp, FakeSmtp


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtp]:
    server = FakeSmtp().start()
    yield server
    server.stop()


@pytest.fixture
def http_server() -> Iterator[FakeHttp]:
    server = FakeHttp().start()
    yield server
    server.stop()


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")
