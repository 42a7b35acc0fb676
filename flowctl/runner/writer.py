"""Group commit: one thread owns the writing connection and commits engine calls in batches.

Every state change in the runner is a job run on this thread. The thread
takes the first waiting job, then every job already queued behind it (up to
`max_batch`), runs each inside its own SAVEPOINT (so a job that raises rolls
back alone), commits the batch with one fsync, and only then resolves the
jobs' futures. An HTTP request answered from such a future is therefore
answered after its writes are on disk, and under load many requests share
one fsync: throughput approaches what SQLite can commit, not one fsync per
event.

After each commit `after_commit(observations)` runs on this thread with what
the batch wrote (new timers, pending messages, finished steps), so the timer
loop and the outbox worker wake exactly when there is work.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flowctl.store.sqlite import Observation, SqliteStore

log = logging.getLogger("flowctl.runner")
T = TypeVar("T")


@dataclass
class _Job:
    fn: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)
    label: str = "job"


@dataclass
class WriterStats:
    batches: int = 0
    jobs: int = 0
    failed_jobs: int = 0
    max_batch: int = 0
    commit_seconds: float = 0.0


_STOP = object()


class Writer:
    def __init__(
        self,
        store: SqliteStore,
        *,
        max_batch: int = 256,
        after_commit: Callable[[list[Observation], float, int], None] | None = None,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.after_commit = after_commit
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="flowctl-writer", daemon=True)
        self._stopped = threading.Event()
        self._accepting = True

    def start(self) -> None:
        self._thread.start()

    def submit(self, fn: Callable[[], T], label: str = "job") -> Future[T]:
        """Queue `fn` to run in the next batch; the future resolves after the batch is committed."""
        if not self._accepting:
            future: Future[T] = Future()
            future.set_exception(RuntimeError("the runner is shutting down"))
            return future
        job = _Job(fn, label=label)
        self._queue.put(job)
        return job.future

    def call(self, fn: Callable[[], T], label: str = "job", timeout: float | None = None) -> T:
        """Submit and wait (for worker threads; the API awaits the future instead)."""
        return self.submit(fn, label).result(timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish every queued job, then stop the thread."""
        self._accepting = False
        self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------- the thread
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[_Job] = [first]  # type: ignore[list-item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            self._run_batch(batch)
        self._stopped.set()

    def _run_batch(self, batch: list[_Job]) -> None:
        results: list[tuple[_Job, bool, Any]] = []
        started = time.perf_counter()
        try:
            with self.store.transaction():
                for job in batch:
                    # A caller that gave up before its job started (an API request cancelled while
                    # queued) cancelled the future: skip the job. Once marked running, a future can no
                    # longer be cancelled, so resolving it below cannot fail and stop this thread.
                    if not job.future.set_running_or_notify_cancel():
                        continue
                    try:
                        with self.store.transaction():
                            value = job.fn()
                        results.append((job, True, value))
                    except BaseException as exc:  # the job's savepoint is rolled back; the others go on
                        results.append((job, False, exc))
        except BaseException as exc:  # the COMMIT itself failed (disk full, I/O error): nothing is durable
            log.error("commit of %d job(s) failed: %s", len(batch), exc)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        elapsed = time.perf_counter() - started
        self.stats.batches += 1
        self.stats.jobs += len(batch)
        self.stats.max_batch = max(self.stats.max_batch, len(batch))
        self.stats.commit_seconds += elapsed
        observations = self.store.take_committed()
        if self.after_commit is not None:
            try:
                self.after_commit(observations, elapsed, len(batch))
            except Exception:  # a metrics or wake-up hook must never lose the answers below
                log.exception("after-commit hook failed")
        for job, ok, value in results:
            if ok:
                job.future.set_result(value)
            else:
                self.stats.failed_jobs += 1
                if not isinstance(value, Exception):
                    value = RuntimeError(f"{job.label} was interrupted: {value!r}")
                job.future.set_exception(value)
