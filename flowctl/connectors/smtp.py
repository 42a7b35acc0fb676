"""Email over SMTP (smtplib), with optional implicit TLS, STARTTLS and login.

Credentials come from environment variables named in runner.yaml
(`username_env`, `password_env`); they are read at send time and never logged.
Every email carries a stable Message-ID derived from its idempotency key.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flowctl.connectors.connector import env_secret
from flowctl.connectors.email_message import build_email, envelope_recipients
from flowctl.connectors.errors import DeliveryFailure
from flowctl.engine.state import DeliveryResult, Message


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    ssl: bool = False  # implicit TLS (port 465)
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 30.0
    default_from: str = "flowctl <noreply@localhost>"
    # Verify the server certificate for STARTTLS / TLS (turn off only for a test server).
    verify_tls: bool = True


class SmtpConnector:
    """One SMTP session per message: simple, and a broken connection never poisons the next send."""

    channel = "email"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        environment: Mapping[str, str] | None = None,
        attachments_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.environment = environment if environment is not None else os.environ
        self.attachments_dir = attachments_dir

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def send(self, message: Message) -> DeliveryResult:
        s = self.settings
        mail = build_email(
            message,
            default_from=s.default_from,
            environment=self.environment,
            attachments_dir=self.attachments_dir,
        )
        recipients = envelope_recipients(message)
        if not recipients:
            raise DeliveryFailure("rejected", "the email has no valid recipient address")
        username = env_secret(self.environment, s.username_env, "SMTP username")
        password = env_secret(self.environment, s.password_env, "SMTP password")
        client: smtplib.SMTP
        if s.ssl:
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context())
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            client.ehlo()
            if s.starttls and not s.ssl:
                client.starttls(context=self._context())
                client.ehlo()
            if username is not None:
                client.login(username, password or "")
            refused = client.send_message(mail, to_addrs=recipients)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
        if refused and len(refused) == len(recipients):
            raise DeliveryFailure("rejected", "every recipient was refused")
        return DeliveryResult(ok=True, provider_id=str(mail["Message-ID"]))
