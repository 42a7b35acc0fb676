"""Composing outbound messages: consent, templates, locales, A/B variants.

The engine only writes the outbox row (`Message`, status pending); the shell
delivers it. Rendering happens here, at the step, so a template error fails
the step (error class `template`, not retried) and never reaches a provider.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from flowctl.engine.context import condition_context
from flowctl.engine.outcome import StepError
from flowctl.engine.runtime import Runtime
from flowctl.engine.state import Record
from flowctl.errors import TemplateRenderError
from flowctl.lang.conditions import evaluate
from flowctl.lang.templates import render
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import SendEmail, Template, Variant


def has_consent(rt: Runtime, bundle: TypedBundle, record: Record | None, channel: str, timezone: str) -> bool:
    """The object's `consent` rule for the channel holds (no rule, or no record: consent is not needed)."""
    if record is None:
        return True
    obj = rt.object_schema(bundle, record.object)
    if obj is None:
        return True
    rule = obj.consent.get(channel)  # type: ignore[call-overload]
    if rule is None:
        return True
    ctx = condition_context(rt, bundle, record=record, object_name=record.object, timezone=timezone,
                            expr_context={})
    return evaluate(rule, ctx)


def tpl(source: str | None, context: Mapping[str, Any], *, html: bool = False) -> str | None:
    """Render, turning a template error into a failed step (class `template`)."""
    if source is None:
        return None
    try:
        return render(source, context, html=html)
    except TemplateRenderError as exc:
        raise StepError(readable_template_error(exc.message), "template") from None


_OBJECT_NAMES = {
    "'flowctl.engine.context.RecordView object'": "the record",
    "'flowctl.engine.context.RefStub object'": "a referenced record the engine does not hold (only its id is known)",
    "'flowctl.engine.secrets.SecretNames object'": "secrets",
}


def readable_template_error(message: str) -> str:
    """Jinja names our proxy classes in its messages; say what they stand for instead."""
    for raw, readable in _OBJECT_NAMES.items():
        message = message.replace(raw, readable)
    return message


def tpl_list(value: str | list[str] | None, context: Mapping[str, Any]) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        rendered = tpl(str(item), context) or ""
        out.extend(part.strip() for part in rendered.split(",") if part.strip())
    return out


def pick_variant(variants: list[Variant], flow: str, step: str, record_id: str) -> Variant:
    """A weighted pick by sha256 of flow, step and record id: the same record always gets the same variant."""
    digest = hashlib.sha256(f"{flow}:{step}:{record_id}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(v.weight for v in variants)
    point = fraction * total
    acc = 0.0
    for variant in variants:
        acc += variant.weight
        if point < acc:
            return variant
    return variants[-1]


def find_template(bundle: TypedBundle, name: str, channel: str) -> Template:
    template = bundle.templates.get(name)
    if template is None:
        raise StepError(f"unknown template '{name}'", "template")
    if template.channel != channel:
        raise StepError(f"template '{name}' is a {template.channel} template, not {channel}", "template")
    return template


def locale_of(record: Record | None, template: Template) -> str | None:
    """The template locale matching the record's `locale` field (exact, then language), or None."""
    if record is None or not template.locales:
        return None
    wanted = record.fields.get("locale")
    if not isinstance(wanted, str) or not wanted:
        return None
    if wanted in template.locales:
        return wanted
    lowered = {k.lower().replace("_", "-"): k for k in template.locales}
    norm = wanted.lower().replace("_", "-")
    if norm in lowered:
        return lowered[norm]
    language = norm.split("-")[0]
    return lowered.get(language)


def email_content(
    bundle: TypedBundle, step: SendEmail, *, flow: str, record: Record | None, context: Mapping[str, Any]
) -> dict[str, Any]:
    """subject/html/text/template/variant/locale of an email step, rendered."""
    template_name: str | None = step.template
    variant: str | None = None
    if step.variants:
        chosen = pick_variant(step.variants, flow, step.id or "", record.id if record else "")
        template_name = variant = chosen.template
    if template_name is None:
        return {
            "subject": tpl(step.subject, context),
            "html": tpl(step.html, context, html=True),
            "text": tpl(step.text, context),
            "template": None,
            "variant": None,
            "locale": None,
        }
    template = find_template(bundle, template_name, "email")
    locale = locale_of(record, template)
    subject, html, text = template.subject, template.html, template.text
    if locale is not None:
        loc = template.locales[locale]
        subject = loc.subject if loc.subject is not None else subject
        html = loc.html if loc.html is not None else html
        text = loc.text if loc.text is not None else text
    return {
        "subject": tpl(subject, context),
        "html": tpl(html, context, html=True),
        "text": tpl(text, context),
        "template": template_name,
        "variant": variant,
        "locale": locale,
    }


def sms_body(bundle: TypedBundle, template_name: str | None, body: str | None, *, record: Record | None,
             context: Mapping[str, Any]) -> tuple[str, str | None]:
    if template_name is None:
        return tpl(body, context) or "", None
    template = find_template(bundle, template_name, "sms")
    locale = locale_of(record, template)
    source = template.body if template.body is not None else template.text
    if locale is not None:
        loc = template.locales[locale]
        source = loc.body if loc.body is not None else (loc.text if loc.text is not None else source)
    return tpl(source, context) or "", locale


def whatsapp_payload(bundle: TypedBundle, template_name: str, context: Mapping[str, Any]) -> dict[str, Any]:
    template = find_template(bundle, template_name, "whatsapp")
    spec = template.whatsapp
    if spec is None:
        raise StepError(f"template '{template_name}' has no `whatsapp` section", "template")
    return {
        "name": spec.name,
        "language": spec.language,
        "body_params": [tpl(p, context) or "" for p in spec.body_params],
        "header_params": [tpl(p, context) or "" for p in spec.header_params],
    }


def first_line(text: str | None, limit: int = 100) -> str | None:
    """The first non-empty line of a message body (HTML tags stripped), for traces."""
    if not text:
        return None
    import re

    plain = re.sub(r"<[^>]+>", " ", text)
    for line in plain.splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return None
