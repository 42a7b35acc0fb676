"""The outbox worker: delivers pending messages and reports each outcome to the engine.

State machine of an outbox row: `pending` (written by the engine in the
transaction that decided to send) → `sending` (claimed and committed before
any byte leaves) → `sent` / `failed` (the engine's `delivered`, which also
moves the waiting step on: success, a retry timer, or the step's failure).

A crash between the send and the record leaves the row in `sending`; on start
the worker re-sends those with the same idempotency key, which HTTP providers
get as `Idempotency-Key`, SMTP servers as the Message-ID and the file outbox
as the file name, so the recipient sees the message once.

Deliveries run on a thread pool: a provider that hangs holds one thread until
its timeout and fails that message only.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from flowctl.connectors.connector import Connector, deliver
from flowctl.connectors.file_outbox import FileOutbox
from flowctl.connectors.sms import SmsConnector, SmsSettings
from flowctl.connectors.smtp import SmtpConnector, SmtpSettings
from flowctl.connectors.webhook import WebhookConnector
from flowctl.connectors.whatsapp import WhatsappConnector, WhatsappSettings
from flowctl.engine.state import DeliveryResult, Message
from flowctl.lang.durations import Duration
from flowctl.runner.config import RunnerConfig
from flowctl.runner.metrics import RunnerMetrics
from flowctl.runner.writer import Writer
from flowctl.store.sqlite import SqliteStore

log = logging.getLogger("flowctl.runner")


def _seconds(text: str) -> float:
    return float(Duration.parse(text).nominal_seconds())


class ChannelRouter:
    """Which connector delivers which channel, from runner.yaml; the file outbox when nothing is configured."""

    def __init__(
        self,
        config: RunnerConfig,
        data_dir: Path,
        http: httpx.Client,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        env = environment if environment is not None else os.environ
        self.outbox_dir = data_dir / "outbox"
        attachments = data_dir / "attachments"
        self.file = FileOutbox(
            self.outbox_dir, default_from=config.email.from_, environment=env, attachments_dir=attachments
        )
        smtp, sms, wa = config.email.smtp, config.sms, config.whatsapp
        # A channel with nothing configured (None) is delivered to the file outbox.
        configured: dict[str, tuple[Connector, str] | None] = {
            "notification": None,
            "email": None
            if smtp is None
            else (
                SmtpConnector(
                    SmtpSettings(
                        host=smtp.host,
                        port=smtp.port,
                        starttls=smtp.starttls,
                        ssl=smtp.ssl,
                        username_env=smtp.username_env,
                        password_env=smtp.password_env,
                        timeout=_seconds(smtp.timeout),
                        default_from=config.email.from_,
                        verify_tls=smtp.verify_tls,
                    ),
                    environment=env,
                    attachments_dir=attachments,
                ),
                f"smtp {smtp.host}:{smtp.port}" + (" starttls" if smtp.starttls else ""),
            ),
            "sms": None
            if sms is None
            else (
                SmsConnector(
                    SmsSettings(
                        url=sms.url,
                        account_env=sms.account_env,
                        token_env=sms.token_env,
                        sender=sms.from_,
                        timeout=_seconds(sms.timeout),
                    ),
                    http,
                    environment=env,
                ),
                f"http {sms.url}",
            ),
            "whatsapp": None
            if wa is None
            else (
                WhatsappConnector(
                    WhatsappSettings(
                        url=wa.url,
                        token_env=wa.token_env,
                        phone_number_id=wa.phone_number_id,
                        timeout=_seconds(wa.timeout),
                    ),
                    http,
                    environment=env,
                ),
                f"http {wa.url}",
            ),
            "webhook": (
                WebhookConnector(http, environment=env, default_timeout=config.webhook_timeout_seconds),
                "http (the step's url)",
            ),
        }
        self.routes: dict[str, Connector] = {}
        self.described: dict[str, str] = {}
        file_route = (self.file, f"file outbox {self.outbox_dir}")
        for channel, route in configured.items():
            self.routes[channel], self.described[channel] = route or file_route

    def connector_for(self, message: Message) -> Connector:
        return self.routes.get(message.channel, self.file)


class OutboxWorker:
    """One thread claiming pending rows and a pool delivering them."""

    def __init__(
        self,
        writer: Writer,
        store: SqliteStore,
        router: ChannelRouter,
        report: Callable[[str, DeliveryResult, dt.datetime], Any],
        metrics: RunnerMetrics,
        *,
        concurrency: int = 8,
        poll_seconds: float = 2.0,
    ) -> None:
        self.writer = writer
        self.store = store  # the writer's store: only touched inside writer jobs
        self.router = router
        self.report = report
        self.metrics = metrics
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="flowctl-outbox")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._inflight = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="flowctl-outbox", daemon=True)
        self.recovered = 0

    def start(self) -> None:
        # Rows left in `sending` by a crash: the provider may have them already, so they go out
        # again with the same idempotency key (never as a new message).
        stranded = self.writer.call(lambda: self.store.messages_in_status("sending"), label="outbox.recover")
        self.recovered = len(stranded)
        if stranded:
            log.info(
                "re-sending %d message(s) interrupted by the last shutdown, with their idempotency keys",
                len(stranded),
            )
        for message in stranded:
            self._dispatch(message)
        self._wake.set()  # pending rows from before the restart go out at once, not at the first poll
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; let deliveries in flight finish (each bounded by its connector timeout)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._inflight and time.monotonic() < deadline:
                self._idle.wait(0.1)
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def inflight(self) -> int:
        return self._inflight

    # ------------------------------------------------------------- the thread
    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self._claim_and_dispatch()
            except Exception:
                log.exception("outbox claim failed; retrying")
                time.sleep(0.5)

    def _claim_and_dispatch(self) -> None:
        while not self._stopping.is_set():
            free = self.concurrency * 2 - self._inflight
            if free <= 0:
                return  # woken again when a delivery finishes
            claimed = self.writer.call(
                functools.partial(self.store.claim_messages, free), label="outbox.claim"
            )
            for message in claimed:
                self._dispatch(message)
            if len(claimed) < free:
                return

    def _dispatch(self, message: Message) -> None:
        with self._idle:
            self._inflight += 1
        try:
            self._pool.submit(self._deliver, message)
        except RuntimeError:  # the pool is shut down: leave the row in `sending` for the next start
            self._done()

    def _deliver(self, message: Message) -> None:
        try:
            started = time.perf_counter()
            result = deliver(self.router.connector_for(message), message)
            self.metrics.delivery(
                message.channel, result.ok, result.error_class, time.perf_counter() - started
            )
            if not result.ok:
                # The error text names the class and the provider's words, never a secret.
                log.warning(
                    "delivery of %s (%s, %s) failed: %s",
                    message.id,
                    message.channel,
                    message.idempotency_key,
                    result.error_class,
                )
            future = self.writer.submit(
                lambda: self.report(message.id, result, dt.datetime.now(dt.UTC)), label="outbox.delivered"
            )
            future.add_done_callback(lambda f: self._reported(message, f))
        except Exception:
            log.exception(
                "delivering %s failed unexpectedly; it stays in `sending` until the next start", message.id
            )
            self._done()

    def _reported(self, message: Message, future: Any) -> None:
        exc = future.exception()
        if exc is not None:
            log.error("recording the delivery of %s failed: %s", message.id, exc)
        self._done()

    def _done(self) -> None:
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()
        self._wake.set()
