"""Who gets a record: `assign_record` strategies (SPEC §3, seed 004 smart dispatch).

- fixed: the `user` (templated).
- round_robin: the team's members in order, one after the other (a cursor per
  team in the store), skipping members at capacity.
- least_loaded: the member with the fewest open tasks plus records of this
  object the engine assigned to them; ties go to the member listed first.
- skills: members who have at least one of the record's tags (`skills_from`)
  and speak its language (`language_from`, when given); the least loaded of
  them wins (ties: more matching skills, then list order). The matched rule is
  returned so the step can record it on the record.

Members whose load reached their `capacity` are skipped by every team strategy.
No candidate: `fallback` (a user, or `manual_dispatch` for a dispatch task to
the team manager), else the step fails with error class `no_assignee`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowctl.engine.runtime import Runtime
from flowctl.engine.state import Record
from flowctl.resources.models import AssignRecord, Team, TeamMember


@dataclass
class Assignment:
    user: str | None  # None: nobody matched; see `fallback`
    rule: str  # a readable account of why, recorded on the record and in the trace
    fallback: str | None = None  # "manual_dispatch" or None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip().lower() for v in value if str(v).strip()]
    return [p.strip().lower() for p in str(value).split(",") if p.strip()]


def _counter(object_name: str, field: str, user: str) -> str:
    return f"{object_name}:{field}:{user}"


def load_of(rt: Runtime, user: str, object_name: str, field: str) -> int:
    """Open tasks assigned to `user` plus records of `object_name` this engine assigned to them in `field`.

    The record count is a counter kept by `record_assignment` (kv namespace
    `assigned`) rather than a scan, so an assignment costs the same with ten
    records or a million.
    """
    tasks = len(rt.store.list_tasks(assignee=user, open_only=True))
    records = int(rt.store.kv_get("assigned", _counter(object_name, field, user)) or 0)
    return tasks + records


def record_assignment(rt: Runtime, record: Record, field: str, user: str) -> None:
    """Move the record's count from its previous assignee (if any) to `user`."""
    previous = record.fields.get(field)
    if previous == user:
        return
    if isinstance(previous, str) and previous:
        key = _counter(record.object, field, previous)
        count = int(rt.store.kv_get("assigned", key) or 0)
        if count > 0:
            rt.store.kv_put("assigned", key, count - 1)
    key = _counter(record.object, field, user)
    rt.store.kv_put("assigned", key, int(rt.store.kv_get("assigned", key) or 0) + 1)


def _available(rt: Runtime, members: list[TeamMember], object_name: str, field: str) -> list[tuple[TeamMember, int]]:
    out = []
    for m in members:
        load = load_of(rt, m.user, object_name, field)
        if m.capacity is not None and load >= m.capacity:
            continue
        out.append((m, load))
    return out


def choose(rt: Runtime, step: AssignRecord, team: Team | None, record: Record, user: str | None,
           fallback: str | None = None) -> Assignment:
    """The assignee for `record`; `user` and `fallback` are the step's values, already rendered."""
    strategy = step.strategy
    fallback = fallback if fallback is not None else step.fallback
    if strategy == "fixed":
        return Assignment(user=user, rule=f"fixed: {user}")
    assert team is not None
    if strategy == "round_robin":
        key = team.name
        start = rt.store.kv_get("round_robin", key) or 0
        n = len(team.members)
        for i in range(n):
            idx = (start + i) % n
            member = team.members[idx]
            if member.capacity is not None and load_of(rt, member.user, record.object, step.field) >= member.capacity:
                continue
            rt.store.kv_put("round_robin", key, (idx + 1) % n)
            return Assignment(user=member.user, rule=f"round robin in team {team.name}")
        return _fallback(fallback, f"every member of team {team.name} is at capacity")
    if strategy == "least_loaded":
        available = _available(rt, team.members, record.object, step.field)
        if not available:
            return _fallback(fallback, f"every member of team {team.name} is at capacity")
        member, load = min(available, key=lambda pair: pair[1])
        return Assignment(user=member.user, rule=f"least loaded in team {team.name} ({load} open)")
    # skills
    tags = _as_list(record.fields.get(step.skills_from or ""))
    language = None
    if step.language_from:
        lang_value = record.fields.get(step.language_from)
        language = str(lang_value).strip().lower() if lang_value not in (None, "") else None
    candidates: list[tuple[int, int, int, TeamMember, list[str]]] = []
    for index, member in enumerate(team.members):
        skills = {s.lower() for s in member.skills}
        matched = [t for t in tags if t in skills]
        if not matched:
            continue
        if language is not None and language not in {lang.lower() for lang in member.languages}:
            continue
        load = load_of(rt, member.user, record.object, step.field)
        if member.capacity is not None and load >= member.capacity:
            continue
        candidates.append((load, -len(matched), index, member, matched))
    if not candidates:
        wanted = ", ".join(tags) or "none"
        why = f"no member of team {team.name} has skill {wanted}" + (f" and language {language}" if language else "")
        return _fallback(fallback, why)
    load, _, _, member, matched = min(candidates, key=lambda c: (c[0], c[1], c[2]))
    rule = f"skills: {', '.join(matched)}" + (f"; language: {language}" if language else "")
    return Assignment(user=member.user, rule=rule)


def _fallback(fallback: str | None, why: str) -> Assignment:
    if fallback == "manual_dispatch":
        return Assignment(user=None, rule=f"{why}; manual dispatch", fallback="manual_dispatch")
    if fallback:
        return Assignment(user=fallback, rule=f"{why}; fallback {fallback}")
    return Assignment(user=None, rule=why)
