"""The runner API's one error shape, and JSON answers as bytes.

Every answer that is an error reads
`{"error": message, "code": ..., "field": "body.record.id" | null, "hint": ... | null}`
(docs/formats/api.md). Both the FastAPI app (flowctl.runner.app) and the
events fast path (flowctl.runner.events_api) answer through these.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from starlette.types import Send

T = TypeVar("T")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "error",
        field: str | None = None,
        hint: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.field = field
        self.hint = hint
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return error_body(self.message, code=self.code, field=self.field, hint=self.hint, **self.extra)


def found(value: T | None, what: str, field: str) -> T:
    """`value`, or a 404 `no <what>` naming the path parameter `field` when it is None."""
    if value is None:
        raise ApiError(404, f"no {what}", code="not_found", field=field)
    return value


def error_body(
    message: str, *, code: str, field: str | None = None, hint: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {"error": message, "code": code, "field": field, "hint": hint, **extra}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic error location as the API names fields: `body[3].record.id`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def json_bytes(content: Any) -> bytes:
    """The bytes starlette's JSONResponse would send for `content` (same separators and escaping)."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer a raw ASGI request with a JSON body (the headers JSONResponse would send)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
