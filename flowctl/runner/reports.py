"""`flowctl stats` and `flowctl report failures`: aggregates over the runner's execution logs and SLA clocks.

The store answers with grouped counts (SQL does the heavy lifting); this
module turns them into the documented JSON (docs/formats/api.md) and maps
step ids to action types through the bundle versions the runs ran on.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from flowctl.connectors.errors import category
from flowctl.engine.sla_clocks import NAMESPACE as SLA_NAMESPACE
from flowctl.engine.sla_clocks import sla_figures, stored_clocks
from flowctl.resources.bundle import TypedBundle
from flowctl.resources.models import ACTION_MODELS
from flowctl.store.sqlite import SqliteStore

FINISHED = ("succeeded", "succeeded_compensated", "failed")
ALL_STATUSES = ("running", "waiting", "succeeded", "succeeded_compensated", "failed", "cancelled")

# flow name -> {step id -> step kind (action name or control key)}
StepKinds = Callable[[str], dict[str, str]]


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def flow_stats(
    store: SqliteStore, step_kinds: StepKinds, *, flow: str | None = None, since: dt.datetime | None = None
) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ALL_STATUSES, 0))
    for name, status, n in store.run_status_counts(flow=flow, since=since):
        counts[name][status] = counts[name].get(status, 0) + n
    durations: dict[str, list[float]] = defaultdict(list)
    for name, seconds in store.run_durations(flow=flow, since=since):
        durations[name].append(seconds)
    actions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, step, status, _, n in store.attempt_counts(flow=flow, since=since):
        if status != "succeeded":
            continue
        kind = step_kinds(name).get(step)
        if kind in ACTION_MODELS:
            actions[name][kind] += n
    flows = []
    for name in sorted(counts):
        c = counts[name]
        finished = sum(c[s] for s in FINISHED)
        ok = c["succeeded"] + c["succeeded_compensated"]
        d = durations.get(name, [])
        flows.append(
            {
                "flow": name,
                "triggered": sum(c.values()),
                "running": c["running"],
                "waiting": c["waiting"],
                "succeeded": c["succeeded"],
                "compensated": c["succeeded_compensated"],
                "failed": c["failed"],
                "cancelled": c["cancelled"],
                "success_rate": _round(ok / finished, 4) if finished else None,
                "avg_duration_seconds": _round(sum(d) / len(d)) if d else None,
                "p95_duration_seconds": _round(percentile(d, 95)),
                "actions": dict(sorted(actions.get(name, {}).items())),
            }
        )
    return {"since": since.isoformat() if since else None, "flows": flows}


def sla_stats(
    store: SqliteStore, bundle: TypedBundle | None, *, now: dt.datetime, since: dt.datetime | None = None
) -> dict[str, Any]:
    """SLA achievement rate, breach count and average overdue time over the runner's clocks (docs/sla.md).

    `bundle` is the live version: its calendars measure the overdue time of clocks still counting.
    """
    return sla_figures(stored_clocks(store.kv_items(SLA_NAMESPACE)), bundle, now, since)


def failure_report(
    store: SqliteStore, step_kinds: StepKinds, *, flow: str | None = None, since: dt.datetime | None = None
) -> dict[str, Any]:
    # Attempts that failed, whether the step was retried afterwards ("retrying") or not ("failed").
    attempts: dict[tuple[str, str, str | None], int] = defaultdict(int)
    for name, step, status, error_class, n in store.attempt_counts(flow=flow, since=since):
        if status in ("failed", "retrying"):
            attempts[(name, step, error_class)] += n
    failures = [
        {
            "flow": name,
            "step": step,
            "action": step_kinds(name).get(step),
            "error_class": error_class,
            "category": category(error_class),
            "attempts": n,
        }
        for (name, step, error_class), n in sorted(
            attempts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1])
        )
    ]

    # (flow, step) -> [failed at least once, retried, recovered]
    by_step: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for name, step, tries, succeeded in store.retried_steps(flow=flow, since=since):
        entry = by_step[(name, step)]
        entry[0] += 1
        if tries > 1:
            entry[1] += 1
            if succeeded:
                entry[2] += 1
    retried = sum(v[1] for v in by_step.values())
    recovered = sum(v[2] for v in by_step.values())
    retries = {
        "steps_failed": sum(v[0] for v in by_step.values()),
        "steps_retried": retried,
        "recovered": recovered,
        "retry_success_rate": _round(recovered / retried, 4) if retried else None,
        "by_step": [
            {
                "flow": f,
                "step": s,
                "failed": v[0],
                "retried": v[1],
                "recovered": v[2],
                "retry_success_rate": _round(v[2] / v[1], 4) if v[1] else None,
            }
            for (f, s), v in sorted(by_step.items())
        ],
    }

    tasks = store.compensation_tasks(flow=flow, since=since)
    waits = [(t.completed_at - t.created_at).total_seconds() for t in tasks if t.completed_at is not None]
    compensation = {
        "tasks": len(tasks),
        "open": sum(t.is_open for t in tasks),
        "done": sum(t.decision == "done" for t in tasks),
        "rejected": sum(t.decision == "rejected" for t in tasks),
        "avg_seconds_to_human": _round(sum(waits) / len(waits)) if waits else None,
        "p50_seconds_to_human": _round(percentile(waits, 50)),
        "p95_seconds_to_human": _round(percentile(waits, 95)),
    }
    messages = [
        {
            "flow": f,
            "channel": channel,
            "error_class": error_class,
            "category": category(error_class),
            "count": n,
        }
        for f, channel, status, error_class, n in store.message_outcomes(flow=flow, since=since)
        if status == "failed"
    ]
    crm = store.crm_forward_counts()
    return {
        "since": since.isoformat() if since else None,
        "failures": failures,
        "retries": retries,
        "compensation": compensation,
        "messages": sorted(messages, key=lambda m: -m["count"]),
        "crm_forwards": {
            "failed": crm.get("failed", 0),
            "pending": crm.get("pending", 0),
            "sent": crm.get("sent", 0),
        },
    }
