"""Domain exceptions. The CLI turns each into one clear message and exit code 1."""

from __future__ import annotations


class FlowctlError(Exception):
    """Base of every error flowctl raises on purpose.

    `hint` tells the user what to do about it; the CLI prints it under the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class DurationError(FlowctlError, ValueError):
    """A duration string such as `3d` or `-7d` could not be parsed."""


class ConfigError(FlowctlError):
    """flowctl.yaml or runner.yaml is missing something or is invalid."""


class ProjectError(FlowctlError):
    """The flows repository cannot be loaded (no such path, invalid tree where a valid one is required)."""


class TemplateRenderError(FlowctlError):
    """A Jinja2 template failed to render (undefined variable, syntax error, sandbox violation)."""


class RunnerError(FlowctlError):
    """The runner answered with an error or could not be reached."""


class GitError(FlowctlError):
    """A git command failed or the repository is not in the state an operation needs."""


class CalendarError(FlowctlError, ValueError):
    """Business-time arithmetic cannot be done (a calendar with no business hours ahead)."""
