"""Apply: publish the committed tree at HEAD to the runner and tag it.

The order is deliberate. Cheap local refusals first (uncommitted tree, wrong
branch, invalid tree, failing flow tests), then the runner (stale plan, "no
changes"), then the publish itself: `PUT /v1/bundle` with the version the
plan saw as `expected_version`, so of two concurrent applies exactly one wins
and the other gets 409 and a clear refusal. The tag is created only after the
runner accepted the bundle, so a tag always names something that was live.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from flowctl.check.validate import check_project
from flowctl.errors import FlowctlError, GitError
from flowctl.gitops.history import next_tag
from flowctl.gitops.plan import LiveState, Plan, RunnerApi, plan_against_runner
from flowctl.gitops.tree import TreeState, Workspace, open_ref
from flowctl.resources.bundle import Bundle, TypedBundle
from flowctl.resources.project import Project, load_config
from flowctl.runner.client import RunnerConflictError

# How many diagnostics / failing tests a refusal lists before "and N more".
_LIST_LIMIT = 5


class PublishRefused(FlowctlError):
    """apply or rollback will not publish (dirty tree, wrong branch, invalid tree, failing tests, stale plan)."""


class ApplyResult(BaseModel):
    """What apply (or rollback) did. Printed by `--format json` (docs/gitops.md)."""

    status: Literal["applied", "no_changes"]
    action: Literal["apply", "rollback"] = "apply"
    tag: str | None = None
    version: int | None = Field(None, description="the runner bundle version created")
    previous_version: int
    commit: str
    publisher: str | None = None
    time: str | None = None
    summary: str
    pushed_to: str | None = None
    warnings: list[str] = Field(default_factory=list)
    plan: Plan


# --------------------------------------------------------------------------- refusals


def check_clean(ws: Workspace) -> list[str]:
    """Refuse tracked, uncommitted changes under the project's paths; return warnings for untracked files."""
    config = load_config(ws.project_root)
    p = config.paths
    paths = sorted({ws.repo_path(x) for x in (p.flows, p.templates, p.objects, p.tests, p.fixtures)})
    paths.append(ws.repo_path("flowctl.yaml"))
    entries = ws.git.status(paths)
    dirty = [e for e in entries if not e.untracked]
    if dirty:
        listed = ", ".join(f"{e.path} ({e.description})" for e in dirty[:_LIST_LIMIT])
        more = f" and {len(dirty) - _LIST_LIMIT} more" if len(dirty) > _LIST_LIMIT else ""
        raise PublishRefused(
            f"uncommitted changes: {listed}{more}; apply publishes the committed tree at HEAD, not the working tree",
            hint="commit them (git commit -am '...') or discard them (git restore PATH), then apply again",
        )
    untracked = [e.path for e in entries if e.untracked]
    if untracked:
        listed = ", ".join(untracked[:_LIST_LIMIT]) + (f" and {len(untracked) - _LIST_LIMIT} more" if len(untracked) > _LIST_LIMIT else "")
        return [f"untracked files are not published: {listed}"]
    return []


def check_branch(ws: Workspace, commit: str, branch: str, *, allow_branch: bool) -> None:
    if allow_branch or ws.git.is_on_branch(commit, branch):
        return
    current = ws.git.current_branch()
    where = f"branch '{current}'" if current else "a detached HEAD"
    raise PublishRefused(
        f"HEAD {ws.git.short(commit)} (on {where}) is not on the publish branch '{branch}'",
        hint=f"merge the change into '{branch}' (the reviewed pull request) and apply from there, "
        "or pass --allow-branch to publish this commit anyway",
    )


def check_valid(state: TreeState) -> None:
    """Refuse a tree `flowctl validate` rejects. Run inside `open_ref`: some checks read fixture files."""
    errors = [d for d in check_project(state.project) if d.severity == "error"]
    if not errors:
        return
    lines = "\n".join(f"  {d.location}: {d.summary}" for d in errors[:_LIST_LIMIT])
    more = f"\n  … and {len(errors) - _LIST_LIMIT} more" if len(errors) > _LIST_LIMIT else ""
    n = len(errors)
    raise PublishRefused(
        f"the tree at {state.ref} ({state.commit[:7]}) is invalid: {n} error{'s' if n != 1 else ''}\n{lines}{more}",
        hint="run `flowctl validate`, fix the errors and commit",
    )


@dataclass
class TestOutcome:
    __test__ = False  # not a pytest class

    total: int
    failed: list[str] = field(default_factory=list)


