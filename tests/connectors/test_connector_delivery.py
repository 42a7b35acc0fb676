"""Connectors against real servers on 127.0.0.1: SMTP (aiosmtpd), HTTP (http.server)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowctl.connectors.connector import deliver
from flowctl.connectors.email_message import message_id_for
from flowctl.connectors.errors import category, classify_exception, is_retryable
from flowctl.connectors.file_outbox import FileOutbox, file_name
from flowctl.connectors.sms import SmsConnector, SmsSettings
from flowctl.connectors.smtp import SmtpConnector, SmtpSettings
from flowctl.connectors.webhook import WebhookConnector
from flowctl.connectors.whatsapp import WhatsappConnector, WhatsappSettings
from flowctl.engine.secrets import placeholder
from flowctl.engine.state import Message

from .provider_fakes import FakeHttp, FakeSmtp, Reply, free_port

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def message(channel: str = "email", key: str = "run-1:welcome:1", **kw: Any) -> Message:
    base: dict[str, Any] = {
        "id": "msg-1",
        "idempotency_key": key,
        "channel": channel,
        "run_id": "run-1",
        "flow": "welcome",
        "step": "welcome",
        "created_at": NOW,
    }
    if channel == "email":
        base.update(
            to=["alice@example.com"], subject="Welcome, Alice", text="Hi Alice", html="<p>Hi Alice</p>"
        )
    base.update(kw)
    return Message(**base)


# --------------------------------------------------------------------------- SMTP


def test_smtp_sends_one_email_with_a_stable_message_id(smtp_server: FakeSmtp) -> None:
    connector = SmtpConnector(SmtpSettings(port=smtp_server.port, default_from="Acme <noreply@acme.example>"))
    result = deliver(connector, message(cc=["bob@example.com"], bcc=["audit@example.com"]))
    assert result.ok, result
    [mail] = smtp_server.wait_for(1)
    assert mail.message_id == "<run-1.welcome.1@flowctl>"
    assert result.provider_id == mail.message_id
    assert mail.message["Subject"] == "Welcome, Alice"
    assert mail.message["From"] == "Acme <noreply@acme.example>"
    assert "audit@example.com" in mail.rcpt_tos and "Bcc" not in mail.message
    assert sorted(mail.rcpt_tos) == ["alice@example.com", "audit@example.com", "bob@example.com"]
    body = mail.message.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Hi Alice"
    html = mail.message.get_body(("html",))
    assert html is not None and "<p>Hi Alice</p>" in html.get_content()


def test_smtp_resend_keeps_the_message_id(smtp_server: FakeSmtp) -> None:
    connector = SmtpConnector(SmtpSettings(port=smtp_server.port))
    assert deliver(connector, message()).ok
    assert deliver(connector, message()).ok
    mails = smtp_server.wait_for(2)
    assert len(mails) == 2 and len(smtp_server.unique()) == 1


def test_smtp_starttls_and_login_with_credentials_from_the_environment(tls_dir: Path) -> None:
    server = FakeSmtp(tls_dir=tls_dir, require_starttls=True, user=("mailer", "s3cret")).start()
    try:
        settings = SmtpSettings(
            port=server.port,
            starttls=True,
            username_env="SMTP_USER",
            password_env="SMTP_PASSWORD",
            verify_tls=False,
        )
        env = {"SMTP_USER": "mailer", "SMTP_PASSWORD": "s3cret"}
        assert deliver(SmtpConnector(settings, environment=env), message()).ok
        server.wait_for(1)
        assert server.logins == ["mailer"]
        wrong = deliver(
            SmtpConnector(settings, environment={**env, "SMTP_PASSWORD": "nope"}), message(key="r:s:2")
        )
        assert not wrong.ok and wrong.error_class == "rejected"
        assert "s3cret" not in (wrong.error or "") and "nope" not in (wrong.error or "")
        missing = deliver(SmtpConnector(settings, environment={}), message(key="r:s:3"))
        assert missing.error_class == "config" and "SMTP_USER" in (missing.error or "")
    finally:
        server.stop()


def test_smtp_refused_recipient_is_rejected_and_not_retried(smtp_server: FakeSmtp) -> None:
    smtp_server.refuse.add("alice@example.com")
    result = deliver(SmtpConnector(SmtpSettings(port=smtp_server.port)), message())
    assert not result.ok and result.error_class == "rejected" and not is_retryable(result.error_class)


def test_smtp_temporary_failure_is_retryable(smtp_server: FakeSmtp) -> None:
    smtp_server.temporary_failures = 1
    connector = SmtpConnector(SmtpSettings(port=smtp_server.port))
    first = deliver(connector, message())
    assert not first.ok and first.error_class == "SMTP 451" and is_retryable(first.error_class)
    assert deliver(connector, message()).ok


def test_smtp_unreachable_is_a_connection_error() -> None:
    result = deliver(SmtpConnector(SmtpSettings(port=free_port(), timeout=2)), message())
    assert (
        not result.ok and result.error_class == "connection" and category(result.error_class) == "connection"
    )


def test_smtp_reveals_secrets_only_on_the_wire(smtp_server: FakeSmtp) -> None:
    msg = message(text=f"code {placeholder('PROMO')}")
    assert deliver(SmtpConnector(SmtpSettings(port=smtp_server.port), environment={"PROMO": "XYZ"}), msg).ok
    [mail] = smtp_server.wait_for(1)
    assert "code XYZ" in mail.raw.decode()
    assert placeholder("PROMO") in (msg.text or "")  # the stored row keeps the placeholder


# --------------------------------------------------------------------------- HTTP providers


def test_sms_posts_a_twilio_style_form_with_basic_auth_and_idempotency_key(
    http_server: FakeHttp, http_client: httpx.Client
) -> None:
    http_server.script("/sms", [Reply(201, {"sid": "SM123"})])
    settings = SmsSettings(
        url=f"{http_server.url}/sms", account_env="SMS_ACCOUNT", token_env="SMS_TOKEN", sender="+15550100"
    )
    connector = SmsConnector(settings, http_client, environment={"SMS_ACCOUNT": "AC1", "SMS_TOKEN": "tok"})
    result = deliver(connector, message("sms", to=["+15550199"], text="Your code is 1234"))
    assert result.ok and result.provider_id == "SM123"
    [req] = http_server.to("/sms")
    assert req.form() == {"To": "+15550199", "From": "+15550100", "Body": "Your code is 1234"}
    assert req.key == "run-1:welcome:1"
    assert req.headers["authorization"].startswith("Basic ")


def test_whatsapp_posts_a_cloud_api_template(http_server: FakeHttp, http_client: httpx.Client) -> None:
    http_server.script("/v1/1234/messages", [Reply(200, {"messages": [{"id": "wamid.1"}]})])
    settings = WhatsappSettings(
        url=f"{http_server.url}/v1/{{phone_number_id}}/messages", token_env="WA_TOKEN", phone_number_id="1234"
    )
    connector = WhatsappConnector(settings, http_client, environment={"WA_TOKEN": "wa-secret"})
    wa = {"name": "order_confirmation", "language": "en_US", "body_params": ["Alice", "A-17"]}
    result = deliver(connector, message("whatsapp", to=["+15550199"], whatsapp=wa))
    assert result.ok and result.provider_id == "wamid.1"
    [req] = http_server.to("/v1/1234/messages")
    assert req.headers["authorization"] == "Bearer wa-secret"
    assert req.json() == {
        "messaging_product": "whatsapp",
        "to": "+15550199",
        "type": "template",
        "template": {
            "name": "order_confirmation",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Alice"}, {"type": "text", "text": "A-17"}],
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("status", "error_class", "retry"),
    [
        (400, "HTTP 400", False),
        (404, "HTTP 404", False),
        (408, "HTTP 408", True),
        (429, "HTTP 429", True),
        (500, "HTTP 500", True),
        (503, "HTTP 503", True),
    ],
)
def test_webhook_status_classes(
    http_server: FakeHttp, http_client: httpx.Client, status: int, error_class: str, retry: bool
) -> None:
    http_server.script("/hook", [Reply(status, {"error": "nope"})])
    result = deliver(
        WebhookConnector(http_client), message("webhook", url=f"{http_server.url}/hook", body={"a": 1})
    )
    assert not result.ok and result.error_class == error_class and is_retryable(result.error_class) is retry
    assert category(error_class) == ("timeout" if status == 408 else "4xx" if status < 500 else "5xx")


def test_webhook_sends_json_headers_and_returns_the_answer(
    http_server: FakeHttp, http_client: httpx.Client
) -> None:
    http_server.script("/erp", [Reply(201, {"erp_id": 42})])
    msg = message(
        "webhook",
        url=f"{http_server.url}/erp",
        method="PUT",
        body={"id": "c-1", "key": placeholder("ERP_KEY")},
        headers={"X-Api-Key": placeholder("ERP_KEY")},
        expect_status=[201],
    )
    result = deliver(WebhookConnector(http_client, environment={"ERP_KEY": "k-9"}), msg)
    assert result.ok and result.status == 201 and result.json_ == {"erp_id": 42}
    [req] = http_server.to("/erp")
    assert (
        req.method == "PUT"
        and req.json() == {"id": "c-1", "key": "k-9"}
        and req.headers["x-api-key"] == "k-9"
    )
    assert req.key == "run-1:welcome:1"


def test_webhook_unexpected_status_fails_even_when_2xx(
    http_server: FakeHttp, http_client: httpx.Client
) -> None:
    msg = message("webhook", url=f"{http_server.url}/x", expect_status=[201])
    result = deliver(WebhookConnector(http_client), msg)
    assert not result.ok and result.error_class == "HTTP 200"


def test_a_hanging_webhook_is_cut_by_its_timeout(http_server: FakeHttp, http_client: httpx.Client) -> None:
    http_server.script("/slow", [Reply(200, {}, delay=3)])
    started = time.monotonic()
    result = deliver(
        WebhookConnector(http_client), message("webhook", url=f"{http_server.url}/slow", timeout_seconds=0.3)
    )
    assert time.monotonic() - started < 2
    assert not result.ok and result.error_class == "timeout" and is_retryable("timeout")


def test_unreachable_webhook_is_a_connection_error(http_client: httpx.Client) -> None:
    result = deliver(
        WebhookConnector(http_client), message("webhook", url=f"http://127.0.0.1:{free_port()}/x")
    )
    assert not result.ok and result.error_class == "connection"


def test_webhook_rejects_non_http_urls(http_client: httpx.Client) -> None:
    result = deliver(WebhookConnector(http_client), message("webhook", url="file:///etc/passwd"))
    assert not result.ok and result.error_class == "rejected"


# --------------------------------------------------------------------------- file outbox


def test_file_outbox_writes_one_eml_named_by_the_key_and_a_resend_is_a_no_op(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "outbox", default_from="noreply@acme.example")
    msg = message()
    assert outbox.send(msg).ok
    path = tmp_path / "outbox" / "run-1.welcome.1.eml"
    assert path.is_file() and file_name(msg) == path.name
    first = path.read_bytes()
    parsed = email.message_from_bytes(first, policy=email.policy.default)
    assert parsed["Message-ID"] == message_id_for(msg.idempotency_key) and parsed["To"] == "alice@example.com"
    assert outbox.send(msg.model_copy(update={"subject": "changed"})).ok
    assert path.read_bytes() == first
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["run-1.welcome.1.eml"]  # no temp files left


def test_file_outbox_writes_json_for_other_channels(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path, environment={"T": "secret-value"})
    sms = message(
        "sms",
        key="run-2:nudge:1",
        to=["+1555"],
        text=f"hi {placeholder('T')}",
        object="contact",
        record_id="c-1",
    )
    assert outbox.send(sms).ok
    doc = json.loads((tmp_path / "run-2.nudge.1.json").read_text())
    assert doc["channel"] == "sms" and doc["to"] == ["+1555"] and doc["text"] == "hi secret-value"
    assert doc["record"] == "contact/c-1"


def test_classify_unknown_exception_is_other() -> None:
    assert classify_exception(RuntimeError("boom")) == ("other", "RuntimeError: boom")
    assert category("weird") == "other" and is_retryable("other")
