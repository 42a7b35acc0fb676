"""Runner metrics: Prometheus (`/metrics`) and a JSON snapshot (`/v1/metrics`).

Counters are fed from what each committed batch wrote (the engine's trace and
step attempts), so a rolled-back call never counts. Gauges (runs by status,
outbox rows by status, pending timers) are read from the database at scrape
time, so they are right after a restart too.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from flowctl.engine.state import TraceEntry
from flowctl.store.sqlite import AttemptNote, Observation

_STEP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class _StoreGauges(Collector):
    def __init__(self, counts: Callable[[], dict[str, dict[str, int]]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.counts()
        except Exception:  # a scrape must not fail because the database is busy
            return
        for table, help_text in (
            ("runs", "Runs by status"),
            ("messages", "Outbox rows by status"),
            ("tasks", "Tasks by status"),
            ("timers", "Timers by status"),
        ):
            family = GaugeMetricFamily(f"flowctl_{table}", help_text, labels=["status"])
            for status, value in sorted(counts.get(table, {}).items()):
                family.add_metric([status], value)
            yield family


class RunnerMetrics:
    def __init__(self, counts: Callable[[], dict[str, dict[str, int]]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("flowctl_events_total", "Events received", ["outcome"], registry=r)
        self.runs_started = Counter("flowctl_runs_started_total", "Runs started", ["flow"], registry=r)
        self.runs_finished = Counter(
            "flowctl_runs_finished_total", "Runs that ended", ["flow", "status"], registry=r
        )
        self.steps = Counter("flowctl_steps_total", "Step outcomes", ["flow", "action", "status"], registry=r)
        self.step_seconds = Histogram(
            "flowctl_step_duration_seconds",
            "Step attempt duration (start to end, waits included)",
            ["flow"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.outbox_sends = Counter(
            "flowctl_outbox_sends_total", "Messages delivered", ["channel"], registry=r
        )
        self.outbox_failures = Counter(
            "flowctl_outbox_failures_total", "Failed deliveries", ["channel", "error_class"], registry=r
        )
        self.outbox_seconds = Histogram(
            "flowctl_outbox_delivery_seconds",
            "Time spent delivering one message",
            ["channel"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.timers_fired = Counter(
            "flowctl_timers_fired_total", "fire_due calls that fired timers", registry=r
        )
        self.batch_size = Histogram(
            "flowctl_commit_batch_jobs", "Engine calls per group commit", buckets=_BATCH_BUCKETS, registry=r
        )
        self.commit_seconds = Histogram(
            "flowctl_commit_seconds", "Time to run and commit one batch", buckets=_COMMIT_BUCKETS, registry=r
        )
        if counts is not None:
            r.register(_StoreGauges(counts))
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] = {
            "events": defaultdict(int),
            "runs_started": defaultdict(int),
            "runs_finished": defaultdict(lambda: defaultdict(int)),
            "steps": defaultdict(lambda: defaultdict(int)),
            "outbox_sent": defaultdict(int),
            "outbox_failed": defaultdict(lambda: defaultdict(int)),
        }
        self.started = time.time()
        # Labelled children by (metric, label values): prometheus_client's labels() validates and
        # takes a lock on every call, and every committed batch feeds several per event.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # ------------------------------------------------------------- feeding
    def observe_commit(self, observations: list[Observation], seconds: float, jobs: int) -> None:
        self.batch_size.observe(jobs)
        self.commit_seconds.observe(seconds)
        with self._lock:
            for obs in observations:
                if obs.kind == "trace":
                    self._trace(obs.model)
                elif obs.kind == "attempt":
                    self._attempt(obs.model)

    def _trace(self, entry: TraceEntry) -> None:
        snap = self._snapshot
        flow = entry.flow or "-"
        if entry.kind == "run" and entry.status == "started":
            self._child(self.runs_started, flow).inc()
            snap["runs_started"][flow] += 1
        elif entry.kind == "run" and entry.status in (
            "succeeded",
            "succeeded_compensated",
            "failed",
            "cancelled",
        ):
            self._child(self.runs_finished, flow, entry.status).inc()
            snap["runs_finished"][flow][entry.status] += 1
        elif entry.kind == "step" and entry.status in (
            "succeeded",
            "failed",
            "skipped",
            "compensated",
            "retrying",
        ):
            action = str(entry.detail.get("action") or "-")
            self._child(self.steps, flow, action, entry.status).inc()
            snap["steps"][flow][f"{action}:{entry.status}"] += 1

    def _attempt(self, attempt: AttemptNote) -> None:
        if attempt.ended_at is not None and attempt.status in ("succeeded", "failed", "skipped"):
            self._child(self.step_seconds, attempt.flow).observe(
                (attempt.ended_at - attempt.started_at).total_seconds()
            )

    def event(self, outcome: str, count: int = 1) -> None:
        with self._lock:
            self._child(self.events, outcome).inc(count)
            self._snapshot["events"][outcome] += count

    def delivery(self, channel: str, ok: bool, error_class: str | None, seconds: float) -> None:
        self.outbox_seconds.labels(channel).observe(seconds)
        with self._lock:
            if ok:
                self.outbox_sends.labels(channel).inc()
                self._snapshot["outbox_sent"][channel] += 1
            else:
                self.outbox_failures.labels(channel, error_class or "other").inc()
                self._snapshot["outbox_failed"][channel][error_class or "other"] += 1

    # ------------------------------------------------------------- reading
    def prometheus(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """Counters since this runner process started (plain dicts, JSON-ready)."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in sorted(value.items())}
            return value

        with self._lock:
            return {k: plain(v) for k, v in self._snapshot.items()}
