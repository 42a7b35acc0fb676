""" "Did you mean …?" suggestions for misspelt names, keys, fields and operators."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Names people reach for from other tools (SQL, Salesforce, JavaScript) that
# are too far from ours for difflib to connect.
OPERATOR_ALIASES = {
    "=": "eq", "==": "eq", "equals": "eq", "equal": "eq", "is": "eq",
    "!=": "ne", "<>": "ne", "not_equals": "ne", "not_equal": "ne", "neq": "ne", "is_not": "ne",
    ">": "gt", "greater_than": "gt", ">=": "gte", "ge": "gte", "greater_or_equal": "gte",
    "<": "lt", "less_than": "lt", "<=": "lte", "le": "lte", "less_or_equal": "lte",
    "not_in_list": "not_in", "nin": "not_in", "includes": "contains", "has": "contains",
    "exists": "is_set", "present": "is_set", "is_not_empty": "is_set", "not_empty": "is_set",
    "is_null": "is_empty", "blank": "is_empty", "missing": "is_empty",
    "regex": "matches", "like": "matches", "startswith": "starts_with", "endswith": "ends_with",
    "older_than": "more_than_ago", "in_last": "within_last",
}  # fmt: skip


def closest(word: object, options: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The option closest to `word`, or None when nothing is close enough to suggest."""
    text = str(word)
    choices = [o for o in options if isinstance(o, str)]
    if text in choices:
        return None
    lowered = {c.lower(): c for c in choices}
    if text.lower() in lowered:
        return lowered[text.lower()]
    found = difflib.get_close_matches(text, choices, n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: object, options: Iterable[str], *, alias: dict[str, str] | None = None) -> str | None:
    """A hint such as "did you mean 'first_name'?", or None."""
    choices = list(options)
    if alias and str(word) in alias and alias[str(word)] in choices:
        return f"did you mean '{alias[str(word)]}'?"
    best = closest(word, choices)
    return f"did you mean '{best}'?" if best else None


def one_of(options: Iterable[str], limit: int = 12) -> str:
    """`a, b, c` (or the first `limit` and a count), for hints listing what is allowed."""
    items = sorted(set(options))
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … ({len(items) - limit} more)"
