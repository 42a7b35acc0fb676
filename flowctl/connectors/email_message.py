"""Turning an outbox row into an RFC 5322 email (for SMTP and for the file outbox).

The Message-ID is derived from the idempotency key (`run:step:attempt` →
`<run.step.attempt@flowctl>`), so a message re-sent after a crash carries the
same Message-ID as the first try and the receiving side can drop it.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from pathlib import Path

from flowctl.connectors.errors import DeliveryFailure
from flowctl.engine.secrets import reveal
from flowctl.engine.state import Message

_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


def message_id_for(idempotency_key: str) -> str:
    """`run-1:welcome:1` → `<run-1.welcome.1@flowctl>` (only dot-atom characters survive)."""
    left = ".".join(_UNSAFE.sub("-", part) for part in idempotency_key.split(":") if part)
    return f"<{left or 'message'}@flowctl>"


def envelope_recipients(message: Message) -> list[str]:
    """Every address the server must deliver to: to + cc + bcc, without display names, deduplicated."""
    seen: dict[str, None] = {}
    for _, addr in getaddresses([*message.to, *message.cc, *message.bcc]):
        if addr:
            seen.setdefault(addr, None)
    return list(seen)


def build_email(
    message: Message,
    *,
    default_from: str,
    environment: Mapping[str, str] | None = None,
    attachments_dir: Path | None = None,
) -> EmailMessage:
    """The email as it leaves the runner. Secrets (`{{ secrets.X }}`) are revealed here and only here."""
    env = environment or {}
    if not message.to:
        raise DeliveryFailure("rejected", "the email has no recipient")
    mail = EmailMessage()
    mail["From"] = reveal(message.sender, env) or default_from
    mail["To"] = ", ".join(reveal(message.to, env))
    if message.cc:
        mail["Cc"] = ", ".join(reveal(message.cc, env))
    mail["Subject"] = reveal(message.subject or "", env)
    mail["Message-ID"] = message_id_for(message.idempotency_key)
    mail["Date"] = format_datetime(message.created_at)
    mail["X-Flowctl-Idempotency-Key"] = message.idempotency_key
    if message.run_id:
        mail["X-Flowctl-Run"] = message.run_id
    text = reveal(message.text, env)
    html = reveal(message.html, env)
    if text is not None:
        mail.set_content(text)
        if html is not None:
            mail.add_alternative(html, subtype="html")
    elif html is not None:
        mail.set_content(html, subtype="html")
    else:
        mail.set_content("")
    for name in message.attachments:
        path = _attachment_path(name, attachments_dir)
        ctype, _ = mimetypes.guess_type(path.name)
        maintype, subtype = (ctype or "application/octet-stream").split("/", 1)
        mail.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return mail


def _attachment_path(name: str, attachments_dir: Path | None) -> Path:
    # Attachments are files the operator put under the runner's attachments
    # folder; a flow must not be able to mail arbitrary files off the host.
    if attachments_dir is None:
        raise DeliveryFailure(
            "config", f"attachment '{name}': the runner has no attachments folder configured"
        )
    base = attachments_dir.resolve()
    path = (base / name).resolve()
    if base not in path.parents:
        raise DeliveryFailure("rejected", f"attachment '{name}' is outside the attachments folder")
    if not path.is_file():
        raise DeliveryFailure("config", f"attachment '{name}' not found in {base}")
    return path
