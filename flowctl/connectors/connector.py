"""What every delivery connector is: `send(message) -> DeliveryResult`, never raising.

Connectors raise `DeliveryFailure` (or let an httpx/smtplib/OS error escape)
inside `_send`; `deliver` turns whatever happened into a `DeliveryResult`
with an error class, so one bad provider fails one step and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from flowctl.connectors.errors import classify_exception
from flowctl.engine.state import DeliveryResult, Message


@runtime_checkable
class Connector(Protocol):
    """Delivers one outbox row. Implementations must be safe to call from several threads."""

    def send(self, message: Message) -> DeliveryResult: ...


def deliver(connector: Connector, message: Message) -> DeliveryResult:
    """`connector.send(message)`, with any exception classified into a failed result."""
    try:
        return connector.send(message)
    except Exception as exc:  # a connector bug or an unclassified library error fails only this message
        error_class, text = classify_exception(exc)
        return DeliveryResult(ok=False, error_class=error_class, error=text)


def idempotency_headers(message: Message) -> dict[str, str]:
    """Headers every HTTP delivery carries, so a provider can drop a re-send after a crash."""
    return {"Idempotency-Key": message.idempotency_key, "User-Agent": "flowctl-runner"}


def env_secret(environment: Mapping[str, str], name: str | None, what: str) -> str | None:
    """The value of the environment variable `name` (None when no variable is configured)."""
    from flowctl.connectors.errors import DeliveryFailure

    if not name:
        return None
    value = environment.get(name)
    if value is None:
        raise DeliveryFailure("config", f"{what}: environment variable {name} is not set on the runner")
    return value
