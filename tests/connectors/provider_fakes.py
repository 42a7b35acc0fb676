"""Real servers on 127.0.0.1 standing in for email, SMS, WhatsApp, webhook and CRM providers.

They behave like providers that honour idempotency: every request is logged
(`requests`/`messages`), and `unique_*` dedupes by the `Idempotency-Key`
header or the email Message-ID, so a test can assert "no message was sent
twice" as "every key was delivered once" while still seeing re-sends.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- SMTP


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class _Handler:
    def __init__(self, server: FakeSmtp) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.server.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.temporary_failures > 0:
            self.server.temporary_failures -= 1
            return "451 4.3.0 try again later"
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.server.lock:
            self.server.messages.append(
                ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), msg, raw)
            )
        if self.server.delay:
            await asyncio.sleep(self.server.delay)  # holds this session only, not the server
        return "250 OK queued"


class FakeSmtp:
    """An aiosmtpd server. Optional STARTTLS (self-signed) and AUTH LOGIN/PLAIN with one user."""

    def __init__(
        self,
        *,
        tls_dir: Path | None = None,
        require_starttls: bool = False,
        user: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.messages: list[ReceivedMail] = []
        self.lock = threading.Lock()
        self.refuse: set[str] = set()
        self.temporary_failures = 0
        self.delay = 0.0
        self.logins: list[str] = []
        kwargs: dict[str, Any] = {}
        if tls_dir is not None:
            import ssl

            cert, key = self_signed_cert(tls_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = require_starttls
        if user is not None:

            def authenticate(
                server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
            ) -> AuthResult:
                if isinstance(data, LoginPassword):
                    login, password = data.login.decode(), data.password.decode()
                    if (login, password) == user:
                        self.logins.append(login)
                        return AuthResult(success=True)
                return AuthResult(success=False, handled=False)

            kwargs["authenticator"] = authenticate
            kwargs["auth_required"] = True
            kwargs["auth_require_tls"] = tls_dir is not None
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> FakeSmtp:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def unique(self) -> dict[str, ReceivedMail]:
        with self.lock:
            out: dict[str, ReceivedMail] = {}
            for m in self.messages:
                out.setdefault(m.message_id, m)
            return out

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} emails, got {len(self.messages)}")


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


# --------------------------------------------------------------------------- HTTP


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    delay: float = 0.0


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode()))


@dataclass
class FakeHttp:
    """A threaded HTTP server. `script(path, [Reply, ...])` queues answers; afterwards `default` answers."""

    port: int = field(default_factory=free_port)
    requests: list[ReceivedRequest] = field(default_factory=list)
    default: Callable[[ReceivedRequest], Reply] = field(
        default=lambda r: Reply(200, {"ok": True, "id": "m-1"})
    )

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.scripts: dict[str, list[Reply]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = ReceivedRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with fake.lock:
                    fake.requests.append(req)
                    queue = fake.scripts.get(self.path.split("?")[0])
                    reply = queue.pop(0) if queue else None
                if reply is None:
                    reply = fake.default(req)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = json.dumps(reply.json).encode() if reply.json is not None else b""
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeHttp:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, path: str, replies: list[Reply]) -> None:
        with self.lock:
            self.scripts.setdefault(path, []).extend(replies)

    def to(self, path: str) -> list[ReceivedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def unique(self, path: str) -> dict[str, ReceivedRequest]:
        """Requests to `path` deduplicated by Idempotency-Key (what a provider that honours it delivers)."""
        out: dict[str, ReceivedRequest] = {}
        for r in self.to(path):
            out.setdefault(r.key or f"no-key-{id(r)}", r)
        return out

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.to(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests to {path}, got {len(self.to(path))}")
