"""The `webhook` action: one HTTP request per attempt (httpx), bounded by a timeout.

The request carries the outbox row's `Idempotency-Key`; secrets in the URL,
headers or body are revealed only here. The step's output is the answer's
status, a few headers and its JSON; an unexpected status fails the attempt
with error class `HTTP <code>` and the step's retry policy decides the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import httpx

from flowctl.connectors.connector import idempotency_headers
from flowctl.connectors.errors import DeliveryFailure
from flowctl.connectors.http_response import expect_success, kept_headers, response_json
from flowctl.engine.secrets import reveal
from flowctl.engine.state import DeliveryResult, Message

DEFAULT_TIMEOUT = 30.0


class WebhookConnector:
    channel = "webhook"

    def __init__(
        self,
        client: httpx.Client,
        *,
        environment: Mapping[str, str] | None = None,
        default_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.client = client
        self.environment = environment if environment is not None else os.environ
        self.default_timeout = default_timeout

    def send(self, message: Message) -> DeliveryResult:
        if not message.url:
            raise DeliveryFailure("config", "the webhook has no URL")
        url = reveal(message.url, self.environment)
        if not url.startswith(("http://", "https://")):
            raise DeliveryFailure(
                "rejected", f"webhook URL must start with http:// or https://, got {message.url!r}"
            )
        headers = {**idempotency_headers(message), **reveal(dict(message.headers), self.environment)}
        method = (message.method or "POST").upper()
        content: bytes | None = None
        if message.body is not None and method not in ("GET", "DELETE"):
            content = json.dumps(reveal(message.body, self.environment), ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        timeout = message.timeout_seconds or self.default_timeout
        response = self.client.request(method, url, content=content, headers=headers, timeout=timeout)
        expect_success(response, message.expect_status or None)
        return DeliveryResult(
            ok=True,
            status=response.status_code,
            json_=response_json(response),
            headers=kept_headers(response),
        )
