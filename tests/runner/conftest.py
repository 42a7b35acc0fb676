from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowctl.runner.app import create_app

# The provider fakes live in tests/connectors; under --import-mode=importlib that package is
# importable as `connectors` once tests/ is on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flowctl.runner.auth import create_token
from flowctl.runner.config import RunnerConfig
from flowctl.runner.daemon import Runner


@dataclass
class Api:
    """The runner's app in-process (real threads, real SQLite file) and an admin token."""

    client: TestClient
    runner: Runner
    base: Path
    admin: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}

    def get(self, path: str, token: str | None = None, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(token), **kw)

    def post(self, path: str, body: Any = None, token: str | None = None) -> Any:
        return self.client.post(path, json=body, headers=self.headers(token))

    def put(self, path: str, body: Any, token: str | None = None) -> Any:
        return self.client.put(path, json=body, headers=self.headers(token))

    def token(self, role: str) -> str:
        return self.runner.writer.call(lambda: create_token(self.runner.store, role, name=f"test-{role}"))[1]

    def wait_for(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError("condition not reached in time")

    def run_status(self, run_id: str) -> str:
        return str(self.get(f"/v1/runs/{run_id}").json()["status"])


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    opened: list[TestClient] = []

    def make(config: RunnerConfig | dict[str, Any] | None = None, **env: str) -> Api:
        if isinstance(config, dict):
            config = RunnerConfig.model_validate(config)
        runner = Runner(config or RunnerConfig(), base_dir=tmp_path, environment=env)
        client = TestClient(create_app(runner), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        admin = (tmp_path / ".flowctl" / "admin.token").read_text().strip()
        return Api(client, runner, tmp_path, admin)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()
