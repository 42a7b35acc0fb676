"""Simulator throughput: a 30-day flow with 3 waits over 10,000 fixture records. Prints figures; not a test.

    .venv/bin/python benchmarks/sim_bench.py [--records 10000] [--no-isolate]

Every record is created by an event during the first day (so runs interleave
on the virtual clock), goes through an email, three waits (7d, 7d, 14d), a
condition, a record update and a second email, and ends 28 days later. The
simulator runs the same engine as the runner, over the in-memory store that
copies models in and out (`--no-isolate` measures without the copies).
Target: under 20 s for 10,000 records.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

from flowctl.resources.bundle import Bundle
from flowctl.sim.simulator import Simulator

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)

RESOURCES: dict[str, dict[str, dict[str, Any]]] = {
    "object": {
        "contact": {
            "kind": "object",
            "name": "contact",
            "fields": {
                "first_name": {"type": "string"},
                "email": {"type": "email"},
                "tier": {"type": "enum", "values": ["standard", "premium", "gold"]},
                "stage": {"type": "string"},
                "email_opt_out": {"type": "boolean"},
            },
            "consent": {"email": {"field": "email_opt_out", "op": "ne", "value": True}},
        }
    },
    "template": {
        "nurture_intro": {
            "kind": "template",
            "name": "nurture_intro",
            "channel": "email",
            "subject": "Welcome, {{ record.first_name }}",
            "html": "<p>Hi {{ record.first_name }}, here is what {{ record.tier }} members get.</p>",
            "text": "Hi {{ record.first_name }}",
        }
    },
    "flow": {
        "nurture": {
            "kind": "flow",
            "name": "nurture",
            "object": "contact",
            "timezone": "Europe/Berlin",
            "trigger": {"type": "record_created"},
            "conditions": {"field": "email", "op": "is_set"},
            "steps": [
                {"id": "intro", "action": "send_email", "to": "{{ record.email }}", "template": "nurture_intro"},
                {"id": "week_one", "wait": {"for": "7d"}},
                {"id": "note", "action": "log", "message": "one week in for {{ record.first_name }}"},
                {"id": "week_two", "wait": {"for": "7d"}},
                {"id": "tier_check", "if": {"field": "tier", "op": "in", "value": ["premium", "gold"]},
                 "then": [{"id": "mark", "action": "update_record", "set": {"stage": "engaged"}}],
                 "else": [{"id": "plain", "action": "log", "message": "standard tier"}]},
                {"id": "fortnight", "wait": {"for": "14d"}},
                {"id": "offer", "action": "send_email", "to": "{{ record.email }}",
                 "subject": "An offer for {{ record.first_name }}", "text": "Thirty days with us."},
            ],
        }
    },
}


def fixtures(n: int) -> list[dict[str, Any]]:
    tiers = ("standard", "premium", "gold")
    return [
        {"object": "contact", "id": f"c-{i}", "first_name": f"Name{i}", "email": f"c{i}@example.com",
         "tier": tiers[i % 3], "email_opt_out": i % 50 == 0}
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--no-isolate", action="store_true", help="skip the store's defensive copies")
    args = parser.parse_args()

    bundle = Bundle(resources=RESOURCES).typed()
    records = fixtures(args.records)
    began = time.perf_counter()
    sim = Simulator(bundle, start_at=START, isolate=not args.no_isolate)
    sim.activate()
    spacing = dt.timedelta(seconds=86400 / max(1, len(records)))
    for i, rec in enumerate(records):
        sim.advance_to(START + i * spacing)
        values = {k: v for k, v in rec.items() if k not in ("object", "id")}
        sim.ingest({"type": "record_created", "object": "contact", "record": {"id": rec["id"], **values}})
    created = time.perf_counter()
    sim.run_until(START + dt.timedelta(days=30))
    finished = time.perf_counter()

    runs = sim.store.list_runs()
    done = sum(1 for r in runs if r.status == "succeeded")
    sent = len(sim.connectors.sent)
    total = finished - began
    print(f"records:            {len(records):,}")
    print(f"runs succeeded:     {done:,} of {len(runs):,}")
    print(f"messages sent:      {sent:,}")
    print(f"timers fired:       {sim.timers_fired:,}")
    print(f"trace entries:      {len(sim.store.trace()):,}")
    print(f"creating (day 1):   {created - began:.2f} s")
    print(f"running to day 30:  {finished - created:.2f} s")
    print(f"total:              {total:.2f} s  (target < 20 s)")
    print(f"records/s:          {len(records) / total:,.0f}")


if __name__ == "__main__":
    main()
