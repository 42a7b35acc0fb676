"""Forwarding record changes made by flows to the CRM (runner.yaml `crm_webhook`).

When a flow creates or updates a record, a `crm_outbox` row is written in the
same transaction as the change (so a committed change is never lost for the
CRM). A worker thread POSTs each row as JSON:

    {"idempotency_key", "change": "created"|"updated", "object", "id",
     "changes": {field: {"from", "to"}}, "record": {...}, "run_id", "flow", "step", "at"}

with headers `Idempotency-Key` and, when `secret_env` is set,
`X-Flowctl-Signature: sha256=<hex HMAC of the body>`. Failures are retried
with exponential backoff (1s, 2s, 4s, … capped at 10 minutes) up to
`attempts` tries; then the row is marked failed and shows in the failure report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from flowctl.connectors.errors import classify_exception
from flowctl.engine.state import TraceEntry
from flowctl.lang.durations import Duration
from flowctl.runner.config import CrmWebhookConfig
from flowctl.runner.writer import Writer
from flowctl.store.sqlite import CrmForward, SqliteStore

log = logging.getLogger("flowctl.runner")
UTC = dt.UTC
MAX_BACKOFF = 600.0


def forward_payload(store: SqliteStore, entry: TraceEntry) -> dict[str, Any] | None:
    """The CRM payload for a record trace entry written by a run (None for changes that came from the CRM)."""
    if entry.kind != "record" or entry.run_id is None or entry.status not in ("created", "updated"):
        return None
    obj, rid = entry.detail.get("object"), entry.detail.get("record")
    if not isinstance(obj, str) or rid is None:
        return None
    record = store.get_record(obj, str(rid))
    changes = {
        k: {"from": v[0], "to": v[1]}
        for k, v in (entry.detail.get("changes") or {}).items()
        if isinstance(v, list | tuple) and len(v) == 2
    }
    return {
        "idempotency_key": f"record-change-{entry.seq}",
        "change": entry.status,
        "object": obj,
        "id": str(rid),
        "changes": changes,
        "record": record.as_fields() if record is not None else None,
        "run_id": entry.run_id,
        "flow": entry.flow,
        "step": entry.step,
        "at": entry.at.isoformat().replace("+00:00", "Z"),
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class CrmForwarder:
    def __init__(
        self,
        config: CrmWebhookConfig,
        writer: Writer,
        store: SqliteStore,
        http: httpx.Client,
        *,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.writer = writer
        self.store = store  # the writer's store, used inside writer jobs only
        self.http = http
        self.environment = environment if environment is not None else os.environ
        self.timeout = float(Duration.parse(config.timeout).nominal_seconds())
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flowctl-crm-forward", daemon=True)

    # Called inside the engine's transaction for every trace entry.
    def on_trace(self, entry: TraceEntry) -> None:
        payload = forward_payload(self.store, entry)
        if payload is not None:
            self.store.add_crm_forward(
                payload["idempotency_key"], payload["object"], payload["id"], entry.run_id, payload, entry.at
            )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                due = self.writer.call(
                    lambda: self.store.due_crm_forwards(dt.datetime.now(UTC)), label="crm.due"
                )
                for row in due:
                    if self._stopping.is_set():
                        return
                    self._send(row)
                nxt = self.writer.call(self.store.next_crm_forward_due, label="crm.next")
            except Exception:
                log.exception("CRM forwarding pass failed")
                nxt = None
            wait = 5.0
            if nxt is not None:
                wait = max(0.0, min(wait, (nxt - dt.datetime.now(UTC)).total_seconds()))
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _send(self, row: CrmForward) -> None:
        body = json.dumps(row.payload, ensure_ascii=False, default=str).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": row.idempotency_key,
            "User-Agent": "flowctl-runner",
        }
        error: str | None = None
        try:
            if self.config.secret_env:
                secret = self.environment.get(self.config.secret_env)
                if secret is None:
                    raise RuntimeError(f"environment variable {self.config.secret_env} is not set")
                headers["X-Flowctl-Signature"] = signature(secret, body)
            response = self.http.post(self.config.url, content=body, headers=headers, timeout=self.timeout)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except Exception as exc:
            error = classify_exception(exc)[0] if not isinstance(exc, RuntimeError) else str(exc)
        now = dt.datetime.now(UTC)
        if error is None:
            self.writer.call(lambda: self.store.finish_crm_forward(row.n, ok=True, now=now), label="crm.sent")
            return
        attempts = row.attempts + 1
        retry_at = None
        if attempts < self.config.attempts:
            retry_at = now + dt.timedelta(seconds=min(MAX_BACKOFF, 2.0 ** (attempts - 1)))
        log.warning(
            "forwarding %s/%s to the CRM failed (%s), attempt %d", row.object, row.record_id, error, attempts
        )
        self.writer.call(
            lambda: self.store.finish_crm_forward(row.n, ok=False, now=now, error=error, retry_at=retry_at),
            label="crm.failed",
        )
