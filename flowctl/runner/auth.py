"""Bearer tokens with roles: viewer < operator < admin.

Only a token's sha256 is stored; the token itself is shown once, when it is
created. A token reads `fct_<role initial>_<43 url-safe chars>`: the prefix
makes a leaked token easy to recognise in logs and secret scanners, and the
256 random bits make guessing pointless (so a plain hash, not a slow KDF, is
the right storage).

On its first start the runner creates an admin token and writes it to
`<data_dir>/admin.token` with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flowctl.errors import FlowctlError
from flowctl.store.sqlite import SqliteStore, hash_token

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
ADMIN_TOKEN_FILE = "admin.token"


class AuthError(FlowctlError):
    """A request without a valid token (401) or with a role too weak for it (403)."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's id, name and role (never the token)."""

    token_id: str
    name: str
    role: Role

    def allows(self, needed: Role) -> bool:
        return RANK[self.role] >= RANK[needed]


def check_role(role: str) -> Role:
    if role not in RANK:
        raise FlowctlError(f"unknown role '{role}'", hint="use viewer, operator or admin")
    return role


def new_token(role: Role) -> str:
    return f"fct_{role[0]}_{secrets.token_urlsafe(32)}"


def create_token(
    store: SqliteStore, role: str, *, name: str | None = None, now: dt.datetime | None = None
) -> tuple[str, str]:
    """Store a new token's hash; return (token id, token). The token is not kept anywhere."""
    checked = check_role(role)
    now = now or dt.datetime.now(dt.UTC)
    token = new_token(checked)
    token_id = "tok_" + secrets.token_hex(6)
    store.add_token(token_id, name or f"{checked}-{now:%Y%m%d%H%M%S}", checked, hash_token(token), now)
    store.audit("token.create", now=now, target=token_id, detail={"role": checked, "name": name})
    return token_id, token


class TokenCache:
    """Token hash → principal for a few seconds, so a busy API does not look every request up.

    A revoked token stops working within `ttl` seconds; unknown tokens are not cached.
    """

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> Principal | None:
        with self._lock:
            hit = self._entries.get(token_hash)
            if hit is None or hit[1] < time.monotonic():
                return None
            return hit[0]

    def put(self, token_hash: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[token_hash] = (principal, time.monotonic() + self.ttl)


def authenticate(
    store: SqliteStore, authorization: str | None, *, cache: TokenCache | None = None
) -> Principal:
    """The principal for an `Authorization: Bearer …` header. Raises AuthError(401)."""
    if not authorization:
        raise AuthError("missing bearer token", status=401, hint="send `Authorization: Bearer <token>`")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("the Authorization header must be `Bearer <token>`", status=401)
    token_hash = hash_token(token)
    if cache is not None:
        hit = cache.get(token_hash)
        if hit is not None:
            return hit
    info = store.token_by_hash(token_hash)
    if info is None or info.revoked_at is not None:
        raise AuthError(
            "invalid or revoked token", status=401, hint="create one with `flowctl runner token create`"
        )
    principal = Principal(token_id=info.id, name=info.name, role=check_role(info.role))
    if cache is not None:
        cache.put(token_hash, principal)
    return principal


def authorize(principal: Principal, needed: Role) -> None:
    if not principal.allows(needed):
        raise AuthError(
            f"this needs the {needed} role; the token '{principal.name}' is {principal.role}",
            status=403,
            hint=f"use a token with role {needed} or higher",
        )


def ensure_admin_token(store: SqliteStore, data_dir: Path) -> Path | None:
    """First start: create an admin token and write it to `<data_dir>/admin.token` (0600).

    Returns the file's path when a token was created, None when tokens exist already.
    """
    if store.count_tokens():
        return None
    _, token = create_token(store, "admin", name="admin (first start)")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_TOKEN_FILE
    # Created with 0600 from the start: never world-readable, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return path
