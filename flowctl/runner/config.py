"""runner.yaml (SPEC §9): every key optional; no file at all is a working runner.

Secrets are never in this file: it names environment variables
(`password_env: SMTP_PASSWORD`) and the runner reads them when it sends.
A bad file is refused at start with `runner.yaml:LINE:COL: what is wrong`.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, ValidationError, field_validator

from flowctl.errors import ConfigError
from flowctl.lang.durations import Duration
from flowctl.resources.models import DurationStr, StrictModel
from flowctl.store.sqlite import Durability

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_DATA_DIR = ".flowctl"
DEFAULT_MAX_REQUEST_BYTES = 1 << 20  # 1 MiB


def _seconds(value: str) -> float:
    return float(Duration.parse(value).nominal_seconds())


class SmtpConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = Field(False, description="implicit TLS (usually port 465)")
    username_env: str | None = None
    password_env: str | None = None
    verify_tls: bool = Field(
        True, description="verify the server certificate (turn off only for test servers)"
    )
    timeout: DurationStr = "30s"


class EmailConfig(StrictModel):
    smtp: SmtpConfig | None = Field(None, description="without it, email goes to the file outbox")
    from_: str = Field("flowctl <noreply@localhost>", alias="from")


class SmsConfig(StrictModel):
    url: str
    account_env: str | None = None
    token_env: str | None = None
    from_: str | None = Field(None, alias="from")
    timeout: DurationStr = "15s"


class WhatsappConfig(StrictModel):
    url: str = Field(description="the messages endpoint; `{phone_number_id}` in it is replaced")
    token_env: str | None = None
    phone_number_id: str | None = None
    timeout: DurationStr = "15s"


class CrmWebhookConfig(StrictModel):
    url: str = Field(description="receives every record change a flow makes (POST JSON)")
    secret_env: str | None = Field(
        None, description="HMAC-SHA256 key: the body's signature goes in X-Flowctl-Signature"
    )
    timeout: DurationStr = "15s"
    attempts: int = Field(8, ge=1, le=100, description="tries before a change is marked failed")


class RunnerConfig(StrictModel):
    data_dir: str = DEFAULT_DATA_DIR
    db: str | None = Field(None, description="the SQLite file (default <data_dir>/runner.db)")
    retention: DurationStr = "90d"
    email: EmailConfig = Field(default_factory=EmailConfig)
    sms: SmsConfig | None = None
    whatsapp: WhatsappConfig | None = None
    crm_webhook: CrmWebhookConfig | None = None
    webhook_timeout: DurationStr = Field(
        "30s", description="default timeout of webhook steps without `timeout`"
    )
    max_request_bytes: int = Field(DEFAULT_MAX_REQUEST_BYTES, ge=1024)
    outbox_concurrency: int = Field(8, ge=1, le=64, description="messages delivered in parallel")
    group_commit_max: int = Field(256, ge=1, le=10_000, description="engine calls committed together at most")
    durability: Durability = Field(
        "full",
        description=(
            "full: an answered event is on disk (one fsync per commit) and survives a crash of the runner, "
            "of the OS or a power loss. normal: it survives a crash of the runner (kill -9, OOM) and the "
            "database never corrupts, but an OS crash or power loss may roll back the last commits, "
            "events the runner already answered; no fsync per commit, so a client that waits for each "
            "answer gets more per second"
        ),
    )

    @field_validator("retention")
    @classmethod
    def _positive_retention(cls, value: str) -> str:
        if Duration.parse(value).nominal_seconds() <= 0:
            raise ValueError("retention must be positive, e.g. 90d")
        return value

    # ------------------------------------------------------------- resolved paths
    def data_path(self, base: Path) -> Path:
        return (base / self.data_dir).resolve()

    def db_path(self, base: Path) -> Path:
        if self.db:
            return (base / self.db).resolve()
        return self.data_path(base) / "runner.db"

    @property
    def retention_seconds(self) -> float:
        return _seconds(self.retention)

    @property
    def webhook_timeout_seconds(self) -> float:
        return _seconds(self.webhook_timeout)

    def missing_env(self, environment: dict[str, str] | None = None) -> list[str]:
        """Environment variables runner.yaml names that are not set (reported at start, by name only)."""
        env = os.environ if environment is None else environment
        names: list[str | None] = []
        if self.email.smtp:
            names += [self.email.smtp.username_env, self.email.smtp.password_env]
        if self.sms:
            names += [self.sms.account_env, self.sms.token_env]
        if self.whatsapp:
            names.append(self.whatsapp.token_env)
        if self.crm_webhook:
            names.append(self.crm_webhook.secret_env)
        return [n for n in names if n and n not in env]


def load_runner_config(path: Path | None) -> RunnerConfig:
    """Read runner.yaml; None (no --config and no ./runner.yaml) gives the defaults."""
    if path is None:
        return RunnerConfig()
    from flowctl.resources.project import Source, validation_diagnostics
    from flowctl.resources.yamlload import YamlLoadError, load_file

    if not path.is_file():
        raise ConfigError(
            f"runner config not found: {path}", hint="pass --config PATH, or omit it to use the defaults"
        )
    try:
        doc = load_file(path)
    except YamlLoadError as exc:
        raise ConfigError(
            f"{path}:{exc.position.line}:{exc.position.column}: {exc.message}", hint=exc.hint
        ) from None
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1:1: runner.yaml must be a mapping of settings")
    try:
        return RunnerConfig.model_validate(data)
    except ValidationError as exc:
        diags = validation_diagnostics(exc, data, Source(str(path), doc.positions), RunnerConfig)
        first = diags[0]
        more = f" (and {len(diags) - 1} more)" if len(diags) > 1 else ""
        raise ConfigError(f"{first.location}: {first.summary}{more}", hint=first.hint) from None
