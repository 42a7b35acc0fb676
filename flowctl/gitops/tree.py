"""A flows project as committed at a git ref, not as it sits in the working tree.

`plan` and `apply` publish the committed tree at HEAD and `rollback` the tree
of a tag, so a stray edit in the working directory can never leak into a
publish. We extract the ref with `git archive` into a temporary directory and
load it with the same loader `validate` uses, so diagnostics name the same
files and lines.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flowctl.errors import GitError
from flowctl.gitops.git import Git
from flowctl.resources.bundle import Bundle
from flowctl.resources.project import Project, find_root, load_project


@dataclass
class Workspace:
    """Where a project lives inside its git repository."""

    git: Git
    repo_root: Path
    project_root: Path  # the working-tree directory holding flowctl.yaml
    prefix: str  # project_root relative to repo_root ("" when they are the same), POSIX

    @classmethod
    def locate(cls, path: Path | str = ".") -> Workspace:
        start = Path(path)
        if not start.exists():
            raise GitError(f"no such file or directory: {start}", hint="pass the flows repository or a folder inside it")
        project_root = find_root(start)
        git = Git(project_root)
        repo_root = git.toplevel().resolve()
        rel = project_root.resolve().relative_to(repo_root).as_posix()
        return cls(git=Git(repo_root), repo_root=repo_root, project_root=project_root.resolve(), prefix="" if rel == "." else rel)

    def repo_path(self, project_relative: str) -> str:
        """A project-relative path as a repository-relative one (for git pathspecs)."""
        rel = project_relative.strip("/")
        if rel in ("", "."):
            return self.prefix or "."
        return f"{self.prefix}/{rel}" if self.prefix else rel


@dataclass
class TreeState:
    """A project loaded from one commit."""

    ref: str
    commit: str
    project: Project
    bundle: Bundle

    @property
    def content_hash(self) -> str:
        return self.bundle.content_hash()


@contextmanager
def checkout(ws: Workspace, commit: str) -> Iterator[Path]:
    """Yield a temporary directory holding the project as committed in `commit`.

    Only the project's sub-tree is extracted. A commit in which the project
    folder does not exist yet gives an empty directory (an empty project).
    """
    with tempfile.TemporaryDirectory(prefix="flowctl-tree-") as tmp:
        root = Path(tmp)
        if ws.git.path_exists(commit, ws.prefix):
            data = ws.git.archive(commit, ws.prefix)
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                # `git archive` output is trusted, but the data filter also
                # refuses links out of the directory and device files.
                tar.extractall(root, filter="data")
        yield root


@contextmanager
def open_ref(ws: Workspace, ref: str) -> Iterator[TreeState]:
    """The project as committed at `ref`, its files on disk while the block runs.

    Checks that read files beyond the resources (fixtures for flow tests) must
    run inside the block; the loaded models and bundle stay usable after it.
    """
    commit = ws.git.resolve_commit(ref)
    with checkout(ws, commit) as root:
        project = load_project(root)
        yield TreeState(ref=ref, commit=commit, project=project, bundle=Bundle.from_project(project))


def load_ref(ws: Workspace, ref: str) -> TreeState:
    """Load the project as committed at `ref` (a branch, tag or commit)."""
    with open_ref(ws, ref) as state:
        return state


def load_working_tree(ws: Workspace) -> TreeState:
    """The project as it is on disk now, uncommitted edits and new files included."""
    project = load_project(ws.project_root)
    return TreeState(ref="working tree", commit="", project=project, bundle=Bundle.from_project(project))
