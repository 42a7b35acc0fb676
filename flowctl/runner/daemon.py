"""The runner: the engine on SQLite with a wall clock, connectors, a timer loop and workers.

`Runner` assembles the parts and owns their lifecycle; `serve()` runs it
behind the HTTP API (uvicorn) until SIGTERM/SIGINT, then shuts down in order:
stop accepting requests, stop the timer loop, let deliveries in flight finish
(bounded by their timeouts), commit what is queued, close the database.

Threads:
- `flowctl-writer`: the only one writing SQLite; runs every engine call (group commit);
- the APScheduler thread: the timer loop and the daily retention purge;
- `flowctl-outbox` + a delivery pool: sends messages, reports outcomes through the writer;
- `flowctl-crm-forward` (when `crm_webhook` is configured);
- uvicorn's event loop and its thread pool for API reads (each thread has its own read connection).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from flowctl.engine.api import Engine
from flowctl.engine.sla import installed_hook
from flowctl.engine.state import DeliveryResult, Event, IngestResult, Run, Task
from flowctl.errors import FlowctlError
from flowctl.resources.bundle import Bundle, TypedBundle
from flowctl.runner.auth import Principal, TokenCache, ensure_admin_token
from flowctl.runner.bundles import CheckedBundle, SqliteBundles
from flowctl.runner.config import DEFAULT_HOST, DEFAULT_PORT, RunnerConfig
from flowctl.runner.crm_forward import CrmForwarder
from flowctl.runner.metrics import RunnerMetrics
from flowctl.runner.outbox import ChannelRouter, OutboxWorker
from flowctl.runner.scheduler import TimerLoop
from flowctl.runner.writer import Writer
from flowctl.store.sqlite import Observation, SqliteStore

log = logging.getLogger("flowctl.runner")
UTC = dt.UTC
T = TypeVar("T")

# Timers fired per transaction: a backlog after downtime (thousands of overdue
# waits) is worked off in slices so events keep being answered meanwhile.
FIRE_SLICE = 200


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


class RunnerLocked(FlowctlError):
    """Another runner process uses this database."""


def _exclusive_lock(db_path: Path) -> IO[str]:
    """Hold `<db>.lock` for the life of the process: two runners on one database would both
    fire timers and deliver the outbox. The OS drops the lock when the process dies (kill -9 too)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(db_path.with_name(db_path.name + ".lock"), "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunnerLocked(
            f"{db_path} is in use by another runner ({holder})",
            hint="stop that runner, or start this one in another directory or with --db",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


@dataclass
class StartupReport:
    db_path: Path
    data_dir: Path
    admin_token_file: Path | None
    recovered_messages: int
    channels: dict[str, str]
    bundle_version: int


class Runner:
    def __init__(
        self,
        config: RunnerConfig | None = None,
        *,
        base_dir: Path | None = None,
        db_path: Path | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config or RunnerConfig()
        base = (base_dir or Path.cwd()).resolve()
        self.data_dir = self.config.data_path(base)
        self.db_path = db_path.resolve() if db_path else self.config.db_path(base)
        self.environment = dict(os.environ if environment is None else environment)
        self.started_at = time.time()

        self._lock_file = _exclusive_lock(self.db_path)
        self.store = SqliteStore.open(self.db_path, durability=self.config.durability)
        self.store.observe = True
        self.bundles = SqliteBundles(self.store)
        # `secrets` are the names flows may use as {{ secrets.NAME }}: the runner's environment (SPEC §1).
        self.engine = Engine(self.store, self.bundles, secrets=self.environment, sla=installed_hook())
        self._readers = threading.local()
        self._reader_conns: list[SqliteStore] = []
        self._reader_lock = threading.Lock()
        self._typed: dict[int, TypedBundle] = {}
        self._typed_lock = threading.Lock()
        self.token_cache = TokenCache()
        self.metrics = RunnerMetrics(counts=lambda: self.reader().counts())
        self.writer = Writer(
            self.store, max_batch=self.config.group_commit_max, after_commit=self._after_commit
        )
        self.http = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=64))
        self.router = ChannelRouter(self.config, self.data_dir, self.http, self.environment)
        self.outbox = OutboxWorker(
            self.writer,
            self.store,
            self.router,
            self._report_delivery,
            self.metrics,
            concurrency=self.config.outbox_concurrency,
        )
        self.crm: CrmForwarder | None = None
        if self.config.crm_webhook is not None:
            self.crm = CrmForwarder(
                self.config.crm_webhook, self.writer, self.store, self.http, environment=self.environment
            )
            self.store.trace_hook = self.crm.on_trace
        self.timers = TimerLoop(self._fire_due, self._next_due, self.purge)
        self._started = False

    # ------------------------------------------------------------- lifecycle
    def start(self) -> StartupReport:
        self.writer.start()
        token_file = self.writer.call(
            lambda: ensure_admin_token(self.store, self.data_dir), label="auth.bootstrap"
        )
        self.outbox.start()
        self.timers.start()
        if self.crm is not None:
            self.crm.start()
        self._started = True
        return StartupReport(
            db_path=self.db_path,
            data_dir=self.data_dir,
            admin_token_file=token_file,
            recovered_messages=self.outbox.recovered,
            channels=dict(self.router.described),
            bundle_version=self.reader().live_bundle_version(),
        )

    def stop(self) -> None:
        if not self._started:
            self.store.close()
            self._lock_file.close()
            return
        self._started = False
        self.timers.stop()
        self.outbox.stop()
        if self.crm is not None:
            self.crm.stop()
        self.writer.stop()
        self.http.close()
        with self._reader_lock:
            for reader in self._reader_conns:
                try:
                    reader.close()
                except Exception:  # a reader thread may still hold it; closing is best effort
                    log.debug("closing a read connection failed", exc_info=True)
        self.store.close()
        self._lock_file.close()

    # ------------------------------------------------------------- reading (API threads)
    def reader(self) -> SqliteStore:
        """This thread's read-only view of committed state (WAL readers never block the writer)."""
        store = getattr(self._readers, "store", None)
        if store is None:
            store = SqliteStore.open(self.db_path, readonly=True)
            self._readers.store = store
            with self._reader_lock:
                self._reader_conns.append(store)
        return store

    def typed_bundle(self, version: int) -> TypedBundle | None:
        """A bundle version's models for API threads (reports), parsed once per version."""
        with self._typed_lock:
            hit = self._typed.get(version)
        if hit is not None:
            return hit
        row = self.reader().get_bundle(version)
        if row is None or row.data is None:
            return None
        typed = Bundle.model_validate(row.data).typed()
        with self._typed_lock:
            self._typed[version] = typed
        return typed

    # ------------------------------------------------------------- writing (through the group commit)
    def submit(self, fn: Callable[[], T], label: str) -> Future[T]:
        return self.writer.submit(fn, label)

    def ingest(self, event: Event, body: dict[str, Any]) -> Future[IngestResult]:
        def job() -> IngestResult:
            now = utcnow()
            result = self.engine.ingest(event, now)
            self.store.log_event(
                result.event_id, now, body, idempotency_key=event.idempotency_key, duplicate=result.duplicate
            )
            return result

        return self.writer.submit(job, "events.ingest")

    def apply_bundle(
        self, checked: CheckedBundle, expected_version: int, meta: dict[str, Any], principal: Principal | None
    ) -> Future[int]:
        def job() -> int:
            now = utcnow()
            data = checked.bundle.model_dump(mode="json")
            version = self.store.add_bundle(
                data, checked.hash, expected_version=expected_version, meta=meta, now=now
            )
            self.bundles.remember(version, checked.typed)
            try:
                self.engine.activate(version, now)
            except BaseException:
                self.bundles.forget(version)
                raise
            self.store.audit(
                f"bundle.{meta.get('action') or 'apply'}",
                now=now,
                actor=principal.name if principal else None,
                role=principal.role if principal else None,
                target=f"v{version}",
                detail={
                    "hash": checked.hash,
                    "expected_version": expected_version,
                    "meta": meta,
                    "flows": sorted(checked.typed.flows),
                },
            )
            return version

        return self.writer.submit(job, "bundle.apply")

    def start_manual(
        self, flow: str, record_id: str | None, object: str | None, principal: Principal
    ) -> Future[IngestResult]:
        def job() -> IngestResult:
            now = utcnow()
            result = self.engine.start_manual(flow, record_id, now, object=object)
            self.store.audit(
                "run.start",
                now=now,
                actor=principal.name,
                role=principal.role,
                target=flow,
                detail={"record": record_id, "object": object, "runs": result.runs},
            )
            return result

        return self.writer.submit(job, "runs.start")

    def complete_task(
        self,
        task_id: str,
        decision: str,
        *,
        by: str | None,
        comment: str | None,
        data: dict[str, Any],
        attachments: list[str],
        principal: Principal,
    ) -> Future[Task]:
        def job() -> Task:
            now = utcnow()
            task = self.engine.complete_task(
                task_id,
                decision,
                now,
                by=by or principal.name,
                comment=comment,
                data=data,
                attachments=attachments,
            )
            self.store.audit(
                "task.complete",
                now=now,
                actor=principal.name,
                role=principal.role,
                target=task_id,
                detail={"decision": decision, "by": by, "run_id": task.run_id},
            )
            return task

        return self.writer.submit(job, "tasks.complete")

    def run_action(self, action: str, run_id: str, principal: Principal) -> Future[Run]:
        def job() -> Run:
            now = utcnow()
            run = (
                self.engine.retry_run(run_id, now)
                if action == "retry"
                else self.engine.cancel_run(run_id, now)
            )
            self.store.audit(
                f"run.{action}",
                now=now,
                actor=principal.name,
                role=principal.role,
                target=run_id,
                detail={"status": run.status},
            )
            return run

        return self.writer.submit(job, f"runs.{action}")

    def purge(self) -> dict[str, int]:
        cutoff = utcnow() - dt.timedelta(seconds=self.config.retention_seconds)
        counts = self.writer.call(lambda: self.store.purge(cutoff), label="retention.purge")
        removed = {k: v for k, v in counts.items() if v}
        if removed:
            log.info("retention: purged execution logs older than %s: %s", self.config.retention, removed)
            self.writer.call(
                lambda: self.store.audit(
                    "retention.purge", now=utcnow(), detail={"cutoff": cutoff.isoformat(), "removed": removed}
                ),
                label="retention.audit",
            )
        return counts

    # ------------------------------------------------------------- internals
    def _report_delivery(self, message_id: str, result: DeliveryResult, now: dt.datetime) -> None:
        self.engine.delivered(message_id, result, now)

    def _fire_due(self, now: dt.datetime) -> None:
        self.writer.call(lambda: self.engine.fire_due(utcnow(), limit=FIRE_SLICE), label="timers.fire")
        self.metrics.timers_fired.inc()

    def _next_due(self) -> dt.datetime | None:
        return self.reader().next_due()

    def _after_commit(self, observations: list[Observation], seconds: float, jobs: int) -> None:
        self.metrics.observe_commit(observations, seconds, jobs)
        earliest: dt.datetime | None = None
        outbox = False
        forward = False
        for obs in observations:
            if obs.kind == "timer" and obs.model.status == "pending":
                if earliest is None or obs.model.due_at < earliest:
                    earliest = obs.model.due_at
            elif obs.kind == "message" and obs.model.status == "pending":
                outbox = True
            elif obs.kind == "trace" and obs.model.kind == "record" and obs.model.run_id:
                forward = True
        if earliest is not None and self._started:
            self.timers.wake_at(earliest)
        if outbox:
            self.outbox.wake()
        if forward and self.crm is not None:
            self.crm.wake()


def tune_process() -> None:
    """Process-wide settings for a daemon (not for a library user, hence not in Runner.start)."""
    # The event loop and the writer hand every request to each other; with the default
    # 5 ms GIL switch interval a busy thread can hold the other back for that long.
    sys.setswitchinterval(0.0005)
    # Every engine call allocates many short-lived models; the default collector thresholds make
    # frequent full collections over the long-lived objects (modules, bundles, caches), which showed
    # as 50-70 ms pauses in the latency tail. Freeze what exists at start; collect young objects less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs every job run at INFO; the timer loop runs often.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def serve(
    runner: Runner,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    on_ready: Callable[[StartupReport], None] | None = None,
    log_level: str = "info",
) -> None:
    """Run the HTTP API until SIGTERM/SIGINT (uvicorn handles both as a graceful shutdown)."""
    import uvicorn

    from flowctl.runner.app import create_app

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which makes the
                    # exit status "killed by signal"; the shutdown was clean, so exit 0 instead.
                    captured = getattr(self, "_captured_signals", None)
                    if isinstance(captured, list):
                        captured.clear()

    tune_process()
    app = create_app(runner, on_ready=on_ready)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
        server_header=False,
    )
    _Server(config).run()
