"""Business calendars: exact deadlines, DST nights, public holidays, and properties."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.errors import CalendarError
from flowctl.lang.calendars import BusinessCalendar
from flowctl.resources.models import Calendar

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
H = 3600


def cal(tz: str, weekly: dict[str, list[str]], **extra: Any) -> BusinessCalendar:
    model = Calendar.model_validate(
        {"kind": "calendar", "name": "c", "timezone": tz, "weekly": weekly, **extra}
    )
    return BusinessCalendar.from_model(model)


NY_9_18 = cal("America/New_York", {"mon-fri": ["09:00-18:00"]})
NY_9_17 = cal("America/New_York", {"mon-fri": ["09:00-17:00"]})
NY_US = cal("America/New_York", {"mon-fri": ["09:00-18:00"]}, holidays_country="US")
NY_24X7 = cal("America/New_York", {"mon-sun": ["00:00-24:00"]})
NY_NIGHT = cal("America/New_York", {"sun": ["01:00-03:00"]})
NY_FALLBACK_NIGHT = cal("America/New_York", {"sun": ["00:00-03:00"]})
NY_IN_GAP = cal("America/New_York", {"sun": ["02:00-02:45"]})
BERLIN_9_18 = cal("Europe/Berlin", {"mon-fri": ["09:00-18:00"]})
BERLIN_SUN_NIGHT = cal("Europe/Berlin", {"sun": ["01:00-04:00"]})
SUPPORT_HOURS = cal(  # SPEC §4's example
    "Asia/Shanghai",
    {"mon-fri": ["09:00-12:00", "13:00-18:00"]},
    holidays=["2026-10-01", {"date": "2026-10-02", "name": "National Day"}],
)
SHANGHAI_CN = cal("Asia/Shanghai", {"mon-fri": ["09:00-12:00", "13:00-18:00"]}, holidays_country="CN")


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, sec, tzinfo=NY)


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, sec, tzinfo=BERLIN)


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, sec, tzinfo=SHANGHAI)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, sec, tzinfo=UTC)


# (name, calendar, start, business seconds, expected deadline)
DEADLINES: list[tuple[str, BusinessCalendar, dt.datetime, int, dt.datetime]] = [
    ("friday 17:30 + 2h → monday 10:30 (over spring-forward)", NY_9_18, ny(2026, 3, 6, 17, 30), 2 * H, ny(2026, 3, 9, 10, 30)),
    ("SPEC §7 example: friday 16:00 + 2h, 9-17 → monday 10:00 EDT", NY_9_17, ny(2026, 3, 6, 16), 2 * H,
     dt.datetime.fromisoformat("2026-03-09T10:00:00-04:00")),
    ("ends exactly at closing time", NY_9_18, ny(2026, 3, 2, 9), 9 * H, ny(2026, 3, 2, 18)),
    ("starts before opening", NY_9_18, ny(2026, 3, 2, 7), 1 * H, ny(2026, 3, 2, 10)),
    ("starts after closing", NY_9_18, ny(2026, 3, 2, 20), 30 * 60, ny(2026, 3, 3, 9, 30)),
    ("a week of business time", NY_9_18, ny(2026, 3, 2, 9), 45 * H, ny(2026, 3, 6, 18)),
    ("1d = 24 business hours", NY_9_18, ny(2026, 3, 2, 9), 24 * H, ny(2026, 3, 4, 15)),
    ("200 business hours skip whole weeks", NY_9_18, ny(2026, 1, 5, 9), 200 * H, ny(2026, 2, 4, 11)),
    ("lunch break between two intervals", SUPPORT_HOURS, sh(2026, 9, 21, 11), 2 * H, sh(2026, 9, 21, 14)),
    ("starts during lunch", SUPPORT_HOURS, sh(2026, 9, 21, 12, 30), 30 * 60, sh(2026, 9, 21, 13, 30)),
    ("National Day holidays (explicit)", SUPPORT_HOURS, sh(2026, 9, 30, 17), 2 * H, sh(2026, 10, 5, 10)),
    ("National Day with holidays_country CN (Golden Week)", SHANGHAI_CN, sh(2026, 9, 30, 17), 2 * H,
     sh(2026, 10, 8, 10)),
    ("Thanksgiving 2026-11-26 (holidays_country US)", NY_US, ny(2026, 11, 25, 17), 2 * H, ny(2026, 11, 27, 10)),
    ("Independence Day observed on Friday 2026-07-03", NY_US, ny(2026, 7, 2, 17), 2 * H, ny(2026, 7, 6, 10)),
    ("24x7 over spring-forward is real time", NY_24X7, ny(2026, 3, 7, 12), 24 * H, ny(2026, 3, 8, 13)),
    ("24x7 over fall-back is real time", NY_24X7, ny(2026, 10, 31, 12), 24 * H, ny(2026, 11, 1, 11)),
    ("NY 01:00-03:00 on spring-forward night lasts 1h", NY_NIGHT, ny(2026, 3, 8, 1), 1 * H, utc(2026, 3, 8, 7)),
    ("NY spring-forward night, 90 min → next sunday", NY_NIGHT, ny(2026, 3, 8, 1), 90 * 60, ny(2026, 3, 15, 1, 30)),
    ("NY 00:00-03:00 on fall-back night lasts 4h", NY_FALLBACK_NIGHT, ny(2026, 11, 1, 0), 4 * H, utc(2026, 11, 1, 8)),
    ("NY fall-back night, 3h in → 02:00 EST", NY_FALLBACK_NIGHT, ny(2026, 11, 1, 0), 3 * H, utc(2026, 11, 1, 7)),
    ("NY interval wholly inside the gap is empty", NY_IN_GAP, ny(2026, 3, 8, 0), 15 * 60, ny(2026, 3, 15, 2, 15)),
    ("Berlin 01:00-04:00 on spring-forward night lasts 2h", BERLIN_SUN_NIGHT, berlin(2026, 3, 29, 1), 2 * H,
     utc(2026, 3, 29, 2)),
    ("Berlin spring-forward night, 2.5h → next sunday", BERLIN_SUN_NIGHT, berlin(2026, 3, 29, 1), 150 * 60,
     berlin(2026, 4, 5, 1, 30)),
    ("Berlin 01:00-04:00 on fall-back night lasts 4h", BERLIN_SUN_NIGHT, berlin(2026, 10, 25, 1), 4 * H,
     utc(2026, 10, 25, 3)),
    ("Berlin fall-back night, 3.5h in → 03:30 CET", BERLIN_SUN_NIGHT, berlin(2026, 10, 25, 1), 210 * 60,
     utc(2026, 10, 25, 2, 30)),
    ("Berlin weekdays over the fall-back weekend", BERLIN_9_18, berlin(2026, 10, 23, 17), 2 * H,
     berlin(2026, 10, 26, 10)),
    ("seconds are exact", NY_9_18, ny(2026, 3, 2, 17, 59, 59), 2, ny(2026, 3, 3, 9, 0, 1)),
    ("zero when closed is the next opening", NY_US, ny(2026, 11, 26, 10), 0, ny(2026, 11, 27, 9)),
    ("zero when open is the instant", NY_9_18, ny(2026, 3, 2, 10, 15), 0, ny(2026, 3, 2, 10, 15)),
    ("negative: due minus 2h", NY_9_18, ny(2026, 3, 9, 10, 30), -2 * H, ny(2026, 3, 6, 17, 30)),
    ("negative: lands on an opening time", NY_9_18, ny(2026, 3, 9, 9, 30), -30 * 60, ny(2026, 3, 9, 9)),
    ("negative: over the lunch break", SUPPORT_HOURS, sh(2026, 9, 21, 13, 30), -60 * 60, sh(2026, 9, 21, 11, 30)),
    ("negative: 200h back skips whole weeks", NY_9_18, ny(2026, 2, 4, 11), -200 * H, ny(2026, 1, 5, 9)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "calendar", "start", "seconds", "expected"), DEADLINES, ids=[d[0] for d in DEADLINES]
)
def test_deadline(
    name: str, calendar: BusinessCalendar, start: dt.datetime, seconds: int, expected: dt.datetime
) -> None:
    due = calendar.add(start, seconds)
    assert due == expected, f"{due.astimezone(expected.tzinfo)} != {expected}"
    assert due.tzinfo is UTC
    if seconds > 0:
        assert calendar.between(start, due) == seconds
    elif seconds < 0:
        assert calendar.between(due, start) == -seconds


def test_at_least_twenty_deadlines() -> None:
    assert len(DEADLINES) >= 20


def test_is_open_is_half_open() -> None:
    assert NY_9_18.is_open(ny(2026, 3, 2, 9))
    assert NY_9_18.is_open(ny(2026, 3, 2, 17, 59, 59))
    assert not NY_9_18.is_open(ny(2026, 3, 2, 18))
    assert not NY_9_18.is_open(ny(2026, 3, 7, 12))  # Saturday
    assert not SUPPORT_HOURS.is_open(sh(2026, 9, 21, 12, 30))  # lunch
    assert not SUPPORT_HOURS.is_open(sh(2026, 10, 1, 10))  # holiday
    assert NY_24X7.is_open(ny(2026, 3, 8, 3))


def test_next_open() -> None:
    assert NY_9_18.next_open(ny(2026, 3, 6, 18)) == ny(2026, 3, 9, 9)
    assert NY_US.next_open(ny(2026, 11, 26, 8)) == ny(2026, 11, 27, 9)
    assert SUPPORT_HOURS.next_open(sh(2026, 9, 21, 12)) == sh(2026, 9, 21, 13)
    assert NY_IN_GAP.next_open(ny(2026, 3, 8, 0)) == ny(2026, 3, 15, 2)
    assert NY_9_18.next_open(ny(2026, 3, 3, 11)) == ny(2026, 3, 3, 11)


def test_between() -> None:
    # Thanksgiving week: four business days.
    assert NY_US.between(ny(2026, 11, 23), ny(2026, 11, 30)) == 4 * 9 * H
    # 24x7 over the spring-forward weekend: 47 real hours between two local midnights.
    assert NY_24X7.between(ny(2026, 3, 7), ny(2026, 3, 9)) == 47 * H
    assert NY_24X7.between(ny(2026, 10, 31), ny(2026, 11, 2)) == 49 * H
    assert NY_9_18.between(ny(2026, 3, 2, 12), ny(2026, 3, 2, 11)) == 0
    # A year, using whole-week skips, against the day-by-day count.
    weekdays = sum(1 for i in range(365) if (dt.date(2026, 1, 1) + dt.timedelta(days=i)).weekday() < 5)
    assert NY_9_18.between(ny(2026, 1, 1), ny(2027, 1, 1)) == weekdays * 9 * H
    us_2026 = 11  # federal holidays on weekdays in 2026 (July 4 observed on the 3rd)
    assert NY_US.between(ny(2026, 1, 1), ny(2027, 1, 1)) == (weekdays - us_2026) * 9 * H


def test_always_is_elapsed_time() -> None:
    always = BusinessCalendar.always()
    t = utc(2026, 3, 8, 1, 30)
    assert always.add(t, 5 * 86400 + 7) == t + dt.timedelta(days=5, seconds=7)
    assert always.between(t, t + dt.timedelta(hours=49)) == 49 * H
    assert always.is_open(t) and always.next_open(t) == t


def test_spans_of_a_day_are_ordered_and_disjoint() -> None:
    for calendar, day in [
        (NY_FALLBACK_NIGHT, dt.date(2026, 11, 1)),
        (NY_NIGHT, dt.date(2026, 3, 8)),
        (SUPPORT_HOURS, dt.date(2026, 9, 21)),
    ]:
        spans = calendar.intervals_on(day)
        assert all(a < b for a, b in spans)
        assert all(x[1] <= y[0] for x, y in itertools.pairwise(spans))


def test_touching_intervals_merge() -> None:
    c = cal("UTC", {"mon": ["09:00-12:00", "12:00-18:00"]})
    assert c.intervals_on(dt.date(2026, 3, 2)) == ((utc(2026, 3, 2, 9), utc(2026, 3, 2, 18)),)


def test_no_business_hours_is_a_clear_error() -> None:
    empty = cal("UTC", {"mon-fri": []})
    with pytest.raises(CalendarError) as info:
        empty.add(utc(2026, 1, 1), 60)
    assert "no business hours" in info.value.message and info.value.hint


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        NY_9_18.add(dt.datetime(2026, 1, 1), 60)


def test_describe() -> None:
    d = SUPPORT_HOURS.describe()
    assert d["weekly"]["mon"] == ["09:00-12:00", "13:00-18:00"]
    assert d["holidays"] == ["2026-10-01", "2026-10-02"]
    assert d["week_business_seconds"] == 5 * 8 * H


# --------------------------------------------------------------------------- properties

PROPERTY_CALENDARS = [
    NY_9_18,
    NY_US,
    SUPPORT_HOURS,
    SHANGHAI_CN,
    BERLIN_SUN_NIGHT,
    NY_NIGHT,
    NY_24X7,
    NY_IN_GAP,
]
instants = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
amounts = st.integers(min_value=0, max_value=400 * H)


@settings(max_examples=300, deadline=None)
@given(c=st.sampled_from(PROPERTY_CALENDARS), t=instants, s=amounts)
def test_between_inverts_add(c: BusinessCalendar, t: dt.datetime, s: int) -> None:
    assert c.between(t, c.add(t, s)) == s
    if s > 0:
        assert c.between(c.add(t, -s), t) == s


@settings(max_examples=200, deadline=None)
@given(c=st.sampled_from(PROPERTY_CALENDARS), t=instants, s1=amounts, s2=amounts)
def test_add_is_monotonic(c: BusinessCalendar, t: dt.datetime, s1: int, s2: int) -> None:
    lo, hi = sorted((s1, s2))
    assert c.add(t, lo) <= c.add(t, hi)
    if lo > 0:  # add(t, 0) is next_open(t), which may lie after t
        assert c.add(t, -hi) <= c.add(t, -lo) <= t


@settings(max_examples=200, deadline=None)
@given(c=st.sampled_from(PROPERTY_CALENDARS), t=instants)
def test_add_zero(c: BusinessCalendar, t: dt.datetime) -> None:
    if c.is_open(t):
        assert c.add(t, 0) == t
    else:
        assert c.add(t, 0) == c.next_open(t) > t
        assert c.is_open(c.next_open(t))


def _reference_minutes(
    weekly: dict[int, list[tuple[int, int]]], zone: ZoneInfo, start: dt.datetime, minutes: int
) -> dt.datetime:
    """A minute-by-minute walk on local wall-clock time: the slow, obviously right definition."""
    t, left = start, minutes
    while left > 0:
        local = t.astimezone(zone)
        m = local.hour * 60 + local.minute
        if any(a <= m < b for a, b in weekly.get(local.weekday(), [])):
            left -= 1
        t += dt.timedelta(minutes=1)
    return t


HOURS = [0, 6, 8, 9, 12, 13, 17, 18, 24]  # boundaries outside DST gaps/folds, so wall time is unambiguous


@st.composite
def weekly_schedules(draw: st.DrawFn) -> dict[int, list[tuple[int, int]]]:
    weekly: dict[int, list[tuple[int, int]]] = {}
    for day in draw(st.sets(st.integers(0, 6), min_size=1)):
        bounds = sorted(draw(st.sets(st.sampled_from(HOURS), min_size=2, max_size=4)))
        if len(bounds) % 2:
            bounds = bounds[:-1]
        weekly[day] = [(bounds[i] * 60, bounds[i + 1] * 60) for i in range(0, len(bounds), 2)]
    return weekly


DST_WEEKS = [dt.datetime(2026, 3, 6, tzinfo=UTC), dt.datetime(2026, 3, 27, tzinfo=UTC),
             dt.datetime(2026, 10, 23, tzinfo=UTC), dt.datetime(2026, 10, 30, tzinfo=UTC)]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    weekly=weekly_schedules(),
    tz=st.sampled_from(["America/New_York", "Europe/Berlin", "Asia/Shanghai"]),
    base=st.sampled_from(DST_WEEKS),
    offset=st.integers(min_value=0, max_value=4 * 1440),
    minutes=st.integers(min_value=1, max_value=2000),
)
def test_add_matches_a_minute_by_minute_walk(
    weekly: dict[int, list[tuple[int, int]]], tz: str, base: dt.datetime, offset: int, minutes: int
) -> None:
    t = base + dt.timedelta(minutes=offset)
    c = BusinessCalendar(tz, weekly)
    expected = _reference_minutes(weekly, ZoneInfo(tz), t, minutes)
    assert c.add(t, minutes * 60) == expected
    assert c.between(t, expected) == minutes * 60
