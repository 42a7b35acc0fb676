"""The runner as a real subprocess (`flowctl runner serve`), with fake providers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# The fakes and bundles are shared with tests/connectors and tests/runner. Under
# --import-mode=importlib those packages are named `connectors` and `runner`
# (tests/ has no __init__.py); make them importable here whatever ran first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.provider_fakes import FakeHttp, FakeSmtp, free_port

FLOWCTL = str(Path(sys.executable).parent / "flowctl")


class RunnerProcess:
    """Starts, kills (-9) and restarts `flowctl runner serve` in one data directory."""

    def __init__(
        self, base: Path, config: dict[str, Any] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.env.pop("FLOWCTL_TOKEN", None)
        self.env.pop("FLOWCTL_RUNNER_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []
        if config is not None:
            # JSON is YAML: runner.yaml written as JSON reads the same.
            (base / "runner.yaml").write_text(json.dumps(config, indent=2))

    def start(self, timeout: float = 20.0) -> RunnerProcess:
        log = self.base / f"runner-{len(self.logs)}.log"
        self.logs.append(log)
        self.proc = subprocess.Popen(
            [FLOWCTL, "runner", "serve", "--port", str(self.port), "--log-level", "warning"],
            cwd=self.base,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"runner exited with {self.proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"runner did not come up:\n{log.read_text()}")

    @property
    def token(self) -> str:
        return (self.base / ".flowctl" / "admin.token").read_text().strip()

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token or self.token}"}, timeout=30
        )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout)
        return self.proc.returncode

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def cli(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "FLOWCTL_RUNNER_URL": self.url}
        if token:
            env["FLOWCTL_TOKEN"] = token
        return subprocess.run(
            [FLOWCTL, *args], cwd=self.base, env=env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    server = FakeSmtp().start()
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[FakeHttp]:
    server = FakeHttp().start()
    yield server
    server.stop()


@pytest.fixture
def processes() -> Iterator[list[RunnerProcess]]:
    started: list[RunnerProcess] = []
    yield started
    for p in started:
        if p.proc is not None and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(10)


@pytest.fixture
def runner_for(
    tmp_path: Path, processes: list[RunnerProcess], smtp: FakeSmtp
) -> Callable[..., RunnerProcess]:
    """A runner (not started) whose email goes to the fake SMTP server."""

    def make(extra: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> RunnerProcess:
        config = {
            "email": {"smtp": {"host": "127.0.0.1", "port": smtp.port}, "from": "Acme <noreply@acme.example>"}
        }
        config.update(extra or {})
        proc = RunnerProcess(tmp_path, config, env)
        processes.append(proc)
        return proc

    return make
