"""SMS over an HTTP gateway with a Twilio-style form API.

`POST <url>` with form fields `To`, `From`, `Body`, HTTP basic auth
(account, token) from environment variables, and an `Idempotency-Key` header
carrying the outbox row's key. The provider's message id is read from the
JSON answer (`sid`, or `id`).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from flowctl.connectors.connector import env_secret, idempotency_headers
from flowctl.connectors.errors import DeliveryFailure
from flowctl.connectors.http_response import expect_success, response_json
from flowctl.engine.secrets import reveal
from flowctl.engine.state import DeliveryResult, Message


@dataclass(frozen=True)
class SmsSettings:
    url: str
    account_env: str | None = None
    token_env: str | None = None
    sender: str | None = None
    timeout: float = 15.0


class SmsConnector:
    channel = "sms"

    def __init__(
        self, settings: SmsSettings, client: httpx.Client, *, environment: Mapping[str, str] | None = None
    ):
        self.settings = settings
        self.client = client
        self.environment = environment if environment is not None else os.environ

    def send(self, message: Message) -> DeliveryResult:
        if not message.to:
            raise DeliveryFailure("rejected", "the SMS has no recipient")
        account = env_secret(self.environment, self.settings.account_env, "SMS account")
        token = env_secret(self.environment, self.settings.token_env, "SMS token")
        sender = message.sender or self.settings.sender
        form = {
            "To": reveal(message.to[0], self.environment),
            "Body": reveal(message.text or "", self.environment),
        }
        if sender:
            form["From"] = sender
        headers = idempotency_headers(message)
        if account is not None:
            credentials = base64.b64encode(f"{account}:{token or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        response = self.client.post(
            self.settings.url, data=form, headers=headers, timeout=self.settings.timeout
        )
        expect_success(response)
        body = response_json(response)
        provider_id = None
        if isinstance(body, dict):
            provider_id = body.get("sid") or body.get("id")
        return DeliveryResult(
            ok=True, status=response.status_code, provider_id=str(provider_id) if provider_id else None
        )
