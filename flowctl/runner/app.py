"""The runner's HTTP API (FastAPI): SPEC §9, documented in docs/formats/api.md, OpenAPI at /openapi.json.

Reads are served from per-thread read connections; every write goes through
the runner's group-commit writer and is answered only after its commit.
Every answer that is an error has one shape:
`{"error": message, "code": ..., "field": "body.record.id" | null, "hint": ... | null}`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowctl import __version__
from flowctl.engine.api import TASK_DECISIONS
from flowctl.engine.runs import EngineError
from flowctl.errors import FlowctlError
from flowctl.lang.durations import Duration
from flowctl.runner import views
from flowctl.runner.api_errors import ApiError, error_body, found
from flowctl.runner.api_errors import field_path as _loc
from flowctl.runner.api_models import BundlePut, ManualRunIn, TaskCompleteIn
from flowctl.runner.auth import AuthError, Principal, Role, authenticate, authorize
from flowctl.runner.bundles import BundleInvalid, check_bundle
from flowctl.runner.daemon import Runner, StartupReport, utcnow
from flowctl.runner.events_api import (
    EVENTS_PATH,
    EventIntake,
    EventsEndpoint,
    auth_error_body,
    auth_error_headers,
)
from flowctl.runner.reports import failure_report, flow_stats, sla_stats
from flowctl.runner.sla_api import sla_router
from flowctl.store.sqlite import VersionConflict

log = logging.getLogger("flowctl.runner")
RUN_STATUSES = {"running", "waiting", "succeeded", "succeeded_compensated", "failed", "cancelled"}


# --------------------------------------------------------------------------- request size limit


class BodyLimit:
    """Refuse request bodies larger than `limit` bytes with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._too_large(send)
                    return
        seen = 0
        too_large = False

        async def limited() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_large = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                f"request body larger than {self.limit} bytes",
                code="too_large",
                hint="send fewer events per request",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


# --------------------------------------------------------------------------- the app


