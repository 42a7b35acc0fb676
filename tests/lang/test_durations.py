import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowctl.errors import DurationError
from flowctl.lang.durations import Duration, is_timezone, localize

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [("30s", 30, "s"), ("15m", 15, "m"), ("2h", 2, "h"), ("3d", 3, "d"), ("1w", 1, "w"), ("-7d", -7, "d")],
)
def test_parse(text: str, amount: int, unit: str) -> None:
    d = Duration.parse(text)
    assert (d.amount, d.unit) == (amount, unit)
    assert str(d) == text


@pytest.mark.parametrize("bad", ["", "7", "7x", "d7", "1.5h", "7 days", "--7d", 7, True, None])
def test_parse_rejects(bad: object) -> None:
    with pytest.raises(DurationError) as info:
        Duration.parse(bad)  # type: ignore[arg-type]
    assert info.value.hint


def test_day_wait_across_spring_forward_keeps_local_time() -> None:
    # 2026-03-08 is the US spring-forward day: 1d from 12:00 the day before ends at 12:00 local.
    start = localize(dt.datetime(2026, 3, 7, 12, 0), "America/New_York")
    end = Duration.parse("1d").add_to(start, "America/New_York")
    assert end.astimezone(dt.timezone(dt.timedelta(hours=-4))).hour == 12
    assert end - start == dt.timedelta(hours=23)
    # 24h is exact elapsed time and so lands at 13:00 local.
    end24 = Duration.parse("24h").add_to(start, "America/New_York")
    assert end24 - start == dt.timedelta(hours=24)


def test_day_wait_across_fall_back_is_25_hours() -> None:
    start = localize(dt.datetime(2026, 10, 24, 12, 0), "Europe/Berlin")
    end = Duration.parse("1d").add_to(start, "Europe/Berlin")
    assert end - start == dt.timedelta(hours=25)


def test_nonexistent_local_time_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist on 2026-03-08 in New York; it becomes 03:30 EDT (07:30 UTC).
    assert localize(dt.datetime(2026, 3, 8, 2, 30), "America/New_York") == dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_repeated_local_time_means_first_occurrence() -> None:
    # 01:30 happens twice on 2026-11-01 in New York; the first is EDT (05:30 UTC).
    assert localize(dt.datetime(2026, 11, 1, 1, 30), "America/New_York") == dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_negative_offset_in_days() -> None:
    start = dt.datetime(2026, 6, 30, 0, 0, tzinfo=UTC)
    assert Duration.parse("-30d").add_to(start) == dt.datetime(2026, 5, 31, 0, 0, tzinfo=UTC)


def test_timezones() -> None:
    assert is_timezone("Europe/Berlin")
    assert not is_timezone("Mars/Olympus")
    assert not is_timezone("../etc/passwd")


@given(st.integers(min_value=-10_000, max_value=10_000), st.sampled_from(["s", "m", "h"]))
def test_exact_units_are_elapsed_time(amount: int, unit: str) -> None:
    start = dt.datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    d = Duration.parse(f"{amount}{unit}")
    assert (d.add_to(start, "America/New_York") - start).total_seconds() == d.nominal_seconds()
