"""Secrets in templates without storing or logging them.

`{{ secrets.NAME }}` renders to a placeholder (`⟦secret:NAME⟧`), never to the
value: the outbox row, the trace and the step output keep the placeholder.
The shell that delivers a message calls `reveal(value, environment)` just
before it leaves the process (the runner with its environment, the
simulator with fake values), so the secret exists only in that call.

The engine still checks the name: a secret the shell does not provide is a
template error at run time, like any undefined variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

_PLACEHOLDER_RE = re.compile(r"⟦secret:([A-Za-z_][A-Za-z0-9_]*)⟧")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def placeholder(name: str) -> str:
    return f"⟦secret:{name}⟧"


class SecretNames(Mapping[str, str]):
    """The `secrets` template variable: known names map to their placeholder."""

    def __init__(self, names: set[str] | frozenset[str], *, allow_any: bool = False) -> None:
        self._names = frozenset(names)
        # The simulator accepts every name (it substitutes fake values); the runner only its environment's.
        self._allow_any = allow_any

    def __getitem__(self, key: str) -> str:
        if key not in self._names and not (self._allow_any and _NAME_RE.match(key)):
            raise KeyError(key)
        return placeholder(key)

    def __getattr__(self, key: str) -> str:
        # Jinja tries attributes first; unknown names must stay undefined.
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)


def reveal(value: Any, environment: Mapping[str, str]) -> Any:
    """Replace every placeholder inside a JSON-like value with the secret from `environment`.

    An unknown name is left as the placeholder (the engine already refused
    names it was not given, so this only happens when the shell's environment
    changed in between).
    """
    if isinstance(value, str):
        if "⟦secret:" not in value:
            return value
        return _PLACEHOLDER_RE.sub(lambda m: environment.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [reveal(v, environment) for v in value]
    if isinstance(value, dict):
        return {k: reveal(v, environment) for k, v in value.items()}
    return value


def mentions_secret(value: Any) -> bool:
    if isinstance(value, str):
        return "⟦secret:" in value
    if isinstance(value, list):
        return any(mentions_secret(v) for v in value)
    if isinstance(value, dict):
        return any(mentions_secret(v) for v in value.values())
    return False
