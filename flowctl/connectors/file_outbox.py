"""The default delivery: one file per message under the runner's data folder.

Email becomes `<key>.eml` (the exact RFC 5322 message SMTP would carry), every
other channel `<key>.json`. The file name is the idempotency key, and the
file is written atomically (a temporary file, fsync, then a hard link to the
final name, which fails if the name exists), so a re-send after a crash is a
no-op and a reader never sees half a message.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowctl.connectors.email_message import build_email
from flowctl.engine.secrets import reveal
from flowctl.engine.state import DeliveryResult, Message

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_name(message: Message) -> str:
    """`run-1:welcome:1` → `run-1.welcome.1.eml` (or `.json`)."""
    stem = _UNSAFE.sub("_", message.idempotency_key.replace(":", "."))
    return stem + (".eml" if message.channel == "email" else ".json")


def message_document(message: Message, environment: Mapping[str, str]) -> dict[str, Any]:
    """The JSON a non-email message is written as (secrets revealed, as a provider would receive it)."""
    doc: dict[str, Any] = {
        "id": message.id,
        "idempotency_key": message.idempotency_key,
        "channel": message.channel,
        "run_id": message.run_id,
        "flow": message.flow,
        "step": message.step,
        "to": reveal(message.to, environment),
        "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
    }
    optional = {
        "sender": message.sender,
        "subject": message.subject,
        "text": message.text,
        "template": message.template,
        "whatsapp": message.whatsapp,
        "priority": message.priority,
        "record": f"{message.object}/{message.record_id}" if message.object and message.record_id else None,
    }
    doc.update({k: reveal(v, environment) for k, v in optional.items() if v is not None})
    return doc


class FileOutbox:
    """Writes messages into `directory` (created on first use)."""

    def __init__(
        self,
        directory: Path,
        *,
        default_from: str = "flowctl <noreply@localhost>",
        environment: Mapping[str, str] | None = None,
        attachments_dir: Path | None = None,
    ) -> None:
        self.directory = directory
        self.default_from = default_from
        self.environment = environment if environment is not None else os.environ
        self.attachments_dir = attachments_dir

    def path_for(self, message: Message) -> Path:
        return self.directory / file_name(message)

    def send(self, message: Message) -> DeliveryResult:
        target = self.path_for(message)
        if target.exists():
            # Written by an earlier try whose outcome was lost in a crash: already delivered.
            return DeliveryResult(ok=True, provider_id=target.name)
        if message.channel == "email":
            mail = build_email(
                message,
                default_from=self.default_from,
                environment=self.environment,
                attachments_dir=self.attachments_dir,
            )
            content = bytes(mail)
        else:
            content = (
                json.dumps(message_document(message, self.environment), indent=2, ensure_ascii=False) + "\n"
            ).encode()
        self.directory.mkdir(parents=True, exist_ok=True)
        write_once(target, content)
        return DeliveryResult(ok=True, provider_id=target.name)


def write_once(target: Path, content: bytes) -> bool:
    """Atomically create `target` with `content`; False (and nothing written) when it already exists."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        _fsync_dir(target.parent)
        return True
    finally:
        os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    # The new directory entry must survive a power cut too, not only the file's bytes.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
