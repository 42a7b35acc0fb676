"""Plans: what `apply` would change on the runner, bound to a commit and a runner version.

A plan compares the desired state (the committed tree at HEAD, never the
working tree) with the runner's live bundle, or with the latest publish tag
for `plan --offline`. Saved with `--out plan.json`, it records the commit, the
runner URL and the runner version it was made against, and the content hash
of the desired bundle, so `apply plan.json` can refuse a plan that no longer
describes what would happen (Terraform's "saved plan is stale").
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, ValidationError

from flowctl import __version__
from flowctl.errors import FlowctlError, RunnerError
from flowctl.gitops.diff import BundleDiff, FieldChange, diff_bundles
from flowctl.gitops.tree import TreeState, Workspace, load_ref
from flowctl.resources.bundle import Bundle

PLAN_FORMAT_VERSION = 1

Action = Literal["create", "update", "delete"]
_ACTIONS: dict[str, Action] = {"added": "create", "changed": "update", "removed": "delete"}


class RunnerApi(Protocol):
    """The part of the runner client that gitops needs (docs/architecture.md, "Runner HTTP API")."""

    @property
    def url(self) -> str: ...

    def get_bundle(self) -> dict[str, Any]: ...

    def put_bundle(self, bundle: Any, expected_version: int, meta: Mapping[str, Any] | None = None) -> dict[str, Any]: ...

    def inflight(self) -> dict[str, dict[str, int]]: ...


class RunnerTarget(BaseModel):
    """The runner a plan was made against, as it was at that moment."""

    url: str
    version: int = Field(description="the live bundle version (0 when nothing was applied)")
    hash: str | None = Field(description="content hash of the live bundle")
    tag: str | None = Field(None, description="the publish tag the runner says the live version came from")


class TagTarget(BaseModel):
    """The publish tag an offline plan was made against (None: no publish yet)."""

    tag: str | None
    commit: str | None
    hash: str | None


class PlannedChange(BaseModel):
    kind: str
    name: str
    action: Action
    fields: list[FieldChange] = Field(default_factory=list)
    # Flows only: runs in flight (running or waiting) per bundle version; they
    # finish on that version whatever this plan changes.
    inflight: dict[str, int] = Field(default_factory=dict)

    @property
    def inflight_total(self) -> int:
        return sum(self.inflight.values())


class PlanSummary(BaseModel):
    add: int = 0
    change: int = 0
    delete: int = 0

    @property
    def total(self) -> int:
        return self.add + self.change + self.delete

    def line(self) -> str:
        if not self.total:
            return "No changes."
        return f"Plan: {self.add} to add, {self.change} to change, {self.delete} to delete."


class Plan(BaseModel):
    """A plan, serialised as plan.json (docs/formats/plan-json.md)."""

    format_version: int = PLAN_FORMAT_VERSION
    flowctl_version: str = __version__
    created_at: dt.datetime
    project: str | None = None
    commit: str = Field(description="the commit whose tree is the desired state")
    branch: str | None = None
    desired_hash: str
    against: Literal["runner", "tag"]
    runner: RunnerTarget | None = None
    baseline: TagTarget | None = None
    inflight_total: int = Field(0, description="every run in flight on the runner; each stays on its version")
    changes: list[PlannedChange] = Field(default_factory=list)
    summary: PlanSummary = Field(default_factory=PlanSummary)

    @property
    def has_changes(self) -> bool:
        return self.summary.total > 0

    @property
    def baseline_hash(self) -> str | None:
        if self.runner is not None:
            return self.runner.hash
        return self.baseline.hash if self.baseline else None

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: Path | str) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> Plan:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise FlowctlError(f"cannot read plan file {p}: {exc.strerror}", hint="make one with: flowctl plan --out plan.json") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FlowctlError(f"{p}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}", hint="make one with: flowctl plan --out plan.json") from None
        if isinstance(data, dict) and data.get("format_version") not in (None, PLAN_FORMAT_VERSION):
            raise FlowctlError(
                f"{p}: plan format_version {data.get('format_version')} is not supported (expected {PLAN_FORMAT_VERSION})",
                hint="make the plan with the same flowctl version that applies it",
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(x) for x in first["loc"]) or "(top level)"
            raise FlowctlError(f"{p}: not a flowctl plan: {where}: {first['msg']}", hint="make one with: flowctl plan --out plan.json") from None


def summarize(diff: BundleDiff) -> PlanSummary:
    counts = diff.counts()
    return PlanSummary(add=counts.added, change=counts.changed, delete=counts.removed)


def planned_changes(diff: BundleDiff, inflight: dict[str, dict[str, int]] | None = None) -> list[PlannedChange]:
    """The diff as create/update/delete actions, with in-flight counts for changed or deleted flows."""
    inflight = inflight or {}
    out: list[PlannedChange] = []
    for r in diff.resources:
        action = _ACTIONS[r.change]
        counts: dict[str, int] = {}
        if r.kind == "flow" and action != "create":
            counts = {str(v): int(n) for v, n in sorted(inflight.get(r.name, {}).items(), key=lambda kv: int(kv[0])) if n}
        out.append(PlannedChange(kind=r.kind, name=r.name, action=action, fields=r.fields, inflight=counts))
    return out


class LiveState(BaseModel):
    """What the runner runs now (GET /v1/bundle), reduced to what gitops compares."""

    version: int
    hash: str | None
    bundle: Bundle
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        tag = self.meta.get("tag")
        return str(tag) if tag else None


def read_live(runner: RunnerApi) -> LiveState:
    """The runner's live bundle. A runner with nothing applied yet has version 0 and an empty bundle."""
    data = runner.get_bundle()
    try:
        version = int(data.get("version") or 0)
        raw = data.get("bundle")
        bundle = Bundle.model_validate(raw) if raw else Bundle()
    except (ValidationError, TypeError, ValueError) as exc:
        raise RunnerError(f"the runner at {runner.url} answered GET /v1/bundle with an unexpected body: {exc}") from None
    # The hash is recomputed here, not trusted from the answer: "no changes" must
    # mean equal content under this flowctl's hashing (SPEC §10.9).
    return LiveState(version=version, hash=bundle.content_hash() if raw else None, bundle=bundle, meta=dict(data.get("meta") or {}))