class RunnerApp(FastAPI):
    """FastAPI, except that `POST /v1/events` goes straight to `events_endpoint` when one is set.

    The CRM's events are most of the runner's traffic, and FastAPI's middleware stack,
    routing and dependency injection cost more per request than parsing and validating
    the event itself (docs/runner.md, "Performance").
    """

    events_endpoint: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.events_endpoint
        if (
            endpoint is not None
            and scope["type"] == "http"
            and scope["path"] == EVENTS_PATH
            and scope["method"] == "POST"
        ):
            await endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(runner: Runner, *, on_ready: Callable[[StartupReport], None] | None = None) -> RunnerApp:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        report = await run_in_threadpool(runner.start)
        if on_ready is not None:
            on_ready(report)
        try:
            yield
        finally:
            await run_in_threadpool(runner.stop)

    app = RunnerApp(
        title="flowctl runner",
        version=__version__,
        description="Executes applied flows durably. Every call but /v1/health needs `Authorization: Bearer <token>`.",
        lifespan=lifespan,
    )

    def principal_for(authorization: str | None, role: Role) -> Principal:
        principal = authenticate(runner.reader(), authorization, cache=runner.token_cache)
        authorize(principal, role)
        return principal

    events = EventIntake(runner)
    app.events_endpoint = BodyLimit(
        EventsEndpoint(events, authorize=lambda header: principal_for(header, "operator")),
        limit=runner.config.max_request_bytes,
    )
    app.add_middleware(BodyLimit, limit=runner.config.max_request_bytes)

    # ------------------------------------------------------------- errors
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {k.decode(): v.decode() for k, v in auth_error_headers(exc)}
        return JSONResponse(auth_error_body(exc), status_code=exc.status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _loc(e["loc"]), "message": str(e["msg"]).removeprefix("Value error, ")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        return JSONResponse(
            error_body(
                f"{first['field']}: {first['message']}", code="invalid", field=first["field"], errors=errors
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), code="http"), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal error", code="internal", hint="see the runner's log"), status_code=500
        )

    # ------------------------------------------------------------- auth
    def require(role: Role) -> Callable[..., Awaitable[Principal]]:
        # async: checked on the event loop (a cached hash lookup), not in a thread-pool hop per request.
        async def dependency(authorization: str | None = Header(None, include_in_schema=False)) -> Principal:
            return principal_for(authorization, role)

        return dependency

    viewer = Depends(require("viewer"))
    operator = Depends(require("operator"))
    admin = Depends(require("admin"))

    async def committed(future: Any) -> Any:
        """Await a writer job: its result is on disk when this returns."""
        return await asyncio.wrap_future(future)

    # ------------------------------------------------------------- health and metrics
    @app.get("/v1/health", tags=["operations"])
    def health() -> dict[str, Any]:
        """Liveness and the live bundle version (no token needed)."""
        writer_ok = runner.writer.alive
        return {
            "status": "ok" if writer_ok else "degraded",
            "version": __version__,
            "bundle_version": runner.reader().live_bundle_version(),
            "uptime_seconds": round(runner_uptime(runner), 1),
        }

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def prometheus(_: Principal = viewer) -> Response:
        """Prometheus text format."""
        return Response(runner.metrics.prometheus(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/metrics", tags=["operations"])
    def metrics(_: Principal = viewer) -> dict[str, Any]:
        reader = runner.reader()
        next_due = reader.next_due()
        stats = runner.writer.stats
        return {
            "uptime_seconds": round(runner_uptime(runner), 1),
            "counters": runner.metrics.snapshot(),
            "gauges": reader.counts(),
            "writer": {
                "batches": stats.batches,
                "jobs": stats.jobs,
                "failed_jobs": stats.failed_jobs,
                "max_batch": stats.max_batch,
                "busy_seconds": round(stats.commit_seconds, 3),
                "backlog": runner.writer.backlog,
            },
            "outbox": {"in_flight": runner.outbox.inflight, "channels": runner.router.described},
            "timers": {"next_due": views.iso(next_due)},
        }

    # ------------------------------------------------------------- bundles
    @app.get("/v1/bundle", tags=["bundles"])
    def get_bundle(_: Principal = viewer) -> dict[str, Any]:
        """The live bundle: `version` 0 and nulls before the first apply."""
        reader = runner.reader()
        version = reader.live_bundle_version()
        row = reader.get_bundle(version) if version else None
        if row is None:
            return {"version": 0, "hash": None, "bundle": None, "applied_at": None, "meta": None}
        return views.bundle_view(row)

    @app.put("/v1/bundle", tags=["bundles"])
    async def put_bundle(body: BundlePut, principal: Principal = admin) -> dict[str, Any]:
        """Apply a bundle as the next version. 409 when `expected_version` is not live; 422 when it does not validate."""
        try:
            checked = await run_in_threadpool(check_bundle, body.bundle)
        except BundleInvalid as exc:
            raise ApiError(
                422, exc.message, code="bundle_invalid", field="bundle", hint=exc.hint, problems=exc.problems
            ) from None
        meta = body.meta.model_dump(exclude_none=True)
        try:
            version = await committed(runner.apply_bundle(checked, body.expected_version, meta, principal))
        except VersionConflict as exc:
            raise ApiError(
                409,
                exc.message,
                code="version_conflict",
                field="expected_version",
                hint=exc.hint,
                live_version=exc.live,
                expected_version=exc.expected,
            ) from None
        except EngineError as exc:
            raise ApiError(422, exc.message, code="bundle_invalid", field="bundle", hint=exc.hint) from None
        return {"version": version, "hash": checked.hash, "warnings": checked.warnings}

    @app.get("/v1/bundle/versions", tags=["bundles"])
    def bundle_versions(_: Principal = viewer) -> dict[str, Any]:
        reader = runner.reader()
        rows = reader.bundle_versions()
        live = rows[-1].version if rows else 0
        return {
            "live": live,
            "versions": [
                {
                    "version": r.version,
                    "hash": r.hash,
                    "applied_at": views.iso(r.applied_at),
                    "meta": r.meta,
                    "live": r.version == live,
                }
                for r in rows
            ],
        }

    @app.get("/v1/bundle/versions/{version}", tags=["bundles"])
    def bundle_version(version: int, _: Principal = viewer) -> dict[str, Any]:
        row = found(runner.reader().get_bundle(version), f"bundle version {version}", "path.version")
        return views.bundle_view(row)

    @app.get("/v1/bundle/inflight", tags=["bundles"])
    def inflight(_: Principal = viewer) -> dict[str, Any]:
        """Running and waiting runs per flow and the bundle version they are pinned to."""
        data = runner.reader().inflight()
        return {"flows": {flow: {str(v): n for v, n in versions.items()} for flow, versions in data.items()}}

    # ------------------------------------------------------------- events
    @app.post(
        "/v1/events",
        tags=["events"],
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/EventIn"},
                                {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}},
                            ]
                        }
                    }
                },
            }
        },
    )
    async def post_events(request: Request, _: Principal = operator) -> Any:
        """One event (answered with one result) or a list (answered with a list, in order)."""
        # RunnerApp hands these requests to `app.events_endpoint` (the same `events.answer`) before
        # FastAPI; this route documents the endpoint in the OpenAPI schema.
        return Response(
            await events.answer(await request.body()), status_code=202, media_type="application/json"
        )

    # ------------------------------------------------------------- runs
    @app.get("/v1/runs", tags=["runs"])
    def list_runs(
        flow: str | None = None,
        status: str | None = Query(None, description="comma-separated statuses, e.g. failed,waiting"),
        object: str | None = None,
        record: str | None = None,
        since: str | None = Query(None, description="an ISO timestamp or a duration back from now (24h, 7d)"),
        limit: int = Query(50, ge=1, le=1000),
        before: int | None = Query(None, description="the `next` cursor of the previous page"),
        _: Principal = viewer,
    ) -> dict[str, Any]:
        statuses = None
        if status:
            statuses = [s.strip() for s in status.split(",") if s.strip()]
            bad = [s for s in statuses if s not in RUN_STATUSES]
            if bad:
                raise ApiError(
                    422,
                    f"query.status: unknown status '{bad[0]}'",
                    code="invalid",
                    field="query.status",
                    hint="one of: " + ", ".join(sorted(RUN_STATUSES)),
                )
        rows = runner.reader().query_runs(
            flow=flow,
            statuses=statuses,
            object=object,
            record_id=record,
            since=_since(since),
            before_n=before,
            limit=limit + 1,
        )
        page = rows[:limit]
        return {
            "runs": [views.run_summary(r) for _, r in page],
            "next": page[-1][0] if len(rows) > limit else None,
        }

    @app.get("/v1/runs/{run_id}", tags=["runs"])
    def get_run(run_id: str, _: Principal = viewer) -> dict[str, Any]:
        """A run with every step attempt, message, task and trace line."""
        reader = runner.reader()
        run = found(reader.get_run(run_id), f"run '{run_id}'", "path.run_id")
        return views.run_detail(
            run,
            reader.step_attempts(run_id),
            reader.list_messages(run_id=run_id),
            reader.list_tasks(run_id=run_id),
            reader.trace(run_id=run_id),
        )

    @app.post("/v1/runs", tags=["runs"], status_code=202)
    async def start_run(body: ManualRunIn, principal: Principal = operator) -> dict[str, Any]:
        """Start a flow with a `manual` trigger (`flowctl run FLOW --record ID`)."""
        try:
            result = await committed(runner.start_manual(body.flow, body.record, body.object, principal))
        except EngineError as exc:
            raise ApiError(_engine_status(exc), exc.message, code="rejected", hint=exc.hint) from None
        return {"event_id": result.event_id, "runs": result.runs, "suppressed": result.suppressed}

    async def _run_action(action: str, run_id: str, principal: Principal) -> dict[str, Any]:
        found(runner.reader().get_run(run_id), f"run '{run_id}'", "path.run_id")
        try:
            run = await committed(runner.run_action(action, run_id, principal))
        except EngineError as exc:
            raise ApiError(409, exc.message, code="conflict", hint=exc.hint) from None
        return views.run_summary(run)

    @app.post("/v1/runs/{run_id}/retry", tags=["runs"])
    async def retry_run(run_id: str, principal: Principal = operator) -> dict[str, Any]:
        """Retry a failed run from its failed step."""
        return await _run_action("retry", run_id, principal)

    @app.post("/v1/runs/{run_id}/cancel", tags=["runs"])
    async def cancel_run(run_id: str, principal: Principal = operator) -> dict[str, Any]:
        return await _run_action("cancel", run_id, principal)

    # ------------------------------------------------------------- tasks
    @app.get("/v1/tasks", tags=["tasks"])
    def list_tasks(
        status: str = Query("open", description="open, completed, cancelled, expired or all"),
        assignee: str | None = None,
        run_id: str | None = None,
        kind: str | None = None,
        limit: int = Query(200, ge=1, le=5000),
        _: Principal = viewer,
    ) -> dict[str, Any]:
        choices = {
            "open": ["not_started", "in_progress"],
            "completed": ["completed"],
            "cancelled": ["cancelled"],
            "expired": ["expired"],
            "all": None,
        }
        if status not in choices:
            raise ApiError(
                422,
                f"query.status: unknown task status '{status}'",
                code="invalid",
                field="query.status",
                hint="one of: " + ", ".join(choices),
            )
        tasks = runner.reader().query_tasks(
            statuses=choices[status], assignee=assignee, run_id=run_id, kind=kind, limit=limit
        )
        return {"tasks": [views.task_view(t) for t in tasks]}

    @app.get("/v1/tasks/{task_id}", tags=["tasks"])
    def get_task(task_id: str, _: Principal = viewer) -> dict[str, Any]:
        return views.task_view(found(runner.reader().get_task(task_id), f"task '{task_id}'", "path.task_id"))

    @app.post("/v1/tasks/{task_id}/complete", tags=["tasks"])
    async def complete_task(
        task_id: str, body: TaskCompleteIn, principal: Principal = operator
    ) -> dict[str, Any]:
        """Complete an approval (approved|rejected), a human task (done) or a compensation task (done|rejected)."""
        task = found(runner.reader().get_task(task_id), f"task '{task_id}'", "path.task_id")
        allowed = TASK_DECISIONS.get(task.kind, ("done",))
        if body.decision not in allowed:
            raise ApiError(
                422,
                f"body.decision: '{body.decision}' is not a decision for this {task.kind} task",
                code="invalid",
                field="body.decision",
                hint="one of: " + ", ".join(allowed),
            )
        try:
            done = await committed(
                runner.complete_task(
                    task_id,
                    body.decision,
                    by=body.by,
                    comment=body.comment,
                    data=body.data,
                    attachments=body.attachments,
                    principal=principal,
                )
            )
        except EngineError as exc:
            raise ApiError(409, exc.message, code="conflict", hint=exc.hint) from None
        return views.task_view(done)

    # ------------------------------------------------------------- records, messages, audit
    @app.get("/v1/records/{object}/{record_id}", tags=["records"])
    def get_record(object: str, record_id: str, _: Principal = viewer) -> dict[str, Any]:
        """A record the runner keeps, with its timeline."""
        reader = runner.reader()
        record = found(reader.get_record(object, record_id), f"{object} '{record_id}'", "path.record_id")
        return views.record_view(record, reader.timeline(object, record_id))

    @app.get("/v1/messages", tags=["records"])
    def list_messages(
        run_id: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        limit: int = Query(200, ge=1, le=5000),
        _: Principal = viewer,
    ) -> dict[str, Any]:
        """Outbox rows, newest first."""
        rows = runner.reader().query_messages(run_id=run_id, channel=channel, status=status, limit=limit)
        return {"messages": [views.message_view(m) for m in rows]}

    @app.get("/v1/audit", tags=["operations"])
    def audit(
        limit: int = Query(100, ge=1, le=5000), action: str | None = None, _: Principal = viewer
    ) -> dict[str, Any]:
        """Applies, rollbacks, task completions, run retries and cancels, token creation; newest first."""
        entries = runner.reader().audit_log(limit=limit, action=action)
        return {
            "entries": [
                {
                    "seq": e.seq,
                    "at": views.iso(e.at),
                    "actor": e.actor,
                    "role": e.role,
                    "action": e.action,
                    "target": e.target,
                    "detail": e.detail,
                }
                for e in entries
            ]
        }

    # ------------------------------------------------------------- SLA clocks (flowctl.runner.sla_api)
    app.include_router(sla_router(runner, viewer=viewer, operator=operator, error=ApiError))

    # ------------------------------------------------------------- reports
    @app.get("/v1/stats", tags=["reports"])
    def stats(flow: str | None = None, since: str | None = None, _: Principal = viewer) -> dict[str, Any]:
        reader = runner.reader()
        started_after = _since(since)
        out = flow_stats(reader, runner_step_kinds(runner), flow=flow, since=started_after)
        version = reader.live_bundle_version()
        # SLA achievement over the clocks started in the same window (docs/sla.md).
        out["sla"] = sla_stats(
            reader, runner.typed_bundle(version) if version else None, now=utcnow(), since=started_after
        )
        return out

    @app.get("/v1/reports/failures", tags=["reports"])
    def failures(flow: str | None = None, since: str | None = None, _: Principal = viewer) -> dict[str, Any]:
        return failure_report(runner.reader(), runner_step_kinds(runner), flow=flow, since=_since(since))

    return app


