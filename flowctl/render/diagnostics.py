"""Validation results for people (text), machines (JSON) and GitHub Actions (annotations).

Text:    `flows/welcome.yaml:12:9  error  unknown-template  unknown template 'welcom'`
         with the detail and hint indented below, and a summary line last.
JSON:    documented in docs/formats/validate-json.md (format_version 1).
GitHub:  `::error file=…,line=…,col=…,title=<code>::<summary>` workflow commands,
         which GitHub shows as annotations on the pull request's diff.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from flowctl.check.diagnostics import Diagnostic
from flowctl.check.validate import ValidationReport

JSON_FORMAT_VERSION = 1
SEVERITY_STYLES = {"error": "bold red", "warning": "yellow"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(report: ValidationReport) -> str:
    """`✓ 27 files valid` or `3 errors, 1 warning in 2 files`."""
    files = len(report.files)
    if report.valid:
        line = f"✓ {_plural(files, 'file')} valid"
        if report.warning_count:
            line += f" ({_plural(report.warning_count, 'warning')})"
        return line
    parts = []
    if report.error_count:
        parts.append(_plural(report.error_count, "error"))
    if report.warning_count:
        parts.append(_plural(report.warning_count, "warning"))
    line = ", ".join(parts) + f" in {_plural(report.files_with_problems, 'file')}"
    if report.strict and not report.error_count:
        line += " (--strict: warnings count as errors)"
    return line


def diagnostic_text(d: Diagnostic) -> Text:
    text = Text()
    text.append(d.location, style="bold")
    text.append("  ")
    text.append(d.severity, style=SEVERITY_STYLES.get(d.severity, ""))
    text.append("  ")
    text.append(d.code, style="cyan")
    text.append("  ")
    text.append(d.summary)
    if d.detail:
        text.append("\n    ")
        text.append(d.detail, style="dim")
    if d.hint:
        text.append("\n    hint: ", style="dim")
        text.append(d.hint)
    return text


def render_text(report: ValidationReport, console: Console) -> None:
    for d in report.diagnostics:
        console.print(diagnostic_text(d))
    if report.diagnostics:
        console.print()
    style = (
        "bold green"
        if report.valid and not report.warning_count
        else ("yellow" if report.valid else "bold red")
    )
    console.print(Text(summary_line(report), style=style))


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "severity": d.severity,
        "code": d.code,
        "summary": d.summary,
        "detail": d.detail,
        "hint": d.hint,
        "range": {"file": d.range.file, "line": d.range.line, "column": d.range.column},
    }


def report_json(report: ValidationReport) -> dict[str, Any]:
    """The documented JSON document (key order is part of the format)."""
    return {
        "format_version": JSON_FORMAT_VERSION,
        "valid": report.valid,
        "error_count": report.error_count,
        "warning_count": report.warning_count,
        "files_checked": len(report.files),
        "diagnostics": [diagnostic_json(d) for d in report.diagnostics],
    }


def _escape_data(text: str) -> str:
    # GitHub workflow-command escaping: the message ends at a newline.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(d: Diagnostic) -> str:
    command = "error" if d.severity == "error" else "warning"
    props = ",".join(
        [
            f"file={_escape_property(d.range.file)}",
            f"line={d.range.line}",
            f"col={d.range.column}",
            f"title={_escape_property(d.code)}",
        ]
    )
    return f"::{command} {props}::{_escape_data(d.summary)}"


def render_github(report: ValidationReport) -> str:
    """One workflow command per diagnostic, then the summary line as plain log output."""
    lines = [github_line(d) for d in report.diagnostics]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
