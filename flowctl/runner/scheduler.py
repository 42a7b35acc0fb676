"""The timer loop and the daily retention purge, on APScheduler's BackgroundScheduler.

Every timer the engine keeps (waits, retry delays, task timeouts, date-trigger
starts, cron ticks, SLA deadlines) is a row with a `due_at`. One job,
`timers`, calls `engine.fire_due(now)` when the earliest pending row is due:
after every commit the runner tells the loop the earliest due time the batch
wrote (`wake_at`), and after each firing the loop reschedules itself at the
store's next due time. A safety poll (`max_sleep`) bounds how long a missed
wake-up could delay a timer. On start the job runs at once, so timers that
fell due while the runner was down fire immediately (the engine marks them
late); none is lost, and since firing marks a timer `fired` in the same
transaction, none fires twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger("flowctl.runner")
UTC = dt.UTC


class TimerLoop:
    def __init__(
        self,
        fire: Callable[[dt.datetime], Any],
        next_due: Callable[[], dt.datetime | None],
        purge: Callable[[], Any] | None = None,
        *,
        max_sleep: float = 30.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC),
    ) -> None:
        self.fire = fire  # runs engine.fire_due through the writer and waits for the commit
        self.next_due = next_due
        self.purge = purge
        self.max_sleep = max_sleep
        self.clock = clock
        self.scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._stopping = False
        self._scheduled: dt.datetime | None = None
        self.fired_batches = 0
        self._failures = 0

    def start(self) -> None:
        self.scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=self.max_sleep, timezone=UTC),
            id="timers",
            next_run_time=self.clock(),
            max_instances=3,
            coalesce=True,
        )
        if self.purge is not None:
            # Daily, at a quiet hour; plus once shortly after start so a runner that
            # is restarted every night still purges.
            self.scheduler.add_job(
                self._purge,
                CronTrigger(hour=3, minute=17, timezone=UTC),
                id="retention",
                max_instances=1,
                coalesce=True,
            )
            self.scheduler.add_job(
                self._purge, "date", run_date=self.clock() + dt.timedelta(seconds=5), id="retention-at-start"
            )
        self.scheduler.start()

    def stop(self) -> None:
        # APScheduler's shutdown(wait=True) holds its job-store lock while it waits for running jobs,
        # and a finishing `_run` reschedules itself through that lock: without this flag the two
        # deadlock. Set under our lock, so a reschedule either completes before shutdown starts
        # or sees the flag and does nothing.
        with self._lock:
            self._stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def wake_at(self, when: dt.datetime) -> None:
        """Make sure the loop runs no later than `when` (called after each commit with new timers)."""
        with self._lock:
            if self._running:
                # The running pass reads next_due when it ends; make it look again.
                self._again = True
                return
            if self._scheduled is not None and self._scheduled <= when:
                return
            self._scheduled = when
        self._reschedule(when)

    def _reschedule(self, when: dt.datetime) -> None:
        with self._lock:
            if self._stopping:
                return
            try:
                self.scheduler.modify_job("timers", next_run_time=max(when, self.clock()))
            except Exception:  # the scheduler is shutting down
                log.debug("timer loop reschedule skipped", exc_info=True)

    def _run(self) -> None:
        with self._lock:
            if self._running:
                # Another pass is firing right now; it reads next_due again before it stops.
                self._again = True
                return
            self._running = True
            self._again = False
        target = self.clock() + dt.timedelta(seconds=1)
        try:
            passes = 0
            while True:
                now = self.clock()
                due = self.next_due()
                if due is not None and due <= now and passes < 10_000:
                    passes += 1
                    self.fire(now)
                    self.fired_batches += 1
                    continue  # firing may have set timers that are already due (zero delays)
                with self._lock:
                    if self._again:
                        self._again = False
                        continue
                    self._running = False
                    soonest = now + dt.timedelta(seconds=self.max_sleep)
                    target = min(due, soonest) if due is not None else soonest
                    self._scheduled = target
                break
            self._failures = 0
        except Exception:
            # The failed call rolled back, so the timer is still due: back off (1 s, 2 s, 4 s ... 60 s)
            # rather than spin on a timer the engine cannot fire.
            self._failures += 1
            delay = min(60.0, 2.0 ** (self._failures - 1))
            log.exception(
                "firing due timers failed (%d in a row); trying again in %.0f s", self._failures, delay
            )
            target = self.clock() + dt.timedelta(seconds=delay)
            with self._lock:
                self._running = False
                self._scheduled = target
        self._reschedule(target)

    def _purge(self) -> None:
        assert self.purge is not None
        try:
            self.purge()
        except Exception:
            log.exception("retention purge failed; it runs again tomorrow")
