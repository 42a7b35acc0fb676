"""Classifying delivery failures, for retry decisions and the failure report.

Every connector reports a failure as an error class string (the engine's
`DeliveryResult.error_class`, the same strings flow tests inject as faults):

- `timeout`      the provider did not answer in time (connect, read or write);
- `connection`   it could not be reached (refused, reset, DNS, TLS);
- `HTTP <code>`  an HTTP provider or webhook answered with an unexpected status;
- `SMTP <code>`  an SMTP server refused with a temporary (4xx) reply;
- `rejected`     the provider refused the message for good (SMTP 5xx, bad recipient,
                 an HTTP provider's explicit refusal);
- `config`       the runner cannot deliver it as configured (missing secret, no URL).

SPEC §10.6: HTTP 4xx other than 408 and 429, `rejected`, `config` and
template errors are not retried; everything else is.
"""

from __future__ import annotations

import socket
import ssl
from typing import Literal

import httpx

Category = Literal["timeout", "connection", "4xx", "5xx", "rejected", "config", "template", "other"]

NOT_RETRIED = frozenset({"rejected", "config", "template", "no_consent"})


class DeliveryFailure(Exception):
    """Raised inside a connector; carries the error class the outbox reports."""

    def __init__(self, error_class: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.status = status


def http_status_class(status: int) -> str:
    return f"HTTP {status}"


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """(error class, one-line message) for an exception raised while delivering."""
    if isinstance(exc, DeliveryFailure):
        return exc.error_class, exc.message
    if isinstance(exc, httpx.TimeoutException | socket.timeout | TimeoutError):
        return "timeout", f"timed out: {type(exc).__name__}"
    if isinstance(exc, httpx.HTTPStatusError):
        return http_status_class(exc.response.status_code), f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TransportError | ConnectionError | ssl.SSLError | socket.gaierror):
        return "connection", f"{type(exc).__name__}: {_short(exc)}"
    import smtplib

    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "connection", f"SMTP server disconnected: {_short(exc)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "rejected", "every recipient was refused"
    if isinstance(exc, smtplib.SMTPResponseException):
        code = int(exc.smtp_code)
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        if 400 <= code < 500:
            return f"SMTP {code}", f"SMTP {code}: {text}"
        return "rejected", f"SMTP {code}: {text}"
    if isinstance(exc, smtplib.SMTPException):
        return "rejected", f"{type(exc).__name__}: {_short(exc)}"
    if isinstance(exc, OSError):
        return "connection", f"{type(exc).__name__}: {_short(exc)}"
    return "other", f"{type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def category(error_class: str | None) -> Category:
    """The coarse group of an error class: what the failure report groups by."""
    if not error_class:
        return "other"
    if error_class in ("timeout", "connection", "rejected", "config", "template"):
        return error_class  # type: ignore[return-value]
    if error_class.startswith(("HTTP ", "SMTP ")):
        try:
            code = int(error_class.split(" ", 1)[1])
        except ValueError:
            return "other"
        if error_class.startswith("HTTP ") and code == 408:
            return "timeout"
        return "4xx" if 400 <= code < 500 else "5xx" if code >= 500 else "other"
    return "other"


def is_retryable(error_class: str | None) -> bool:
    """SPEC §10.6: may another attempt succeed?"""
    if not error_class or error_class in NOT_RETRIED:
        return False
    if error_class.startswith("HTTP "):
        try:
            code = int(error_class.split(" ", 1)[1])
        except ValueError:
            return True
        return not (400 <= code < 500) or code in (408, 429)
    return True
