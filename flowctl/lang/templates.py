"""Sandboxed Jinja2 rendering for templated strings and message templates.

Rules (SPEC §1, §5): a sandbox (no attribute access to Python internals),
StrictUndefined (an undefined variable is an error, never an empty string in a
sent message), HTML autoescaped in `html` bodies only.

Static analysis for `validate` (which variables and filters a template uses)
lives in `flowctl.lang.template_analysis`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flowctl.errors import TemplateRenderError


def _make_env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    return env


_TEXT_ENV = _make_env(False)
_HTML_ENV = _make_env(True)


def environment(*, html: bool = False) -> ImmutableSandboxedEnvironment:
    """The shared environment; `html=True` autoescapes."""
    return _HTML_ENV if html else _TEXT_ENV


def is_templated(text: object) -> bool:
    return isinstance(text, str) and ("{{" in text or "{%" in text)


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool) -> jinja2.Template:
    return environment(html=html).from_string(source)


def compile_template(source: str, *, html: bool = False) -> jinja2.Template:
    """Compile (cached). Raises TemplateRenderError naming the line of a syntax error."""
    try:
        return _compile(source, html)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(
            f"template syntax error on line {exc.lineno}: {exc.message}",
            hint="check the {{ }} and {% %} pairs",
        ) from None


def render(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """Render a template string. Plain strings (no `{{`/`{%`) come back unchanged.

    Raises TemplateRenderError for syntax errors, undefined variables and
    sandbox violations, so a caller can fail exactly one step.
    """
    if not is_templated(source):
        return source
    template = compile_template(source, html=html)
    try:
        return template.render(dict(context))
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(
            f"undefined variable in template: {exc.message}", hint="check the field name against the object schema"
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateRenderError(f"template tried something the sandbox forbids: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(f"template error: {exc}") from None
    except Exception as exc:  # a filter or comparison failing on the data (e.g. None + 1)
        raise TemplateRenderError(f"template failed: {type(exc).__name__}: {exc}") from None


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside a JSON-like value (webhook bodies, `set:` maps)."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    return value


def evaluate_expression(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a Jinja2 expression (`{expr: ...}` conditions). Raises TemplateRenderError."""
    try:
        compiled = environment().compile_expression(expression, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(f"expression syntax error: {exc.message}") from None
    try:
        return compiled(**dict(context))
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(f"undefined variable in expression: {exc.message}") from None
    except Exception as exc:
        raise TemplateRenderError(f"expression failed: {type(exc).__name__}: {exc}") from None
