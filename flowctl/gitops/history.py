"""Publish history: the annotated tags `<prefix>N` that apply and rollback create.

Git tags are the history (SPEC: "Git tags are the publish and rollback
history"), so it survives the runner's database and travels with the repo.
Each tag message ends with trailers (Action, Publisher, Time, Commit, Summary,
Content-Hash) that `history` reads back; the content hash is what tells which
publish the runner runs now, because "the same" means the same content, not
the same commit (SPEC §10.9).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from flowctl.gitops.git import TagRecord, parse_trailers
from flowctl.gitops.plan import RunnerApi, read_live
from flowctl.gitops.tree import Workspace, load_ref

HistoryAction = Literal["apply", "rollback", "unknown"]


class PublishRecord(BaseModel):
    tag: str
    number: int
    action: HistoryAction
    publisher: str | None
    time: str | None
    commit: str
    summary: str | None
    content_hash: str | None
    rollback_to: str | None = None
    runner_version: int | None = Field(None, description="the runner bundle version this publish created")
    current: bool = False


class RunnerState(BaseModel):
    url: str
    version: int
    hash: str | None


class History(BaseModel):
    """Newest publish first."""

    prefix: str
    entries: list[PublishRecord] = Field(default_factory=list)
    runner: RunnerState | None = None
    current: str | None = Field(None, description="the tag whose content the runner runs now")
    drift: bool = Field(False, description="the runner runs content that matches no publish tag")


def tag_number(name: str, prefix: str) -> int | None:
    m = re.fullmatch(re.escape(prefix) + r"(\d+)", name)
    return int(m.group(1)) if m else None


def publish_tags(ws: Workspace, prefix: str) -> list[TagRecord]:
    """Publish tags (`<prefix>N` only, not `<prefix>1-rc`), oldest first by N."""
    found = [(n, t) for t in ws.git.tags(prefix) if (n := tag_number(t.name, prefix)) is not None]
    return [t for _, t in sorted(found, key=lambda x: x[0])]


def next_tag(ws: Workspace, prefix: str) -> str:
    tags = publish_tags(ws, prefix)
    last = tag_number(tags[-1].name, prefix) if tags else 0
    return f"{prefix}{(last or 0) + 1}"


def record_from_tag(tag: TagRecord, prefix: str) -> PublishRecord:
    trailers = parse_trailers(tag.message)
    action = trailers.get("Action", "unknown")
    runner_version = trailers.get("Runner-Version")
    return PublishRecord(
        tag=tag.name,
        number=tag_number(tag.name, prefix) or 0,
        action=action if action in ("apply", "rollback") else "unknown",
        publisher=trailers.get("Publisher") or tag.tagger,
        time=trailers.get("Time") or tag.tagged_at,
        commit=trailers.get("Commit") or tag.commit,
        summary=trailers.get("Summary") or next(iter(tag.message.strip().splitlines()), None),
        content_hash=trailers.get("Content-Hash"),
        rollback_to=trailers.get("Rollback-To"),
        runner_version=int(runner_version) if runner_version and runner_version.isdigit() else None,
    )


def content_hash_of(ws: Workspace, record: PublishRecord) -> str:
    """The tag's content hash: from its trailer, else computed from its tree (tags made by hand)."""
    if record.content_hash:
        return record.content_hash
    record.content_hash = load_ref(ws, record.tag).content_hash
    return record.content_hash


def read_history(ws: Workspace, prefix: str, runner: RunnerApi | None = None) -> History:
    """Every publish, newest first; with a runner, mark the one it runs now (or drift)."""
    records = [record_from_tag(t, prefix) for t in publish_tags(ws, prefix)]
    records.reverse()
    history = History(prefix=prefix, entries=records)
    if runner is None:
        return history
    live = read_live(runner)
    history.runner = RunnerState(url=runner.url, version=live.version, hash=live.hash)
    if live.hash is None:
        return history
    mark_current(ws, history, live.hash)
    return history


def mark_current(ws: Workspace, history: History, live_hash: str) -> None:
    # Newest first: when two publishes share content (a rollback), the newest is the one that made it live.
    for record in history.entries:
        if content_hash_of(ws, record) == live_hash:
            record.current = True
            history.current = record.tag
            history.drift = False
            return
    history.drift = True
