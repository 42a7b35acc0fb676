"""Durations: `30s`, `15m`, `2h`, `3d`, `1w`, negative offsets `-7d`.

`s`, `m` and `h` are exact elapsed time. `d` and `w` are calendar days in a
time zone: adding `1d` at 12:00 the day before a daylight-saving change lands
on 12:00 local time the next day (23 or 25 hours later), while `24h` does not.
A local time that does not exist (spring-forward gap) moves forward by the gap;
a repeated local time (fall-back night) means its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flowctl.errors import DurationError

Unit = Literal["s", "m", "h", "d", "w"]

DURATION_PATTERN = r"^-?\d+(s|m|h|d|w)$"
_RE = re.compile(r"^\s*(-?)(\d+)\s*(s|m|h|d|w)\s*$")
_EXACT_SECONDS = {"s": 1, "m": 60, "h": 3600}
UTC = dt.UTC


@dataclass(frozen=True, order=True)
class Duration:
    """A parsed duration. `amount` carries the sign."""

    amount: int
    unit: Unit

    @classmethod
    def parse(cls, text: str | int) -> Duration:
        if isinstance(text, bool) or not isinstance(text, str | int):
            raise DurationError(f"not a duration: {text!r}", hint="write a number and a unit: 30s, 15m, 2h, 3d, 1w")
        if isinstance(text, int):
            # A bare number is ambiguous; make the user say which unit they meant.
            raise DurationError(
                f"duration {text} has no unit", hint=f"write {text}s, {text}m, {text}h, {text}d or {text}w"
            )
        m = _RE.match(text)
        if not m:
            raise DurationError(
                f"not a duration: '{text}'", hint="write a number and a unit: 30s, 15m, 2h, 3d, 1w (or -7d)"
            )
        sign, number, unit = m.groups()
        amount = int(number) * (-1 if sign else 1)
        return cls(amount, unit)  # type: ignore[arg-type]

    @property
    def is_calendar(self) -> bool:
        """True for `d` and `w`: calendar days in a time zone rather than elapsed seconds."""
        return self.unit in ("d", "w")

    @property
    def days(self) -> int:
        return self.amount * (7 if self.unit == "w" else 1)

    def nominal_seconds(self) -> int:
        """Length assuming 24-hour days. Exact for s/m/h; for d/w only a size, e.g. to compare or to count business time."""
        if self.is_calendar:
            return self.days * 86400
        return self.amount * _EXACT_SECONDS[self.unit]

    def as_timedelta(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.nominal_seconds())

    def add_to(self, instant: dt.datetime, tz: str | dt.tzinfo = "UTC") -> dt.datetime:
        """`instant` + this duration; calendar units are counted in `tz`. Returns an aware UTC datetime."""
        if instant.tzinfo is None:
            raise ValueError("add_to needs an aware datetime")
        if not self.is_calendar:
            return (instant + self.as_timedelta()).astimezone(UTC)
        zone = zone_of(tz)
        local = instant.astimezone(zone)
        wall = local.replace(tzinfo=None) + dt.timedelta(days=self.days)
        return localize(wall, zone)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(text: str | int) -> Duration:
    return Duration.parse(text)


def is_duration(text: object) -> bool:
    return isinstance(text, str) and _RE.match(text) is not None


def zone_of(tz: str | dt.tzinfo) -> dt.tzinfo:
    if isinstance(tz, dt.tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise DurationError(f"unknown time zone '{tz}'", hint="use an IANA name such as Europe/Berlin or UTC") from None


def is_timezone(name: object) -> bool:
    if not isinstance(name, str) or not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def localize(wall: dt.datetime, tz: str | dt.tzinfo) -> dt.datetime:
    """Interpret a naive wall-clock time in `tz`, returning an aware UTC datetime.

    fold=0 picks the first occurrence of a repeated time; for a time inside a
    spring-forward gap zoneinfo applies the offset from before the gap, which
    lands exactly `gap` later in real time, i.e. it "moves forward by the gap".
    """
    zone = zone_of(tz)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
