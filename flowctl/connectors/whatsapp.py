"""WhatsApp template messages over a Cloud-API-style JSON endpoint.

`POST <url>` (a `{phone_number_id}` placeholder in the URL is filled from
runner.yaml) with a bearer token from the environment, an `Idempotency-Key`
header, and the body the WhatsApp Cloud API expects for a template message:
`{"messaging_product": "whatsapp", "to", "type": "template", "template":
{"name", "language": {"code"}, "components": [...]}}`. The message id is read
from `messages[0].id`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from flowctl.connectors.connector import env_secret, idempotency_headers
from flowctl.connectors.errors import DeliveryFailure
from flowctl.connectors.http_response import expect_success, response_json
from flowctl.engine.secrets import reveal
from flowctl.engine.state import DeliveryResult, Message


@dataclass(frozen=True)
class WhatsappSettings:
    url: str
    token_env: str | None = None
    phone_number_id: str | None = None
    timeout: float = 15.0


def template_payload(message: Message, environment: Mapping[str, str]) -> dict[str, Any]:
    spec = reveal(message.whatsapp or {}, environment)
    if not spec.get("name"):
        raise DeliveryFailure("rejected", "the WhatsApp message names no template")
    components: list[dict[str, Any]] = []
    for kind, key in (("header", "header_params"), ("body", "body_params")):
        params = spec.get(key) or []
        if params:
            components.append(
                {"type": kind, "parameters": [{"type": "text", "text": str(p)} for p in params]}
            )
    template: dict[str, Any] = {"name": spec["name"], "language": {"code": spec.get("language") or "en_US"}}
    if components:
        template["components"] = components
    return {
        "messaging_product": "whatsapp",
        "to": reveal(message.to[0], environment),
        "type": "template",
        "template": template,
    }


class WhatsappConnector:
    channel = "whatsapp"

    def __init__(
        self,
        settings: WhatsappSettings,
        client: httpx.Client,
        *,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.environment = environment if environment is not None else os.environ

    def send(self, message: Message) -> DeliveryResult:
        if not message.to:
            raise DeliveryFailure("rejected", "the WhatsApp message has no recipient")
        token = env_secret(self.environment, self.settings.token_env, "WhatsApp token")
        headers = idempotency_headers(message)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = self.settings.url.replace("{phone_number_id}", self.settings.phone_number_id or "")
        response = self.client.post(
            url,
            json=template_payload(message, self.environment),
            headers=headers,
            timeout=self.settings.timeout,
        )
        expect_success(response)
        body = response_json(response)
        provider_id = None
        if isinstance(body, dict) and isinstance(body.get("messages"), list) and body["messages"]:
            first = body["messages"][0]
            provider_id = first.get("id") if isinstance(first, dict) else None
        return DeliveryResult(
            ok=True, status=response.status_code, provider_id=str(provider_id) if provider_id else None
        )