# A function that runs every flow test of the project checked out at a directory.
TestRunner = Callable[[Project], TestOutcome]


def run_project_tests(project: Project) -> TestOutcome:
    """Every flow test of the project, on the simulator `flowctl test` uses (same engine as the runner)."""
    from flowctl.sim.flowtest import run_flow_test

    bundle = TypedBundle.from_project(project)
    results = [run_flow_test(project, bundle, test, source)
               for test, source in zip(project.tests, project.test_sources, strict=True)]  # fmt: skip
    failed = [f"{r.name} ({r.file}:{r.line})" for r in results if not r.passed]
    return TestOutcome(total=len(results), failed=failed)


def check_tests(state: TreeState, tests: TestRunner) -> None:
    """Refuse failing flow tests. Run inside `open_ref`: fixtures are read from the committed tree."""
    if not state.project.tests:
        return
    outcome = tests(state.project)
    if not outcome.failed:
        return
    names = "; ".join(outcome.failed[:_LIST_LIMIT]) + (" …" if len(outcome.failed) > _LIST_LIMIT else "")
    raise PublishRefused(
        f"flow tests fail at {state.commit[:7]}: {len(outcome.failed)} of {outcome.total} failed: {names}",
        hint="run `flowctl test` to see why, fix and commit",
    )


def check_plan_file(plan: Plan, head: str, live: LiveState, runner: RunnerApi, desired_hash: str) -> None:
    """Refuse a saved plan that no longer describes what apply would do."""
    if plan.against != "runner" or plan.runner is None:
        raise PublishRefused(
            "the plan was made with --offline (against a tag, not the runner) and cannot be applied",
            hint="make a plan against the runner: flowctl plan --out plan.json",
        )
    if plan.commit != head:
        raise PublishRefused(
            f"stale plan: it was made for commit {plan.commit[:7]} but HEAD is {head[:7]}",
            hint="run `flowctl plan --out plan.json` again on this commit and review it",
        )
    if plan.runner.url.rstrip("/") != runner.url.rstrip("/"):
        raise PublishRefused(
            f"the plan was made against the runner at {plan.runner.url}, not {runner.url}",
            hint="apply with the same --runner the plan was made with, or plan again",
        )
    if plan.runner.version != live.version:
        raise PublishRefused(
            f"stale plan: it was made against runner version {plan.runner.version}, "
            f"but the runner is now at version {live.version} (someone applied or rolled back since)",
            hint="run `flowctl plan --out plan.json` again and review the new plan",
        )
    if plan.desired_hash != desired_hash:
        raise PublishRefused(
            f"the plan's content hash does not match the tree at {head[:7]}",
            hint="the plan was edited or made by another flowctl version; plan again",
        )


# --------------------------------------------------------------------------- publishing


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def tag_message(
    *,
    tag: str,
    title: str,
    plan: Plan,
    action: Literal["apply", "rollback"],
    publisher: str,
    time: str,
    commit: str,
    summary: str,
    version: int,
    rollback_to: str | None = None,
) -> str:
    """The annotated tag message: a readable title and change list, then machine-read trailers."""
    changes = "\n".join(f"{ {'create': '+', 'update': '~', 'delete': '-'}[c.action] } {c.kind} {c.name}" for c in plan.changes)
    trailers = [
        f"Action: {action}",
        f"Publisher: {publisher}",
        f"Time: {time}",
        f"Commit: {commit}",
        f"Summary: {summary}",
        f"Content-Hash: {plan.desired_hash}",
        f"Runner-Version: {version}",
    ]
    if rollback_to:
        trailers.append(f"Rollback-To: {rollback_to}")
    body = [f"{tag}: {title}", "", plan.summary.line()]
    if changes:
        body += ["", changes]
    return "\n".join([*body, "", *trailers]) + "\n"


def _remote(ws: Workspace) -> str | None:
    remotes = ws.git.remotes()
    if not remotes:
        return None
    return "origin" if "origin" in remotes else remotes[0]


