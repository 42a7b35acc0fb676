"""`POST /v1/events`: the CRM's event intake, the busiest call of the runner API.

`EventIntake.answer(body)` parses and validates the body, hands each event to
the group-commit writer and returns the 202 answer as JSON bytes once every
event's transaction is on disk. It raises `ApiError` for what the API answers
with an error (422 naming the field, 413, 500).

`EventsEndpoint` serves this one path as a bare ASGI app, which the runner's
app (`flowctl.runner.app.RunnerApp`) calls before FastAPI's middleware,
routing and dependency injection: those cost about as much per request as
the rest of the request outside the engine (docs/runner.md, "Performance").
Authentication, the size limit, answers and errors are the route's. The
FastAPI route stays: it documents the endpoint in the OpenAPI schema and
answers through the same `EventIntake` when called directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError
from starlette.types import Receive, Scope, Send

from flowctl.engine.state import IngestResult
from flowctl.errors import FlowctlError
from flowctl.runner.api_errors import ApiError, error_body, field_path, json_bytes, send_json
from flowctl.runner.api_models import EventIn
from flowctl.runner.auth import AuthError

if TYPE_CHECKING:
    from flowctl.runner.daemon import Runner

log = logging.getLogger("flowctl.runner")
MAX_EVENTS_PER_REQUEST = 1000
EVENTS_PATH = "/v1/events"

_EVENT: TypeAdapter[EventIn] = TypeAdapter(EventIn)


class EventIntake:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def answer(self, body: bytes) -> bytes:
        """One event (answered with one result) or a list (answered with a list, in order)."""
        try:
            payload = json.loads(body or b"null")
        except ValueError as exc:
            raise ApiError(422, f"body: not valid JSON ({exc})", code="invalid", field="body") from None
        single = not isinstance(payload, list)
        items = [payload] if single else payload
        if not items:
            raise ApiError(422, "body: an empty list", code="invalid", field="body")
        if len(items) > MAX_EVENTS_PER_REQUEST:
            raise ApiError(
                413,
                f"more than {MAX_EVENTS_PER_REQUEST} events in one request",
                code="too_large",
                field="body",
            )
        events = [self._validate(item, ["body"] if single else ["body", i]) for i, item in enumerate(items)]
        futures = [self.runner.ingest(ev.to_event(), item) for ev, item in zip(events, items, strict=True)]
        if single:
            # One future: await it directly (a gather would add a task and loop iterations per request).
            results: list[Any] = [await _outcome(futures[0])]
        else:
            results = list(await asyncio.gather(*(_outcome(f) for f in futures)))
        answers = [self._answer(i, result, single) for i, result in enumerate(results)]
        return json_bytes(answers[0] if single else answers)

    def _validate(self, item: Any, prefix: list[Any]) -> EventIn:
        try:
            event = _EVENT.validate_python(item)
        except ValidationError as exc:
            self.runner.metrics.event("rejected")
            errors = [
                {
                    "field": field_path([*prefix, *e["loc"]]),
                    "message": str(e["msg"]).removeprefix("Value error, "),
                }
                for e in exc.errors(include_url=False)
            ]
            raise ApiError(
                422,
                f"{errors[0]['field']}: {errors[0]['message']}",
                code="invalid",
                field=errors[0]["field"],
                errors=errors,
            ) from None
        missing = event.problems()
        if missing:
            self.runner.metrics.event("rejected")
            errors = [{"field": field_path([*prefix, *f.split(".")]), "message": m} for f, m in missing]
            raise ApiError(
                422,
                f"{errors[0]['field']}: {errors[0]['message']}",
                code="invalid",
                field=errors[0]["field"],
                errors=errors,
            )
        return event

    def _answer(self, i: int, result: Any, single: bool) -> dict[str, Any]:
        metrics = self.runner.metrics
        if isinstance(result, IngestResult):
            metrics.event("duplicate" if result.duplicate else "accepted")
            return {
                "event_id": result.event_id,
                "runs": result.runs,
                "duplicate": result.duplicate,
                "suppressed": result.suppressed,
            }
        metrics.event("rejected")
        if isinstance(result, FlowctlError):
            if single:
                raise ApiError(422, result.message, code="rejected", field="body", hint=result.hint)
            return error_body(result.message, code="rejected", field=f"body[{i}]", hint=result.hint)
        log.error("ingesting event %d failed: %r", i, result)
        if single:
            raise ApiError(
                500, "internal error while ingesting the event", code="internal", hint="see the runner's log"
            )
        return error_body("internal error while ingesting the event", code="internal", field=f"body[{i}]")


async def _outcome(future: Future[IngestResult]) -> IngestResult | Exception:
    """The writer job's result once committed, or the exception it raised (one event's failure is its own)."""
    try:
        return await asyncio.wrap_future(future)
    except Exception as exc:
        return exc


class EventsEndpoint:
    """`POST /v1/events` as a bare ASGI app (the runner's app hands it that path before FastAPI sees it).

    `authorize(authorization header)` raises AuthError like the route's operator
    dependency. The request size limit is the `BodyLimit` wrapped around it; an
    unexpected error is logged and answered 500, as the app's handler does.
    """

    def __init__(self, intake: EventIntake, authorize: Callable[[str | None], Any]) -> None:
        self.intake = intake
        self.authorize = authorize

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            self.authorize(authorization)
        except AuthError as exc:
            await send_json(send, exc.status, json_bytes(auth_error_body(exc)), auth_error_headers(exc))
            return
        except Exception:
            await _internal_error(send)
            return
        # Outside the try: BodyLimit's receive raises through here to answer 413 itself.
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending its body: nobody to answer
        try:
            answer = await self.intake.answer(body)
        except ApiError as exc:
            await send_json(send, exc.status, json_bytes(exc.body()))
            return
        except Exception:
            await _internal_error(send)
            return
        await send_json(send, 202, answer)


async def _internal_error(send: Send) -> None:
    log.exception("unexpected error answering POST %s", EVENTS_PATH)
    body = error_body("internal error", code="internal", hint="see the runner's log")
    await send_json(send, 500, json_bytes(body))


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def auth_error_body(exc: AuthError) -> dict[str, Any]:
    return error_body(exc.message, code="unauthorized" if exc.status == 401 else "forbidden", hint=exc.hint)


def auth_error_headers(exc: AuthError) -> list[tuple[bytes, bytes]]:
    return [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
