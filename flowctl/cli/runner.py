"""`flowctl runner serve` and `flowctl runner token create|list|revoke`."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flowctl.cli.common import console, err_console, handle_errors, print_json
from flowctl.errors import ConfigError, FlowctlError
from flowctl.runner.auth import ROLES, check_role, create_token
from flowctl.runner.config import DEFAULT_HOST, DEFAULT_PORT, RunnerConfig, load_runner_config

if TYPE_CHECKING:
    from flowctl.store.sqlite import SqliteStore

runner_app = typer.Typer(
    name="runner",
    help=(
        "Run the flow runner daemon and manage its API tokens.\n\n"
        "Example:\n\n    flowctl runner serve --port 8787\n\n    flowctl runner token create --role operator"
    ),
    no_args_is_help=True,
)
token_app = typer.Typer(
    name="token",
    help="API tokens (viewer < operator < admin).\n\nExample:\n\n    flowctl runner token create --role viewer",
    no_args_is_help=True,
)
runner_app.add_typer(token_app)

DbOpt = typer.Option(None, "--db", help="The SQLite file (default: .flowctl/runner.db, or runner.yaml `db`).")
ConfigOpt = typer.Option(None, "--config", "-c", help="runner.yaml (default: ./runner.yaml when it exists).")


# The start banner's line for runner.yaml `durability` (docs/runner.md, Durability).
DURABILITY_MEANING = {
    "full": "an answered event is on disk (synchronous=FULL), it survives a power loss",
    "normal": (
        "an answered event survives a crash of the runner (synchronous=NORMAL); "
        "an OS crash or power loss may roll back the last ones"
    ),
}


def _config(path: Path | None) -> tuple[RunnerConfig, Path | None]:
    if path is None and Path("runner.yaml").is_file():
        path = Path("runner.yaml")
    return load_runner_config(path), path


def _check_port_free(host: str, port: int) -> None:
    """Fail before starting anything when the address is taken (uvicorn would find out only after startup)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise FlowctlError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="another runner may be running there; stop it or pass --port",
            ) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@runner_app.command("serve")
@handle_errors
def serve(
    db: Path | None = DbOpt,
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", "-p", min=0, max=65535, help="Port to listen on."),
    config: Path | None = ConfigOpt,
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Run the runner: the HTTP API, the timer loop and the outbox, on SQLite. Stops cleanly on SIGTERM.

    With no configuration everything lives under ./.flowctl/: runner.db (SQLite, WAL), outbox/ (one
    file per message) and admin.token (created on the first start, mode 0600).

    Example:

        flowctl runner serve

        flowctl runner serve --config runner.yaml --port 9000
    """
    from flowctl.runner.daemon import Runner, StartupReport, configure_logging
    from flowctl.runner.daemon import serve as run_server

    level = log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"unknown log level '{log_level}'", hint="use debug, info, warning or error")
    cfg, cfg_path = _config(config)
    missing = cfg.missing_env()
    if missing:
        raise ConfigError(
            f"runner.yaml names environment variables that are not set: {', '.join(missing)}",
            hint="export them before starting the runner (their values are never written anywhere)",
        )
    _check_port_free(host, port)
    configure_logging(level)
    runner = Runner(cfg, base_dir=Path.cwd(), db_path=db)
    url = f"http://{host}:{port}"

    def ready(report: StartupReport) -> None:
        err_console.print(f"[bold]flowctl runner[/] listening on {url}", markup=True)
        err_console.print(f"  database     {report.db_path} (SQLite, WAL)")
        err_console.print(f"  durability   {cfg.durability}: {DURABILITY_MEANING[cfg.durability]}")
        if cfg_path is not None:
            err_console.print(f"  config       {cfg_path}")
        if report.admin_token_file is not None:
            err_console.print(
                f"  first start: admin token written to {report.admin_token_file} (mode 0600); "
                "`flowctl` commands run here find it"
            )
        err_console.print(f"  bundle       version {report.bundle_version or 'none (apply one)'}")
        for channel, where in sorted(report.channels.items()):
            err_console.print(f"  {channel:<12} {where}")
        if report.recovered_messages:
            err_console.print(
                f"  re-sending {report.recovered_messages} message(s) interrupted by the last stop"
            )
        if not _is_loopback(host):
            err_console.print(
                "[yellow]warning:[/] listening beyond loopback over plain HTTP; put TLS in front of the runner",
                markup=True,
            )

    run_server(runner, host=host, port=port, on_ready=ready, log_level=log_level.lower())
    err_console.print("flowctl runner stopped cleanly")


def _open_store(db: Path | None, config: Path | None) -> SqliteStore:
    from flowctl.store.sqlite import SqliteStore

    cfg, _ = _config(config)
    path = db.resolve() if db else cfg.db_path(Path.cwd())
    return SqliteStore.open(path)


@token_app.command("create")
@handle_errors
def token_create(
    role: str = typer.Option(..., "--role", "-r", help="viewer, operator or admin."),
    name: str | None = typer.Option(None, "--name", help="A label for the token (shown in the audit log)."),
    db: Path | None = DbOpt,
    config: Path | None = ConfigOpt,
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Create an API token and print it once (only its sha256 is stored).

    Roles: viewer reads; operator also sends events, completes tasks, starts, retries and cancels runs;
    admin also applies and rolls back bundles.

    Example:

        flowctl runner token create --role operator --name crm-integration
    """
    checked = check_role(role)
    store = _open_store(db, config)
    try:
        token_id, token = create_token(store, checked, name=name, now=dt.datetime.now(dt.UTC))
    finally:
        store.close()
    if fmt == "json":
        print_json({"id": token_id, "role": checked, "name": name, "token": token})
        return
    console.print(token)
    err_console.print(f"created {checked} token {token_id}; it is shown only now, store it somewhere safe")


@token_app.command("list")
@handle_errors
def token_list(
    db: Path | None = DbOpt,
    config: Path | None = ConfigOpt,
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """List tokens (ids, names, roles; never the tokens).

    Example:

        flowctl runner token list
    """
    store = _open_store(db, config)
    try:
        tokens = store.tokens()
    finally:
        store.close()
    rows = [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "created_at": t.created_at.isoformat(),
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in tokens
    ]
    if fmt == "json":
        print_json({"tokens": rows})
        return
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        console.print(f"{r['id']}  {r['role']:<8}  {state:<8}  {r['name']}")


@token_app.command("revoke")
@handle_errors
def token_revoke(
    token_id: str = typer.Argument(..., help="The token's id (from `token list`)."),
    db: Path | None = DbOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Revoke a token; requests with it get 401 from then on.

    Example:

        flowctl runner token revoke tok_3f2a9c1b0d4e
    """
    store = _open_store(db, config)
    try:
        now = dt.datetime.now(dt.UTC)
        if not store.revoke_token(token_id, now):
            raise FlowctlError(f"no active token '{token_id}'", hint="see `flowctl runner token list`")
        store.audit("token.revoke", now=now, target=token_id)
    finally:
        store.close()
    console.print(f"revoked {token_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(runner_app)


__all__ = ["ROLES", "register"]
