"""Reading an HTTP provider's answer the same way for every HTTP connector."""

from __future__ import annotations

import json
from typing import Any

import httpx

from flowctl.connectors.errors import DeliveryFailure, http_status_class

# A provider answer larger than this is not kept (a webhook's output lands in the run's state).
MAX_RESPONSE_BYTES = 1_000_000
_KEPT_HEADERS = ("content-type", "location", "etag", "x-request-id", "request-id", "idempotency-key")


def response_json(response: httpx.Response) -> Any:
    """The decoded JSON body, or None when there is none or it is not JSON."""
    content = response.content
    if not content or len(content) > MAX_RESPONSE_BYTES:
        return None
    if "json" not in response.headers.get("content-type", "") and content[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def kept_headers(response: httpx.Response) -> dict[str, str]:
    """The few response headers worth keeping in a step's output (never cookies or auth)."""
    return {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}


def expect_success(response: httpx.Response, expected: list[int] | None = None) -> None:
    """Raise DeliveryFailure(`HTTP <code>`) unless the status is expected (default: any 2xx)."""
    status = response.status_code
    ok = status in expected if expected else 200 <= status < 300
    if not ok:
        detail = ""
        body = response_json(response)
        if isinstance(body, dict):
            for key in ("message", "error", "detail"):
                if isinstance(body.get(key), str | dict):
                    detail = f": {str(body[key])[:200]}"
                    break
        raise DeliveryFailure(http_status_class(status), f"HTTP {status}{detail}", status=status)
