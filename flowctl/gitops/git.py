"""A thin, typed wrapper over the git command line.

We shell out to `git` instead of using a library: it is what users and CI
already have, it honours their configuration (identity, credentials for
`push`), and its porcelain output formats are stable. Every failure becomes a
GitError carrying git's own message, never a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flowctl.errors import GitError

# Records of `git for-each-ref` are separated by a byte that cannot occur in a
# tag message (git rejects NUL in messages), fields by another.
_FIELD = "%00"
_RECORD = "%01"


@dataclass(frozen=True)
class TagRecord:
    """An annotated (or lightweight) tag as git stores it."""

    name: str
    commit: str  # the commit the tag points to (peeled)
    tagger: str | None  # "Name <email>" for annotated tags
    tagged_at: str | None  # ISO 8601 from the tagger line
    message: str  # the full message ("" for lightweight tags)


@dataclass(frozen=True)
class StatusEntry:
    """One line of `git status --porcelain=v1`."""

    code: str  # two-letter XY status, e.g. " M", "A ", "??"
    path: str

    @property
    def untracked(self) -> bool:
        return self.code == "??"

    @property
    def description(self) -> str:
        if self.untracked:
            return "untracked"
        letters = {"M": "modified", "A": "added", "D": "deleted", "R": "renamed", "C": "copied", "U": "conflict",
                   "T": "type changed"}  # fmt: skip
        for letter in self.code:
            if letter in letters:
                return letters[letter]
        return "changed"


class Git:
    """Run git in one working directory."""

    def __init__(self, cwd: Path | str) -> None:
        self.cwd = Path(cwd)

    # ----------------------------------------------------------------- plumbing
    def run(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        """Run `git ARGS` and return stdout (without the trailing newline). Raises GitError on failure."""
        proc = self._run(args, input_bytes=input_text.encode() if input_text is not None else None)
        out = proc.stdout.decode("utf-8", errors="replace")
        if check and proc.returncode != 0:
            err = proc.stderr.decode("utf-8", errors="replace").strip() or out.strip()
            raise GitError(f"git {' '.join(args[:2])} failed: {err}")
        return out.rstrip("\n")

    def run_bytes(self, *args: str) -> bytes:
        proc = self._run(args)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", errors="replace").strip()
            raise GitError(f"git {' '.join(args[:2])} failed: {err}")
        return proc.stdout

    def ok(self, *args: str) -> bool:
        """True when `git ARGS` exits 0 (for questions such as "is this an ancestor")."""
        return self._run(args).returncode == 0

    def _run(self, args: tuple[str, ...], input_bytes: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        env = dict(os.environ)
        # Stable, untranslated output and no pager or editor prompts.
        env.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "GIT_EDITOR": "true"})
        try:
            return subprocess.run(
                ["git", *args], cwd=self.cwd, capture_output=True, input=input_bytes, env=env, check=False
            )
        except FileNotFoundError:
            raise GitError("git is not installed or not on PATH", hint="install git; flowctl keeps history in git tags") from None

    # ----------------------------------------------------------------- repository
    def toplevel(self) -> Path:
        proc = self._run(("rev-parse", "--show-toplevel"))
        if proc.returncode != 0:
            raise GitError(
                f"{self.cwd} is not inside a git repository",
                hint="run `git init` and commit your flows; plan, apply and history work on commits and tags",
            )
        return Path(proc.stdout.decode().strip())

    def has_commits(self) -> bool:
        return self.ok("rev-parse", "--verify", "--quiet", "HEAD^{commit}")

    def resolve_commit(self, ref: str) -> str:
        """The full commit id `ref` names. Raises GitError for an unknown ref."""
        proc = self._run(("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"))
        if proc.returncode != 0:
            if ref == "HEAD":
                raise GitError("the repository has no commits yet", hint="commit your flows first: git add . && git commit")
            raise GitError(f"unknown git revision '{ref}'", hint="pass a branch, tag or commit, e.g. main or flows/v3")
        return proc.stdout.decode().strip()

    def short(self, commit: str) -> str:
        return self.run("rev-parse", "--short", commit)

    def current_branch(self) -> str | None:
        """The checked-out branch, or None on a detached HEAD."""
        proc = self._run(("symbolic-ref", "--quiet", "--short", "HEAD"))
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def is_on_branch(self, commit: str, branch: str) -> bool:
        """True when `commit` is reachable from `branch`, locally or on any remote-tracking copy of it."""
        refs = [f"refs/heads/{branch}"] + [
            line for line in self.run("for-each-ref", "--format=%(refname)", "refs/remotes").splitlines()
            if line.endswith(f"/{branch}")
        ]  # fmt: skip
        for ref in refs:
            if self.ok("rev-parse", "--verify", "--quiet", ref) and self.ok("merge-base", "--is-ancestor", commit, ref):
                return True
        return False

    def path_exists(self, commit: str, path: str) -> bool:
        return self.ok("cat-file", "-e", f"{commit}:{path}" if path else f"{commit}^{{tree}}")

    def archive(self, commit: str, path: str = "") -> bytes:
        """A tar of the tree of `commit` (or of its sub-directory `path`)."""
        tree = f"{commit}:{path}" if path else commit
        return self.run_bytes("archive", "--format=tar", tree)

    def status(self, paths: list[str], *, untracked: bool = True) -> list[StatusEntry]:
        """Uncommitted changes under `paths` (relative to this directory)."""
        args = ["status", "--porcelain=v1", "-z", f"--untracked-files={'all' if untracked else 'no'}", "--", *paths]
        raw = self.run(*args)
        entries: list[StatusEntry] = []
        parts = raw.split("\0")
        i = 0
        while i < len(parts):
            item = parts[i]
            i += 1
            if len(item) < 4:
                continue
            code, path = item[:2], item[3:]
            if code[0] in "RC":
                i += 1  # a rename is followed by its source path
            entries.append(StatusEntry(code, path))
        return entries

    def identity(self) -> str:
        """The publisher: `user.name <user.email>` from git config."""
        name = self.run("config", "user.name", check=False).strip()
        email = self.run("config", "user.email", check=False).strip()
        if not name and not email:
            raise GitError(
                "git has no identity to name the publisher",
                hint='set one: git config user.name "Your Name" && git config user.email you@example.com',
            )
        return f"{name} <{email}>" if name and email else (name or f"<{email}>")

    # ----------------------------------------------------------------- tags
    def tags(self, prefix: str) -> list[TagRecord]:
        """Tags whose name starts with `prefix`, with their peeled commit, tagger and message."""
        fmt = _FIELD.join(
            ["%(refname:strip=2)", "%(objectname)", "%(*objectname)", "%(taggername) %(taggeremail)",
             "%(taggerdate:iso-strict)", "%(contents)"]
        ) + _RECORD  # fmt: skip
        raw = self.run("for-each-ref", f"--format={fmt}", f"refs/tags/{prefix}*")
        records: list[TagRecord] = []
        for chunk in raw.split("\x01"):
            chunk = chunk.lstrip("\n")
            if not chunk:
                continue
            name, obj, peeled, tagger, date, message = chunk.split("\x00", 5)
            if not name.startswith(prefix):
                continue
            records.append(
                TagRecord(
                    name=name,
                    commit=peeled or obj,
                    tagger=tagger.strip() or None,
                    tagged_at=date or None,
                    message=message,
                )
            )
        return records

    def create_tag(self, name: str, commit: str, message: str) -> None:
        """Create the annotated tag `name` on `commit`. Refuses to overwrite an existing tag."""
        if self.ok("rev-parse", "--verify", "--quiet", f"refs/tags/{name}"):
            raise GitError(f"tag {name} already exists", hint="fetch tags (git fetch --tags) and try again")
        self.run("tag", "--annotate", "--cleanup=verbatim", "--file=-", name, commit, input_text=message)

    def remotes(self) -> list[str]:
        return [r for r in self.run("remote").splitlines() if r.strip()]

    def push_tag(self, remote: str, tag: str) -> None:
        self.run("push", "--quiet", remote, f"refs/tags/{tag}")

    def fetch_tags(self, remote: str, prefix: str) -> None:
        """Bring the remote's publish tags in, so the next tag number is right across clones."""
        self.run("fetch", "--quiet", "--no-tags", remote, f"+refs/tags/{prefix}*:refs/tags/{prefix}*")


_TRAILER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.*)$")


def parse_trailers(message: str) -> dict[str, str]:
    """The `Key: value` lines of the message's last paragraph (git's trailer convention)."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if not paragraphs:
        return {}
    out: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        m = _TRAILER_RE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out
