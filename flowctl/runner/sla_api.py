"""The runner's SLA endpoints: a record's clocks, and undoing a breach (SPEC §8 `flowctl sla`, §9).

- `GET /v1/sla/{object}/{id}` (viewer): every SLA clock of the record as of now,
  read from a read connection (documented in docs/sla.md).
- `POST /v1/sla/{object}/{id}/{clock}/revert` (operator): restore the fields the
  clock's breach actions changed; committed with an audit entry naming who
  reverted and what was restored.

`clock` is a clock name (`first_response`) or `<policy>:<clock>` when several
policies on the object have a clock of that name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Protocol

from fastapi import APIRouter

from flowctl.engine.runs import EngineError
from flowctl.engine.sla_clocks import load_record_clocks, record_views
from flowctl.runner.auth import Principal
from flowctl.runner.daemon import Runner, utcnow
from flowctl.runner.views import iso


class ErrorFactory(Protocol):
    """The app's error type: `ApiError(status, message, code=..., field=..., hint=...)`."""

    def __call__(
        self, status: int, message: str, *, code: str = ..., field: str | None = ..., hint: str | None = ...
    ) -> Exception: ...


def sla_router(runner: Runner, *, viewer: Any, operator: Any, error: ErrorFactory) -> APIRouter:
    """The SLA routes; `viewer` and `operator` are the app's auth dependencies."""
    router = APIRouter(tags=["sla"])

    @router.get("/v1/sla/{object}/{record_id}")
    def sla_status(object: str, record_id: str, _: Principal = viewer) -> dict[str, Any]:
        """A record's SLA clocks: status, target, due and warning times, elapsed and overdue business time,
        breach, escalations and the escalation log."""
        reader = runner.reader()
        if reader.get_record(object, record_id) is None:
            raise error(404, f"no {object} '{record_id}'", code="not_found", field="path.record_id")
        now = utcnow()
        doc = load_record_clocks(reader.kv_get, object, record_id)
        version = reader.live_bundle_version()
        bundle = runner.typed_bundle(version) if version else None
        clocks = record_views(doc, bundle, now) if doc is not None else []
        return {"object": object, "id": record_id, "at": iso(now), "clocks": clocks}

    @router.post("/v1/sla/{object}/{record_id}/{clock}/revert")
    async def sla_revert(
        object: str, record_id: str, clock: str, principal: Principal = operator
    ) -> dict[str, Any]:
        """Undo a breach: restore the fields the breach actions changed (those changed since are left alone)."""

        def job() -> dict[str, Any]:
            now: dt.datetime = utcnow()
            result = runner.engine.revert_sla(object, record_id, clock, now, by=principal.name)
            runner.store.audit(
                "sla.revert",
                now=now,
                actor=principal.name,
                role=principal.role,
                target=f"{object}/{record_id}/{result['clock']}",
                detail={"policy": result["policy"], "restored": result["restored"], "kept": result["kept"]},
            )
            return result

        try:
            return await asyncio.wrap_future(runner.submit(job, "sla.revert"))
        except EngineError as exc:
            status = 404 if exc.message.startswith("no ") or "not known" in exc.message else 409
            raise error(
                status,
                exc.message,
                code="not_found" if status == 404 else "rejected",
                field="path.clock" if "clock" in exc.message and status == 404 else None,
                hint=exc.hint,
            ) from None

    return router
