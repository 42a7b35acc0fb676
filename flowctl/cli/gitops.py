"""`flowctl diff | plan | apply | rollback | history`: flows published like infrastructure.

Thin wrappers over flowctl.gitops; the rendering lives in flowctl.render.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from flowctl.cli.common import console, err_console, handle_errors, print_json
from flowctl.cli.ops import _show as show_table
from flowctl.errors import FlowctlError
from flowctl.gitops.apply import ApplyResult, check_valid, execute_apply, prepare_apply
from flowctl.gitops.diff import diff_bundles
from flowctl.gitops.history import read_history
from flowctl.gitops.plan import Plan, plan_against_runner, plan_offline
from flowctl.gitops.rollback import execute_rollback, prepare_rollback
from flowctl.gitops.tree import TreeState, Workspace, load_ref, load_working_tree, open_ref
from flowctl.render.diff import diff_json, diff_text
from flowctl.render.history import history_json, history_table
from flowctl.render.plan import plan_json, plan_markdown, plan_text
from flowctl.resources.project import load_config
from flowctl.runner.client import RunnerClient


class DiffFormat(StrEnum):
    text = "text"
    json = "json"


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


ProjectOpt = typer.Option(Path("."), "--project", "-C", help="The flows repository (or a folder inside it).")
RunnerOpt = typer.Option(None, "--runner", help="Runner URL (default: FLOWCTL_RUNNER_URL, then flowctl.yaml).")
TokenOpt = typer.Option(None, "--token", help="Bearer token (default: FLOWCTL_TOKEN, then .flowctl/admin.token).")


def connect(ws: Workspace, runner_url: str | None, token: str | None) -> RunnerClient:
    """The runner client, addressed per SPEC §9 (--runner, FLOWCTL_RUNNER_URL, flowctl.yaml; token likewise)."""
    return RunnerClient.from_options(runner_url, token, start=ws.project_root)


def _warn(messages: list[str]) -> None:
    for m in messages:
        err_console.print(f"[yellow]warning:[/] {m}", markup=True)


def _tree_warnings(state: TreeState) -> None:
    errors = [d for d in state.project.diagnostics if d.severity == "error"]
    if errors:
        files = sorted({d.range.file for d in errors})
        _warn([f"{state.ref}: {len(errors)} invalid resource file(s) left out of the comparison: {', '.join(files[:5])}"])


# --------------------------------------------------------------------------- diff


@handle_errors
def diff(
    ref: str | None = typer.Argument(None, metavar="REF", help="Compare this ref with the working tree (default HEAD)."),
    ref2: str | None = typer.Argument(None, metavar="REF2", help="Compare REF with this ref instead of the working tree."),
    fmt: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="text or json."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when there are differences (like git diff)."),
    project: Path = ProjectOpt,
) -> None:
    """Resource-level and field-level diff between git refs or the working tree.

    Example:

        flowctl diff                      # HEAD → working tree
        flowctl diff flows/v3 HEAD --format json
    """
    ws = Workspace.locate(project)
    before = load_ref(ws, ref or "HEAD")
    after = load_ref(ws, ref2) if ref2 else load_working_tree(ws)
    for state in (before, after):
        _tree_warnings(state)
    result = diff_bundles(before.bundle, after.bundle)

    def label(s: TreeState) -> str:
        return s.ref if not s.commit else f"{s.ref} ({s.commit[:7]})"

    if fmt is DiffFormat.json:
        print_json(diff_json(result, {"ref": before.ref, "commit": before.commit or None},
                             {"ref": after.ref, "commit": after.commit or None}))  # fmt: skip
    else:
        console.print(diff_text(result, label(before), label(after)), end="")
    if exit_code and not result.empty:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- plan


@handle_errors
def plan(
    out: Path | None = typer.Option(None, "--out", "-o", help="Save the plan as JSON for `flowctl apply PLAN_FILE`."),
    fmt: PlanFormat = typer.Option(PlanFormat.text, "--format", "-f", help="text, json or markdown (a PR comment)."),
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode", help="Exit 0 no changes, 2 changes, 1 error."),
    offline: bool = typer.Option(False, "--offline", help="Compare with the latest publish tag instead of the runner."),
    project: Path = ProjectOpt,
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
) -> None:
    """What apply would change on the runner: the committed tree at HEAD against the live bundle.

    Example:

        flowctl plan --out plan.json && flowctl apply plan.json
        flowctl plan --offline --format markdown >> "$GITHUB_STEP_SUMMARY"
    """
    ws = Workspace.locate(project)
    with open_ref(ws, "HEAD") as desired:
        # A plan that silently dropped an invalid file would show its resources as deleted.
        check_valid(desired)
    branch = ws.git.current_branch()
    if offline:
        result = plan_offline(ws, desired, desired.project.config.publish.tag_prefix, branch=branch)
    else:
        with connect(ws, runner, token) as client:
            result, _ = plan_against_runner(ws, desired, client, branch=branch)
    if out is not None:
        result.save(out)
    _render_plan(result, fmt, desired)
    if out is not None and fmt is PlanFormat.text:
        err_console.print(f"Saved the plan to {out}. Apply exactly this plan with: flowctl apply {out}")
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(2)


def _render_plan(result: Plan, fmt: PlanFormat, desired: TreeState) -> None:
    if fmt is PlanFormat.json:
        print_json(plan_json(result))
    elif fmt is PlanFormat.markdown:
        sys.stdout.write(plan_markdown(result, desired.project.flows))
    else:
        console.print(plan_text(result), end="")


# --------------------------------------------------------------------------- apply / rollback


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise FlowctlError("refusing to publish without confirmation", hint="pass --yes to apply non-interactively (CI)")
    if not typer.confirm(question, default=False):
        raise FlowctlError("cancelled; nothing was published")


def _report(result: ApplyResult, fmt: DiffFormat, already_warned: list[str] | None = None) -> None:
    _warn([w for w in result.warnings if w not in (already_warned or [])])
    if fmt is DiffFormat.json:
        print_json(result.model_dump(mode="json"))
        return
    if result.status == "no_changes":
        if result.action == "rollback":
            console.print(f"[green]No changes:[/] {result.summary} (version {result.previous_version}); no tag created.", markup=True)
        else:
            console.print(f"[green]No changes.[/] The runner already runs this content (version {result.previous_version}); no tag created.", markup=True)
        return
    pushed = f", pushed to {result.pushed_to}" if result.pushed_to else ""
    console.print(
        f"[bold green]{'Rolled back' if result.action == 'rollback' else 'Applied'}:[/] runner version "
        f"{result.version} (was {result.previous_version}), tagged [bold]{result.tag}[/]{pushed}.",
        markup=True,
    )


@handle_errors
def apply(
    plan_file: Path | None = typer.Argument(None, metavar="PLAN_FILE", help="A plan saved with `flowctl plan --out`; refused when stale."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (CI)."),
    allow_branch: bool = typer.Option(False, "--allow-branch", help="Publish a commit that is not on the publish branch."),
    fmt: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="text or json (the result)."),
    project: Path = ProjectOpt,
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Publish the committed tree at HEAD to the runner and tag it <prefix>N.

    Refuses an uncommitted tree, a commit not on the publish branch, an invalid
    tree, failing flow tests and a stale plan.

    Example:

        flowctl apply --yes
        flowctl plan --out plan.json && flowctl apply plan.json
    """
    ws = Workspace.locate(project)
    saved = Plan.load(plan_file) if plan_file is not None else None
    with connect(ws, runner, token) as client:
        prep = prepare_apply(ws, client, plan_file=saved, allow_branch=allow_branch, on_warning=lambda w: _warn([w]))
        if not prep.no_changes:
            if fmt is DiffFormat.text:
                console.print(plan_text(prep.plan), end="")
            # A saved plan was the reviewed artefact, so it applies without a prompt (as in Terraform).
            _confirm("Apply these changes to the runner?", yes or saved is not None)
        result = execute_apply(prep, client)
    _report(result, fmt, already_warned=prep.warnings)


