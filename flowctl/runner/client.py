"""The runner's HTTP API as Python calls (httpx). Every CLI command that talks to the runner uses this.

Where the runner is (SPEC §9): `--runner`, then `FLOWCTL_RUNNER_URL`, then
`runner.url` in flowctl.yaml, then http://127.0.0.1:8787. The token:
`--token`, then `FLOWCTL_TOKEN`, then `.flowctl/admin.token` in the current
directory or the project root, but only when the runner is on loopback (a
token file must never be sent to a remote host by accident).

Errors become `RunnerError` (or a subclass) with the runner's message and a
hint: unreachable, 401/403, 409 version conflicts, 422 invalid input.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from flowctl.errors import RunnerError

DEFAULT_URL = "http://127.0.0.1:8787"
TOKEN_FILE = Path(".flowctl") / "admin.token"


class RunnerConflictError(RunnerError):
    """409: the runner's bundle version is not the one the caller expected."""

    def __init__(self, message: str, *, live_version: int | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.live_version = live_version


class RunnerRequestError(RunnerError):
    """4xx other than auth and conflicts: the runner refused the request (names the failing field)."""

    def __init__(
        self, message: str, *, status: int, field: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.field = field


class RunnerNotFoundError(RunnerRequestError):
    """404: no such run, task, record or bundle version."""


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_url(runner: str | None = None, *, start: Path | None = None) -> str:
    if runner:
        return runner.rstrip("/")
    env = os.environ.get("FLOWCTL_RUNNER_URL")
    if env:
        return env.rstrip("/")
    from flowctl.resources.project import CONFIG_FILE, find_root, load_config

    root = find_root(start or Path.cwd())
    if (root / CONFIG_FILE).is_file():
        return load_config(root).runner.url.rstrip("/")
    return DEFAULT_URL


def resolve_token(token: str | None, url: str, *, start: Path | None = None) -> str | None:
    if token:
        return token.strip()
    env = os.environ.get("FLOWCTL_TOKEN")
    if env:
        return env.strip()
    if not is_loopback(url):
        return None
    from flowctl.resources.project import find_root

    here = (start or Path.cwd()).resolve()
    for folder in (here, find_root(here)):
        path = folder / TOKEN_FILE
        if path.is_file():
            return path.read_text().strip() or None
    return None


class RunnerClient:
    """A thin typed wrapper over the runner API. Use as a context manager or call close()."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"User-Agent": "flowctl"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_options(
        cls,
        runner: str | None = None,
        token: str | None = None,
        *,
        start: Path | None = None,
        timeout: float = 30.0,
    ) -> RunnerClient:
        url = resolve_url(runner, start=start)
        return cls(url, resolve_token(token, url, start=start), timeout=timeout)

    def __enter__(self) -> RunnerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------- plumbing
    def request(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=clean)
        except httpx.TimeoutException:
            raise RunnerError(
                f"the runner at {self.url} did not answer in time",
                hint="check that it is running and not overloaded (`flowctl runner serve`)",
            ) from None
        except httpx.TransportError as exc:
            raise RunnerError(
                f"cannot reach the runner at {self.url} ({type(exc).__name__})",
                hint="start it with `flowctl runner serve`, or point --runner / FLOWCTL_RUNNER_URL at it",
            ) from None
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> Any:
        if response.status_code < 400:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                return response.text
        body: dict[str, Any] = {}
        try:
            decoded = response.json()
            if isinstance(decoded, dict):
                body = decoded
        except ValueError:
            pass
        message = str(body.get("error") or response.reason_phrase or f"HTTP {response.status_code}")
        hint = body.get("hint")
        status = response.status_code
        if status == 401:
            if not self.token:
                # The runner's own hint speaks HTTP headers; a CLI user needs to know where a token comes from.
                hint = None
            raise RunnerError(
                f"the runner refused the request: {message}",
                hint=hint or "pass --token, set FLOWCTL_TOKEN, or run where .flowctl/admin.token is",
            )
        if status == 403:
            raise RunnerError(f"not allowed: {message}", hint=hint or "use a token with a stronger role")
        if status == 409:
            live = body.get("live_version")
            raise RunnerConflictError(
                message, live_version=live if isinstance(live, int) else None, hint=hint
            )
        if status == 404:
            raise RunnerNotFoundError(message, status=status, field=body.get("field"), hint=hint)
        if status < 500:
            raise RunnerRequestError(message, status=status, field=body.get("field"), hint=hint)
        raise RunnerError(
            f"the runner failed: {message} (HTTP {status})", hint=hint or "see the runner's log"
        )

    # ------------------------------------------------------------- bundles (gitops uses these)
    def get_bundle(self) -> dict[str, Any]:
        """{"version": int (0 = none), "hash", "bundle", "applied_at", "meta"}."""
        return self.request("GET", "/v1/bundle")

    def put_bundle(
        self, bundle: Any, expected_version: int, meta: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Apply `bundle` (a flowctl.resources.bundle.Bundle or its JSON dict). Raises RunnerConflictError on 409."""
        data = bundle.model_dump(mode="json") if hasattr(bundle, "model_dump") else bundle
        body = {"bundle": data, "expected_version": expected_version, "meta": dict(meta or {})}
        return self.request("PUT", "/v1/bundle", json=body)

    def versions(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/bundle/versions")["versions"]

    def bundle_version(self, version: int) -> dict[str, Any]:
        return self.request("GET", f"/v1/bundle/versions/{version}")

    def inflight(self) -> dict[str, dict[str, int]]:
        """{flow: {version (as a string, JSON keys): open run count}}."""
        return self.request("GET", "/v1/bundle/inflight")["flows"]

    def audit(self, *, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/audit", params={"limit": limit, "action": action})["entries"]

    # ------------------------------------------------------------- events and runs
    def send_events(self, events: Any) -> Any:
        """POST one event (dict → one answer) or a list (→ a list of answers)."""
        return self.request("POST", "/v1/events", json=events)

    def runs(self, **filters: Any) -> dict[str, Any]:
        """{"runs": [...], "next": cursor|null}. Filters: flow, status, object, record, since, limit, before."""
        return self.request("GET", "/v1/runs", params=filters)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/runs/{run_id}")

    def start_run(self, flow: str, record_id: str | None = None, object: str | None = None) -> dict[str, Any]:
        body = {"flow": flow, "record": record_id, "object": object}
        return self.request("POST", "/v1/runs", json=body)

    def retry_run(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/runs/{run_id}/retry")

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/runs/{run_id}/cancel")

    # ------------------------------------------------------------- tasks, records, messages
    def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/tasks", params=filters)["tasks"]

    def task(self, task_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/tasks/{task_id}")

    def complete_task(
        self,
        task_id: str,
        decision: str,
        *,
        comment: str | None = None,
        by: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {"decision": decision, "comment": comment, "by": by, "data": dict(data or {})}
        return self.request("POST", f"/v1/tasks/{task_id}/complete", json=body)

    def record(self, object: str, record_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/records/{object}/{record_id}")

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/messages", params=filters)["messages"]

    # ------------------------------------------------------------- SLA
    def sla_status(self, object: str, record_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/sla/{object}/{record_id}")

    def sla_revert(self, object: str, record_id: str, clock: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/sla/{object}/{record_id}/{clock}/revert")

    # ------------------------------------------------------------- operations
    def stats(self, **filters: Any) -> dict[str, Any]:
        return self.request("GET", "/v1/stats", params=filters)

    def failures(self, **filters: Any) -> dict[str, Any]:
        return self.request("GET", "/v1/reports/failures", params=filters)

    def metrics(self) -> dict[str, Any]:
        return self.request("GET", "/v1/metrics")

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/v1/health")
