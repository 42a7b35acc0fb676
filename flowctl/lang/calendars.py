"""Business calendars (`kind: calendar`, SPEC §4, §10.10): business time arithmetic.

A calendar is a time zone, weekly opening intervals in local wall-clock time
(`mon-fri: ["09:00-12:00", "13:00-18:00"]`), explicit holidays and optionally a
country's public holidays (the `holidays` package, observed days included).

The model:

- Each local day has a list of intervals. An interval is *half-open*
  `[start, end)`: a calendar open 09:00-18:00 is open at 09:00:00 and closed at
  18:00:00. Intervals that touch (`09:00-12:00`, `12:00-18:00`) are merged.
- Each interval is turned into real instants and measured in real elapsed
  time. On a normal day `09:00-18:00` is 9 business hours whatever the UTC
  offset. On a daylight-saving night a wall-clock time inside the spring-forward
  gap is reached when the clock jumps (the transition instant), so a
  `01:00-03:00` interval on spring-forward night in New York is 1 hour, and
  one that lies wholly inside the gap is empty; a repeated wall-clock time
  (fall-back night) means its first occurrence, so `00:00-03:00` on
  fall-back night in New York is 4 hours.
- `add(t, s)` is the instant at which the `s`-th business second after `t`
  completes: it may be the very end of an interval (a 9 h target from 09:00
  is due at 18:00 the same day, not at 09:00 the next business day).
  `add(t, 0)` is `next_open(t)`. A negative `s` walks backwards and returns
  the latest instant `u` with `between(u, t) == -s` (warning times: due minus
  30 business minutes).
- `between(a, b)` counts the business seconds in `[a, b)` (0 when b <= a).

Walks go interval by interval, and a week without holidays or offset change
inside it is skipped whole when the remaining amount is larger than a week's
business time, so a year of business time costs about 52 steps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import holidays as holidays_lib

from flowctl.errors import CalendarError
from flowctl.lang.durations import zone_of
from flowctl.resources.models import Calendar, Holiday, parse_day_spec, parse_interval

__all__ = ["BusinessCalendar"]

UTC: Final = dt.UTC
_DAY: Final = dt.timedelta(days=1)
_WEEK: Final = dt.timedelta(days=7)
_ZERO: Final = dt.timedelta(0)
_SECOND: Final = dt.timedelta(seconds=1)
# How far a walk may look for business hours before deciding there are none
# (a calendar whose every day is a holiday, or an empty weekly schedule).
_HORIZON_DAYS: Final = 366 * 10
_CACHE_LIMIT: Final = 50_000

Span = tuple[dt.datetime, dt.datetime]
# Calendars built from resources, by content: the engine rebuilds them per call and keeps the day caches warm.
_FROM_MODEL: dict[str, BusinessCalendar] = {}


def _utc(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError("business time needs aware datetimes (with a UTC offset)")
    return instant.astimezone(UTC)


def _merge(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


class BusinessCalendar:
    """Business hours in one time zone. Immutable once built; per-day results are cached."""

    def __init__(
        self,
        timezone: str = "UTC",
        weekly: Mapping[int, Sequence[tuple[int, int]]] | None = None,
        holidays: Iterable[dt.date] = (),
        *,
        country: str | None = None,
        subdivision: str | None = None,
        name: str | None = None,
    ) -> None:
        """`weekly` maps a weekday (Monday = 0) to intervals in minutes from local midnight (end <= 1440)."""
        self.name = name
        self.timezone = timezone
        self._zone = zone_of(timezone)
        week = weekly if weekly is not None else {d: [(0, 1440)] for d in range(7)}
        for intervals in week.values():
            for start, end in intervals:
                if not 0 <= start < end <= 1440:
                    raise CalendarError(f"invalid business interval {start}-{end} (minutes from midnight)")
        self._weekly: tuple[tuple[tuple[int, int], ...], ...] = tuple(
            _merge(week.get(d, ())) for d in range(7)
        )
        self._holidays = frozenset(holidays)
        self._country: holidays_lib.HolidayBase | None = None
        if country:
            try:
                self._country = holidays_lib.country_holidays(country, subdiv=subdivision)
            except NotImplementedError:
                raise CalendarError(
                    f"unknown holidays_country/subdivision '{country}'"
                    + (f"/'{subdivision}'" if subdivision else ""),
                    hint="use an ISO 3166 country code such as US, DE or CN",
                ) from None
        self._week_nominal = dt.timedelta(minutes=sum(e - s for day in self._weekly for s, e in day))
        self._plain = (
            self._week_nominal == _WEEK
            and not self._holidays
            and self._country is None
            and self._is_fixed_offset()
        )
        self._spans_cache: dict[dt.date, tuple[Span, ...]] = {}
        self._regular_cache: dict[dt.date, bool] = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_model(cls, cal: Calendar) -> BusinessCalendar:
        """The calendar for a `kind: calendar` resource; equal resources share one instance (and its caches)."""
        key = cal.model_dump_json()
        cached = _FROM_MODEL.get(key)
        if cached is None:
            if len(_FROM_MODEL) >= 256:
                _FROM_MODEL.clear()
            cached = _FROM_MODEL[key] = cls._build(cal)
        return cached

    @classmethod
    def _build(cls, cal: Calendar) -> BusinessCalendar:
        weekly: dict[int, list[tuple[int, int]]] = {}
        for spec, intervals in cal.weekly.items():
            for day in parse_day_spec(spec):
                weekly.setdefault(day, []).extend(parse_interval(i) for i in intervals)
        dates = [h.date if isinstance(h, Holiday) else h for h in cal.holidays]
        return cls(
            cal.timezone,
            weekly,
            dates,
            country=cal.holidays_country,
            subdivision=cal.holidays_subdivision,
            name=cal.name,
        )

    @classmethod
    def always(cls) -> BusinessCalendar:
        """24x7 with no holidays: business time is elapsed time (an SLA policy without a calendar)."""
        return cls("UTC", name=None)

    def __repr__(self) -> str:
        return f"BusinessCalendar(name={self.name!r}, timezone={self.timezone!r})"

    # ------------------------------------------------------------------ queries

    def is_holiday(self, day: dt.date) -> bool:
        return day in self._holidays or (self._country is not None and day in self._country)

    def intervals_on(self, day: dt.date) -> tuple[Span, ...]:
        """The business intervals of a local day as UTC instants `[start, end)`; empty on holidays."""
        cached = self._spans_cache.get(day)
        if cached is not None:
            return cached
        spans: list[Span] = []
        if not self.is_holiday(day):
            for start, end in self._weekly[day.weekday()]:
                a, b = self._wall_to_utc(day, start), self._wall_to_utc(day, end)
                if b > a:
                    spans.append((a, b))
        result = tuple(spans)
        if len(self._spans_cache) >= _CACHE_LIMIT:
            self._spans_cache.clear()
        self._spans_cache[day] = result
        return result

    def is_open(self, instant: dt.datetime) -> bool:
        t = _utc(instant)
        return any(a <= t < b for a, b in self.intervals_on(self._local_date(t)))

    def next_open(self, instant: dt.datetime) -> dt.datetime:
        """`instant` itself when open; otherwise the start of the next business interval (UTC)."""
        return self.add(instant, 0)

    def add(self, instant: dt.datetime, seconds: int | float) -> dt.datetime:
        """`instant` plus `seconds` of business time (negative: minus), as an aware UTC datetime."""
        t = _utc(instant)
        if self._plain:
            return t + dt.timedelta(seconds=seconds)
        if seconds < 0:
            return self._subtract(t, dt.timedelta(seconds=-seconds))
        remaining = dt.timedelta(seconds=seconds)
        day = self._local_date(t)
        idle_days = 0
        while True:
            opened = False
            for a, b in self.intervals_on(day):
                if b <= t:
                    continue
                opened = True
                start = max(a, t)
                available = b - start
                if remaining <= available:
                    return start + remaining
                remaining -= available
            idle_days = 0 if opened else idle_days + 1
            self._check_horizon(idle_days, t)
            day += _DAY
            while remaining > self._week_nominal and self._is_regular_week(day):
                remaining -= self._week_nominal
                day += _WEEK

    def between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Business seconds in `[start, end)`; 0 when `end <= start`. Whole seconds, rounded down."""
        a0, b0 = _utc(start), _utc(end)
        if b0 <= a0:
            return 0
        if self._plain:
            return (b0 - a0) // _SECOND
        total = _ZERO
        day, last = self._local_date(a0), self._local_date(b0)
        first = day
        while day <= last:
            if day > first and (last - day).days > 7 and self._is_regular_week(day):
                total += self._week_nominal
                day += _WEEK
                continue
            for a, b in self.intervals_on(day):
                lo, hi = max(a, a0), min(b, b0)
                if hi > lo:
                    total += hi - lo
            day += _DAY
        return total // _SECOND

    # ------------------------------------------------------------------ internals

    def _subtract(self, t: dt.datetime, remaining: dt.timedelta) -> dt.datetime:
        day = self._local_date(t)
        idle_days = 0
        while True:
            opened = False
            for a, b in reversed(self.intervals_on(day)):
                if a >= t:
                    continue
                opened = True
                end = min(b, t)
                available = end - a
                if remaining <= available:
                    return end - remaining
                remaining -= available
            idle_days = 0 if opened else idle_days + 1
            self._check_horizon(idle_days, t)
            day -= _DAY
            while remaining > self._week_nominal and self._is_regular_week(day - dt.timedelta(days=6)):
                remaining -= self._week_nominal
                day -= _WEEK

    def _check_horizon(self, idle_days: int, t: dt.datetime) -> None:
        if self._week_nominal == _ZERO or idle_days > _HORIZON_DAYS:
            label = f"calendar '{self.name}'" if self.name else "the calendar"
            raise CalendarError(
                f"{label} has no business hours within {_HORIZON_DAYS // 366} years of {t.isoformat()}",
                hint="give the calendar weekly hours on at least one day that is not a holiday",
            )

    def _local_date(self, t: dt.datetime) -> dt.date:
        return t.astimezone(self._zone).date()

    def _midnight_offset(self, day: dt.date) -> dt.timedelta | None:
        return self._zone.utcoffset(dt.datetime.combine(day, dt.time()))

    def _is_fixed_offset(self) -> bool:
        # UTC and fixed-offset zones never change offset: a 24x7 calendar there is plain elapsed time.
        probes = [dt.datetime(2000 + y, m, 1) for y in range(0, 60, 7) for m in (1, 4, 7, 10)]
        return len({self._zone.utcoffset(p) for p in probes}) == 1

    def _is_regular_week(self, day: dt.date) -> bool:
        """True when the 7 local days from `day` have their nominal business time: no holiday, no offset change."""
        cached = self._regular_cache.get(day)
        if cached is not None:
            return cached
        days = [day + dt.timedelta(days=i) for i in range(8)]
        regular = not any(self.is_holiday(d) for d in days[:7]) and (
            len({self._midnight_offset(d) for d in days}) == 1
        )
        if len(self._regular_cache) >= _CACHE_LIMIT:
            self._regular_cache.clear()
        self._regular_cache[day] = regular
        return regular

    def _wall_to_utc(self, day: dt.date, minutes: int) -> dt.datetime:
        """A local wall-clock time of `day` as an instant.

        A repeated time (fall-back) is its first occurrence. A time that does not
        exist (spring-forward gap) is reached when the clock jumps over it, i.e.
        at the transition instant: business hours `01:00-03:00` on that night
        last one real hour, and an opening time inside the gap opens at the jump.
        """
        wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
        later = wall.replace(tzinfo=self._zone, fold=0).astimezone(UTC)
        if later.astimezone(self._zone).replace(tzinfo=None) == wall:
            return later
        # In the gap: fold=0 applied the offset from before the jump (the later candidate), fold=1 the
        # offset after it (the earlier one). The transition lies between; find it to the second.
        earlier = wall.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        after_offset = later.astimezone(self._zone).utcoffset()
        lo, hi = earlier, later  # offset(lo) != after_offset, offset(hi) == after_offset
        while hi - lo > _SECOND:
            mid = lo + (hi - lo) // 2
            mid = mid.replace(microsecond=0)
            if mid <= lo:
                break
            if mid.astimezone(self._zone).utcoffset() == after_offset:
                hi = mid
            else:
                lo = mid
        return hi

    # ------------------------------------------------------------------ description

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (for traces and `--format json`)."""
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        return {
            "name": self.name,
            "timezone": self.timezone,
            "weekly": {
                names[d]: [
                    f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in self._weekly[d]
                ]
                for d in range(7)
                if self._weekly[d]
            },
            "holidays": sorted(d.isoformat() for d in self._holidays),
            "week_business_seconds": self._week_nominal // _SECOND,
        }
