"""Business-time and condition throughput. Prints figures; not a test.

.venv/bin/python benchmarks/bench_business_time.py
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable

from pydantic import TypeAdapter

from flowctl.lang.calendars import BusinessCalendar
from flowctl.lang.conditions import evaluate, record_context
from flowctl.resources.models import Calendar, Condition, FieldDef

UTC = dt.UTC


def calendar(**extra: object) -> BusinessCalendar:
    model = Calendar.model_validate(
        {
            "kind": "calendar",
            "name": "bench",
            "timezone": "America/New_York",
            "weekly": {"mon-fri": ["09:00-12:00", "13:00-18:00"]},
            **extra,
        }
    )
    return BusinessCalendar.from_model(model)


def cold() -> BusinessCalendar:
    """A new instance each time; `calendar()` (from_model) returns one shared instance per resource."""
    return BusinessCalendar("America/New_York", {d: [(540, 720), (780, 1080)] for d in range(5)})


def adder(
    make: Callable[[], BusinessCalendar], starts: list[dt.datetime], amount: int
) -> Callable[[int], dt.datetime]:
    return lambda i: make().add(starts[i], amount)


def measure(label: str, n: int, fn: Callable[[int], object]) -> None:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    elapsed = time.perf_counter() - start
    print(f"{label:<58} {n / elapsed:>12,.0f} /s  {elapsed / n * 1e6:>9.2f} µs each")


def main() -> None:
    rng = random.Random(7)
    starts = [
        dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=rng.randrange(365 * 86400))
        for _ in range(5000)
    ]
    print("business calendars (Mon–Fri 09–12, 13–18 New York)")
    for label, amount in [("2 business hours", 2 * 3600), ("5 business days (120 h)", 120 * 3600), ("1 year of business time", 2000 * 3600)]:  # fmt: skip
        # A fresh calendar per call: the cold-cache cost the first evaluation of a clock pays.
        measure(f"add {label}, cold cache", 300, adder(cold, starts, amount))
        measure(f"add {label}, warm cache", 5000, adder(calendar, starts, amount))
    us = calendar(holidays_country="US")
    measure("add 5 business days with US public holidays", 5000, lambda i: us.add(starts[i], 120 * 3600))
    warm = calendar()
    measure(
        "between over 30 days", 5000, lambda i: warm.between(starts[i], starts[i] + dt.timedelta(days=30))
    )

    print("conditions")
    fields = {"tier": FieldDef(type="enum", values=["a", "gold"]), "amount": FieldDef(type="number"),
              "created_at": FieldDef(type="datetime")}  # fmt: skip
    ctx = record_context(
        {"tier": "gold", "amount": "1200", "created_at": "2026-03-05T10:00:00Z", "email": "a@b.c"},
        now=dt.datetime(2026, 3, 10, tzinfo=UTC),
        fields=fields,
    )
    cond = TypeAdapter(Condition).validate_python(
        {
            "all": [
                {"field": "email", "op": "is_set"},
                {
                    "any": [
                        {"field": "tier", "op": "in", "value": ["gold"]},
                        {"field": "amount", "op": "gt", "value": 1000},
                    ]
                },
                {"field": "created_at", "op": "within_last", "value": "7d"},
            ]
        }
    )
    measure("evaluate a 5-leaf condition (model)", 50_000, lambda i: evaluate(cond, ctx))


if __name__ == "__main__":
    main()