def read_inflight(runner: RunnerApi) -> dict[str, dict[str, int]]:
    flows = runner.inflight() or {}
    return {str(f): {str(v): int(n) for v, n in (versions or {}).items()} for f, versions in flows.items()}


def make_plan(
    desired: TreeState,
    *,
    baseline: Bundle,
    against: Literal["runner", "tag"],
    runner: RunnerTarget | None = None,
    tag: TagTarget | None = None,
    inflight: dict[str, dict[str, int]] | None = None,
    branch: str | None = None,
    now: dt.datetime | None = None,
) -> Plan:
    diff = diff_bundles(baseline, desired.bundle)
    inflight = inflight or {}
    return Plan(
        created_at=(now or dt.datetime.now(dt.UTC)).replace(microsecond=0),
        project=desired.project.config.project,
        commit=desired.commit,
        branch=branch,
        desired_hash=desired.content_hash,
        against=against,
        runner=runner,
        baseline=tag,
        inflight_total=sum(sum(v.values()) for v in inflight.values()),
        changes=planned_changes(diff, inflight),
        summary=summarize(diff),
    )


def plan_against_runner(
    ws: Workspace, desired: TreeState, runner: RunnerApi, *, branch: str | None = None
) -> tuple[Plan, LiveState]:
    live = read_live(runner)
    inflight = read_inflight(runner)
    plan = make_plan(
        desired,
        baseline=live.bundle,
        against="runner",
        runner=RunnerTarget(url=runner.url, version=live.version, hash=live.hash, tag=live.tag),
        inflight=inflight,
        branch=branch,
    )
    return plan, live


def plan_offline(ws: Workspace, desired: TreeState, prefix: str, *, branch: str | None = None) -> Plan:
    """Compare with the latest publish tag instead of the runner (SPEC §10.9: CI without runner access)."""
    from flowctl.gitops.history import publish_tags

    tags = publish_tags(ws, prefix)
    if tags:
        latest = tags[-1]
        state = load_ref(ws, latest.name)
        baseline, target = state.bundle, TagTarget(tag=latest.name, commit=state.commit, hash=state.content_hash)
    else:
        baseline, target = Bundle(), TagTarget(tag=None, commit=None, hash=None)
    return make_plan(desired, baseline=baseline, against="tag", tag=target, branch=branch)