def _since(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.now(dt.UTC) - Duration.parse(value).as_timedelta()
    except FlowctlError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            422,
            f"query.since: '{value}' is neither a duration (24h) nor an ISO timestamp",
            code="invalid",
            field="query.since",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _engine_status(exc: EngineError) -> int:
    text = exc.message
    if text.startswith("no ") or "not known" in text:
        return 404
    return 409


def runner_uptime(runner: Runner) -> float:
    import time

    return time.time() - runner.started_at


def runner_step_kinds(runner: Runner) -> Callable[[str], dict[str, str]]:
    """flow → {step id: kind}, from the newest bundle version that has the flow (cached per version)."""
    from flowctl.engine.program import program_for
    from flowctl.engine.sla_flows import flow_model

    cache: dict[str, dict[str, str]] = {}
    versions = sorted((v.version for v in runner.reader().bundle_versions()), reverse=True)

    def kinds(flow: str) -> dict[str, str]:
        if flow not in cache:
            found: dict[str, str] = {}
            for version in versions:
                typed = runner.typed_bundle(version)
                try:
                    # SLA action lists run as flows named sla:<policy>:on_breach, ...
                    model = flow_model(typed, flow) if typed else None
                except KeyError:
                    model = None
                if model is not None:
                    found = {sid: node.kind for sid, node in program_for(model).nodes.items()}
                    break
            cache[flow] = found
        return cache[flow]

    return kinds