@handle_errors
def rollback(
    to: str | None = typer.Option(None, "--to", help="The tag to restore (flows/v3, v3 or 3); default the publish before the live one."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    fmt: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="text or json (the result)."),
    project: Path = ProjectOpt,
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Publish an earlier tag's content (read from git) as a new version and tag. Runs in flight keep their version.

    Example:

        flowctl rollback --yes
        flowctl rollback --to flows/v1 --yes
    """
    ws = Workspace.locate(project)
    with connect(ws, runner, token) as client:
        prep = prepare_rollback(ws, client, to=to)
        if not prep.no_changes:
            if fmt is DiffFormat.text:
                console.print(f"[bold]{prep.summary}[/] (live: {prep.current or 'drift'})", markup=True)
                console.print(plan_text(prep.plan), end="")
            _confirm(f"Roll back to {prep.target.tag}?", yes)
        result = execute_rollback(prep, client)
    _report(result, fmt)


@handle_errors
def history(
    fmt: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="text or json."),
    limit: int = typer.Option(0, "--limit", "-n", min=0, help="Show only the newest N publishes (0: all)."),
    offline: bool = typer.Option(False, "--offline", help="Do not ask the runner which publish is live."),
    project: Path = ProjectOpt,
    runner: str | None = RunnerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Publishes and rollbacks (newest first), marking the one the runner runs now, or drift.

    Example:

        flowctl history
        flowctl history --offline --format json
    """
    ws = Workspace.locate(project)
    prefix = load_config(ws.project_root).publish.tag_prefix
    if offline:
        result = read_history(ws, prefix)
    else:
        with connect(ws, runner, token) as client:
            result = read_history(ws, prefix, client)
    if limit:
        result.entries = result.entries[:limit]
    if fmt is DiffFormat.json:
        print_json(history_json(result))
    else:
        show_table(history_table(result))  # piped (CI logs): one line per publish, not wrapped at 80 columns


def register(app: typer.Typer) -> None:
    for command in (diff, plan, apply, rollback, history):
        app.command(no_args_is_help=False)(command)