def publish(
    ws: Workspace,
    runner: RunnerApi,
    *,
    bundle: Bundle,
    plan: Plan,
    expected_version: int,
    commit: str,
    action: Literal["apply", "rollback"],
    summary: str,
    title: str,
    prefix: str,
    publisher: str,
    rollback_to: str | None = None,
    warnings: list[str] | None = None,
) -> ApplyResult:
    """Push `bundle` to the runner with optimistic concurrency, then tag `commit` and push the tag."""
    warnings = list(warnings or [])
    remote = _remote(ws)
    if remote is not None:
        try:
            ws.git.fetch_tags(remote, prefix)
        except GitError as exc:
            warnings.append(f"could not fetch tags from {remote} ({exc.message}); the tag number is based on local tags")
    tag = next_tag(ws, prefix)
    time = _now()
    meta = {"tag": tag, "commit": commit, "publisher": publisher, "summary": summary, "action": action}
    try:
        answer = runner.put_bundle(bundle.model_dump(mode="json"), expected_version, meta)
    except RunnerConflictError as exc:
        now = f" to {exc.live_version}" if exc.live_version is not None else ""
        raise PublishRefused(
            f"the runner's version moved from {expected_version}{now} while publishing: another apply or rollback "
            "won the race; nothing was published by this one",
            hint="run `flowctl plan` to see the new live state, then apply again",
        ) from None
    version = int(answer.get("version", 0))
    message = tag_message(
        tag=tag, title=title, plan=plan, action=action, publisher=publisher, time=time, commit=commit,
        summary=summary, version=version, rollback_to=rollback_to,
    )  # fmt: skip
    try:
        ws.git.create_tag(tag, commit, message)
    except GitError as exc:
        raise GitError(
            f"the runner now runs version {version}, but creating tag {tag} failed: {exc.message}",
            hint=f"create it by hand so history stays complete: git tag -a {tag} {commit[:12]}",
        ) from None
    pushed_to = None
    if remote is not None:
        try:
            ws.git.push_tag(remote, tag)
        except GitError as exc:
            raise GitError(
                f"published version {version} and created tag {tag}, but pushing it to {remote} failed: {exc.message}",
                hint=f"push it by hand: git push {remote} {tag}",
            ) from None
        pushed_to = remote
    return ApplyResult(
        status="applied", action=action, tag=tag, version=version, previous_version=expected_version,
        commit=commit, publisher=publisher, time=time, summary=summary, pushed_to=pushed_to,
        warnings=warnings, plan=plan,
    )  # fmt: skip


# --------------------------------------------------------------------------- apply


@dataclass
class PreparedApply:
    """Everything checked; `execute_apply` publishes exactly this."""

    ws: Workspace
    state: TreeState
    plan: Plan
    live: LiveState
    publisher: str
    prefix: str
    warnings: list[str]

    @property
    def no_changes(self) -> bool:
        return not self.plan.has_changes


def prepare_apply(
    ws: Workspace,
    runner: RunnerApi,
    *,
    plan_file: Plan | None = None,
    allow_branch: bool = False,
    tests: TestRunner = run_project_tests,
    on_warning: Callable[[str], None] | None = None,
) -> PreparedApply:
    """Run every refusal check and make the plan that apply will publish.

    `on_warning` hears each warning as it is found, so a later refusal does not hide it.
    """
    if not ws.git.has_commits():
        raise PublishRefused("the repository has no commits yet", hint="commit your flows first: git add . && git commit")
    warnings = check_clean(ws)
    for w in warnings:
        if on_warning is not None:
            on_warning(w)
    with open_ref(ws, "HEAD") as state:
        head = state.commit
        config = state.project.config
        check_branch(ws, head, config.publish.branch, allow_branch=allow_branch)
        check_valid(state)
        check_tests(state, tests)
    plan, live = plan_against_runner(ws, state, runner, branch=ws.git.current_branch())
    if plan_file is not None:
        check_plan_file(plan_file, head, live, runner, state.content_hash)
        plan = plan_file
    publisher = ws.git.identity()
    return PreparedApply(ws=ws, state=state, plan=plan, live=live, publisher=publisher,
                         prefix=config.publish.tag_prefix, warnings=warnings)  # fmt: skip


def execute_apply(prep: PreparedApply, runner: RunnerApi) -> ApplyResult:
    if prep.no_changes:
        return ApplyResult(
            status="no_changes", previous_version=prep.live.version, commit=prep.state.commit,
            summary=prep.plan.summary.line(), warnings=prep.warnings, plan=prep.plan,
        )  # fmt: skip
    short = prep.ws.git.short(prep.state.commit)
    return publish(
        prep.ws, runner, bundle=prep.state.bundle, plan=prep.plan, expected_version=prep.live.version,
        commit=prep.state.commit, action="apply", summary=prep.plan.summary.line(),
        title=f"apply {short} by {prep.publisher}", prefix=prep.prefix, publisher=prep.publisher,
        warnings=prep.warnings,
    )  # fmt: skip
