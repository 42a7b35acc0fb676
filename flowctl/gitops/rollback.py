"""Rollback: publish an earlier tag's content as a new version.

The content comes from git (the tag's tree), not from the runner's stored
versions: the tags are the history of record, and reading them again proves
the rollback target still loads and validates with this flowctl. The result
is a new runner version and a new tag (history only grows, as in Argo CD),
audited "rollback to flows/vK by <who>". Runs in flight keep the version they
started on.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowctl.gitops.apply import ApplyResult, PublishRefused, check_valid, publish
from flowctl.gitops.history import PublishRecord, content_hash_of, read_history, tag_number
from flowctl.gitops.plan import LiveState, Plan, RunnerApi, RunnerTarget, make_plan, read_inflight, read_live
from flowctl.gitops.tree import TreeState, Workspace, open_ref
from flowctl.resources.project import load_config


@dataclass
class PreparedRollback:
    ws: Workspace
    target: PublishRecord
    current: str | None
    state: TreeState
    plan: Plan
    live: LiveState
    publisher: str
    prefix: str

    @property
    def no_changes(self) -> bool:
        return not self.plan.has_changes

    @property
    def summary(self) -> str:
        return f"rollback to {self.target.tag} by {self.publisher}"


def resolve_target(history_entries: list[PublishRecord], prefix: str, to: str) -> PublishRecord:
    """`--to` accepts the tag (flows/v3), or its number with or without the v (3, v3)."""
    wanted = to if tag_number(to, prefix) is not None else f"{prefix}{to.lstrip('vV')}"
    for record in history_entries:
        if record.tag == wanted:
            return record
    known = ", ".join(r.tag for r in history_entries[:5]) or "none yet"
    raise PublishRefused(f"no publish tag '{to}'", hint=f"pick one from `flowctl history` (latest: {known})")


def prepare_rollback(ws: Workspace, runner: RunnerApi, *, to: str | None = None) -> PreparedRollback:
    prefix = load_config(ws.project_root).publish.tag_prefix
    history = read_history(ws, prefix, runner)
    if not history.entries:
        raise PublishRefused(f"nothing to roll back to: there are no publish tags ({prefix}N) yet",
                             hint="publish first with `flowctl apply`")  # fmt: skip
    if to is not None:
        target = resolve_target(history.entries, prefix, to)
    elif history.runner is not None and history.runner.hash is None:
        raise PublishRefused("the runner has nothing applied yet, so there is no previous publish to return to",
                             hint="name the tag to publish: flowctl rollback --to TAG")  # fmt: skip
    else:
        target = _previous(ws, history.entries, history.current)
    with open_ref(ws, target.tag) as state:
        check_valid(state)
    live = read_live(runner)
    plan = make_plan(
        state,
        baseline=live.bundle,
        against="runner",
        runner=RunnerTarget(url=runner.url, version=live.version, hash=live.hash, tag=live.tag),
        inflight=read_inflight(runner),
    )
    return PreparedRollback(ws=ws, target=target, current=history.current, state=state, plan=plan, live=live,
                            publisher=ws.git.identity(), prefix=prefix)  # fmt: skip


def _previous(ws: Workspace, entries: list[PublishRecord], current: str | None) -> PublishRecord:
    """The publish before the current one whose content differs from what runs now."""
    if current is None:
        raise PublishRefused(
            "cannot tell which publish the runner runs now: its live bundle matches no tag (drift)",
            hint="name the target: flowctl rollback --to TAG (see `flowctl history`)",
        )
    now = next(r for r in entries if r.tag == current)
    for record in entries:  # newest first
        if record.number < now.number and content_hash_of(ws, record) != content_hash_of(ws, now):
            return record
    raise PublishRefused(f"nothing to roll back to: {current} is the first publish",
                         hint="pass --to TAG to publish a specific tag")  # fmt: skip


def execute_rollback(prep: PreparedRollback, runner: RunnerApi) -> ApplyResult:
    if prep.no_changes:
        return ApplyResult(
            status="no_changes", action="rollback", previous_version=prep.live.version, commit=prep.state.commit,
            summary=f"the runner already runs the content of {prep.target.tag}", plan=prep.plan,
        )  # fmt: skip
    return publish(
        prep.ws, runner, bundle=prep.state.bundle, plan=prep.plan, expected_version=prep.live.version,
        commit=prep.state.commit, action="rollback", summary=prep.summary, title=prep.summary,
        prefix=prep.prefix, publisher=prep.publisher, rollback_to=prep.target.tag,
    )  # fmt: skip
