"""What executing one step attempt decided; `flowctl.engine.runs` carries it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flowctl.engine.state import Waiting

OutcomeKind = Literal["next", "jump", "wait", "fail", "end", "skip"]

# Error classes that are never retried (SPEC §10.6); `HTTP 4xx` except 408/429 is decided by `is_retryable`.
NOT_RETRIED = frozenset({"template", "no_consent", "not_found", "invalid", "rejected", "config", "loop_guard"})


def is_retryable(error_class: str | None) -> bool:
    if error_class is None:
        return True
    if error_class in NOT_RETRIED:
        return False
    if error_class.startswith("HTTP "):
        try:
            status = int(error_class.split()[1])
        except (IndexError, ValueError):
            return True
        return not (400 <= status < 500) or status in (408, 429)
    return True


@dataclass
class Outcome:
    kind: OutcomeKind
    output: Any = None
    target: str | None = None  # jump: the step to go to (None ends the run)
    error: str | None = None
    error_class: str | None = None
    retryable: bool = True
    status: str | None = None  # end: the run's final status
    outcome: str | None = None  # end: the run's outcome (stop reason, rejected, ...)
    reason: str | None = None  # skip: why (no_consent, when false)
    waiting: Waiting | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # extra trace detail (message preview, branch)

    @classmethod
    def done(cls, output: Any = None, **detail: Any) -> Outcome:
        return cls("next", output=output, detail=detail)

    @classmethod
    def jump(cls, target: str | None, output: Any = None, **detail: Any) -> Outcome:
        return cls("jump", target=target, output=output, detail=detail)

    @classmethod
    def skip(cls, reason: str, **detail: Any) -> Outcome:
        return cls("skip", reason=reason, detail=detail)

    @classmethod
    def wait(cls, waiting: Waiting, **detail: Any) -> Outcome:
        return cls("wait", waiting=waiting, detail=detail)

    @classmethod
    def fail(cls, error: str, error_class: str, *, retryable: bool | None = None, **detail: Any) -> Outcome:
        return cls(
            "fail",
            error=error,
            error_class=error_class,
            retryable=is_retryable(error_class) if retryable is None else retryable,
            detail=detail,
        )

    @classmethod
    def end(cls, status: str, outcome: str | None = None, **detail: Any) -> Outcome:
        return cls("end", status=status, outcome=outcome, detail=detail)


class StepError(Exception):
    """Raised inside a step handler to fail that step (never the engine)."""

    def __init__(self, message: str, error_class: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class
