"""Showing flow test results: readable text (✓/✗, expected vs closest actual) and JUnit XML for CI.

Both formats are documented in docs/formats/test-output.md.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.markup import escape

from flowctl.sim.expectations import Check
from flowctl.sim.flowtest import TestReport, TestResult


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    return str(value)


def _pairs(item: dict[str, Any]) -> str:
    return "  ".join(f"{k}: {_value(v)}" for k, v in item.items() if not k.startswith("_"))


def check_lines(check: Check) -> list[str]:
    """Plain lines describing a failed expectation: the problem, what was expected, the closest actual items."""
    lines = [f"{check.path}: {check.problem}", f"  expected  {_pairs(check.expected)}"]
    for n, item in enumerate(check.closest):
        label = "closest " if n == 0 else "        "
        mismatch = item.get("_mismatch") or []
        note = f"   ← differs: {', '.join(mismatch)}" if mismatch else ""
        lines.append(f"  {label}  {_pairs(item)}{note}")
    if not check.closest and check.problem and "expected" not in check.problem:
        lines.append("  actual    nothing")
    return lines


def failure_text(result: TestResult) -> str:
    if result.error:
        return f"error: {result.error}"
    return "\n".join(line for c in result.failures for line in check_lines(c))


def render_text(report: TestReport, console: Console) -> None:
    if not report.results:
        console.print("no flow tests found", style="yellow")
        return
    for result in report.results:
        mark = "[green]✓[/]" if result.passed else "[red]✗[/]"
        where = f"{result.file}:{result.line}"
        console.print(f"{mark} {escape(result.name)}  [dim]{escape(where)}  {result.seconds:.2f}s[/]")
        if result.passed:
            continue
        if result.error:
            console.print(f"    [red]error:[/] {escape(result.error)}")
            continue
        for check in result.failures:
            lines = check_lines(check)
            console.print(f"    [red]{escape(lines[0])}[/]")
            for line in lines[1:]:
                style = "green" if line.lstrip().startswith("expected") else "yellow"
                console.print(f"    [{style}]{escape(line)}[/]")
    total = len(report.results)
    failed = len(report.failed)
    summary = f"{total} test{'s' if total != 1 else ''}: {total - failed} passed, {failed} failed ({report.seconds:.2f}s)"
    console.print(f"\n[{'red' if failed else 'green'}]{summary}[/]")


def render_junit(report: TestReport) -> str:
    suites = ET.Element("testsuites", name="flowctl", tests=str(len(report.results)),
                        failures=str(sum(1 for r in report.results if not r.passed and not r.error)),
                        errors=str(sum(1 for r in report.results if r.error)), time=f"{report.seconds:.3f}")
    by_file: dict[str, list[TestResult]] = defaultdict(list)
    for result in report.results:
        by_file[result.file].append(result)
    for file, results in by_file.items():
        suite = ET.SubElement(
            suites, "testsuite", name=file, tests=str(len(results)),
            failures=str(sum(1 for r in results if not r.passed and not r.error)),
            errors=str(sum(1 for r in results if r.error)),
            time=f"{sum(r.seconds for r in results):.3f}",
        )
        for result in results:
            case = ET.SubElement(suite, "testcase", classname=file, name=result.name, file=file,
                                 line=str(result.line), time=f"{result.seconds:.3f}")
            if result.error:
                node = ET.SubElement(case, "error", message=result.error[:500], type="error")
                node.text = result.error
            elif not result.passed:
                first = result.failures[0]
                node = ET.SubElement(case, "failure", message=f"{first.path}: {first.problem}"[:500],
                                     type="expectation")
                node.text = failure_text(result)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
