"""Git worktrees for sessions (``launch --worktree``): create, inspect, and remove only what is merged.

Every git call is an argument list (never a shell) with the caller's ``GIT_DIR``-style variables removed, so
git looks only at the directory it is given. Nothing here deletes work that is not merged into the base: a
worktree goes only when it is clean and its branch (and HEAD) are ancestors of the base, and its branch is
deleted only while it still points at the commit that was checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clawunits import proc
from clawunits.errors import CommandFailed, CommandNotFound, CommandTimedOut, GitError, InvalidInput, StateError
from clawunits.service import disk
from clawunits.state.models import WorktreeInfo

BRANCH_PREFIX = "clawunits/"
GIT_TIMEOUT_SEC = 120.0
# Untracked files larger than this are listed without counting their lines.
MAX_COUNTED_BYTES = 8 * 1024 * 1024
# Commits, status entries and files listed at most (the counts and totals cover all of them).
MAX_LISTED = 200
# Variables that would point git at another repository, index or work tree than the one given.
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


@dataclass(frozen=True)
class Checkout:
    """A launch workdir inside a git work tree, and the base a session's branch is cut from."""

    workdir: str
    toplevel: str
    base: str
    base_commit: str

    @property
    def subdir(self) -> str:
        """Where the workdir sits inside the repository ("" at its top)."""
        rel = os.path.relpath(self.workdir, self.toplevel)
        return "" if rel == "." else rel


@dataclass(frozen=True)
class FileChange:
    """One file of the diff against the base; ``added``/``deleted`` are None for binary files."""

    path: str
    added: int | None
    deleted: int | None
    untracked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "added": self.added, "deleted": self.deleted, "untracked": self.untracked}


@dataclass(frozen=True)
class WorktreeView:
    """What ``clawunits worktree`` shows about a session's worktree."""

    info: WorktreeInfo
    exists: bool
    branch_exists: bool
    merged: bool | None
    ahead: int = 0
    behind: int = 0
    commits: list[tuple[str, str]] = field(default_factory=list)
    status: list[tuple[str, str]] = field(default_factory=list)
    status_count: int = 0
    files: list[FileChange] = field(default_factory=list)
    file_count: int = 0
    insertions: int = 0
    deletions: int = 0
    # What the worktree's files take on disk (its git objects live in the repository); None when it is gone.
    disk_bytes: int | None = None

    @property
    def clean(self) -> bool:
        return self.status_count == 0

    def to_json(self) -> dict[str, Any]:
        return {
            **self.info.to_json(),
            "exists": self.exists,
            "branchExists": self.branch_exists,
            "merged": self.merged,
            "clean": self.clean,
            "ahead": self.ahead,
            "behind": self.behind,
            "commits": [{"sha": sha, "subject": subject} for sha, subject in self.commits],
            "status": [{"code": code, "path": path} for code, path in self.status],
            "statusCount": self.status_count,
            "diffStat": {
                "files": [f.to_json() for f in self.files],
                "fileCount": self.file_count,
                "insertions": self.insertions,
                "deletions": self.deletions,
            },
            "diskBytes": self.disk_bytes,
        }


@dataclass(frozen=True)
class Removal:
    """The outcome of asking to remove a worktree: removed, or kept and why."""

    removed: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"removed": self.removed, "reason": self.reason}


# -- running git -------------------------------------------------------------------------------------------


def git(cwd: str, *args: str, check: bool = True, env_extra: dict[str, str] | None = None) -> proc.Completed:
    """Run ``git -C cwd ARGS``; with ``check`` a failure raises :class:`GitError` carrying git's message.
    ``env_extra`` adds variables after the location ones are removed (a temporary index, an identity)."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    # Plain messages, no prompts for credentials, no index refresh by read-only commands.
    env.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", **(env_extra or {})})
    argv = ["git", "-C", cwd, *args]
    try:
        return proc.run(argv, check=check, env=env, errors="surrogateescape", timeout=GIT_TIMEOUT_SEC)
    except CommandNotFound as e:
        raise GitError("git is not installed (or not on PATH)", hint="install git to use --worktree") from e
    except CommandTimedOut as e:
        raise GitError(f"git {args[0]} in {cwd} took longer than {GIT_TIMEOUT_SEC:g}s") from e
    except CommandFailed as e:
        raise GitError(f"git {args[0]} failed in {cwd}: {first_line(e.stderr) or f'exit {e.returncode}'}") from e


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].removeprefix("fatal: ").removeprefix("error: ") if lines else ""


def ok(cwd: str, *args: str) -> bool:
    return git(cwd, *args, check=False).returncode == 0


def rev(cwd: str, ref: str) -> str | None:
    """The commit ``ref`` names, or None."""
    res = git(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
    return res.stdout.strip() if res.returncode == 0 else None


# -- launch ------------------------------------------------------------------------------------------------


def prepare(workdir: str, base: str | None) -> Checkout:
    """Check that ``workdir`` is in a git work tree and ``base`` (default: its current branch) is a commit."""
    res = git(workdir, "rev-parse", "--is-inside-work-tree", "--show-toplevel", check=False)
    lines = res.stdout.split("\n")
    if res.returncode != 0 or lines[0].strip() != "true":
        raise InvalidInput(
            f"workdir {workdir} is not in a git repository: --worktree needs one",
            hint="launch without --worktree, or in a git checkout (git init)",
        )
    toplevel = lines[1].strip()
    if base is None:
        current = git(workdir, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        if current.returncode != 0:
            raise InvalidInput(f"HEAD of {toplevel} is detached: no branch to start from", hint="give --base BRANCH")
        base = current.stdout.strip()
    if not base or base.startswith("-") or any(c in base for c in "\0\n"):
        raise InvalidInput(f"invalid base {base!r}", hint="give a branch name, e.g. --base main")
    commit = rev(workdir, base)
    if commit is None:
        empty = not ok(workdir, "rev-parse", "--verify", "--quiet", "HEAD")
        raise InvalidInput(
            f"unknown base {base!r} in {toplevel}" + (" (the repository has no commits yet)" if empty else ""),
            hint="give an existing branch or commit with --base" if not empty else "commit something first",
        )
    return Checkout(workdir=workdir, toplevel=toplevel, base=base, base_commit=commit)


def root_for(configured: str | None, state_root: Path) -> Path:
    """Where worktrees are created: config ``worktreeDir``, else ``<state dir>/worktrees``."""
    return Path(configured).expanduser() if configured else state_root / "worktrees"


def path_for(checkout: Checkout, root: Path, name: str) -> Path:
    return root / (Path(checkout.toplevel).name or "root") / name


def taken_names(checkout: Checkout, root: Path) -> set[str]:
    """Session names a new worktree may not take: their branch or directory exists already."""
    refs = git(checkout.workdir, "for-each-ref", "--format=%(refname)", f"refs/heads/{BRANCH_PREFIX}").stdout
    names = {line.removeprefix(f"refs/heads/{BRANCH_PREFIX}") for line in refs.splitlines() if line}
    parent = path_for(checkout, root, "x").parent
    if parent.is_dir():
        names |= {p.name for p in parent.iterdir()}
    return names


def create(checkout: Checkout, root: Path, name: str) -> WorktreeInfo:
    """A new worktree on branch ``clawunits/<name>`` at the base commit, under ``root``."""
    branch = BRANCH_PREFIX + name
    if not ok(checkout.workdir, "check-ref-format", f"refs/heads/{branch}"):
        raise InvalidInput(f"session name {name!r} cannot be a git branch name", hint="choose another --name")
    if ok(checkout.workdir, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}"):
        raise StateError(f"branch {branch} already exists in {checkout.toplevel}", hint="choose another --name")
    path = path_for(checkout, root, name)
    if path.exists():
        raise StateError(f"worktree directory {path} already exists", hint="choose another --name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GitError(f"cannot create {path.parent}: {e.strerror}", hint="check worktreeDir in the config") from e
    # --no-track: the branch is the session's own, even when the base is a remote-tracking branch.
    git(checkout.workdir, "worktree", "add", "--quiet", "--no-track", "-b", branch, str(path), checkout.base_commit)
    return WorktreeInfo(
        path=str(path), branch=branch, base=checkout.base, base_commit=checkout.base_commit, repo=checkout.workdir
    )


def session_workdir(checkout: Checkout, info: WorktreeInfo) -> str:
    """The workdir's counterpart in the worktree (its top when that directory is not in the base commit)."""
    inner = Path(info.path) / checkout.subdir
    return str(inner) if checkout.subdir and inner.is_dir() else info.path


def discard(info: WorktreeInfo) -> None:
    """Undo :func:`create` after a failed launch: the worktree goes, and its branch while still at the base."""
    git(info.repo, "worktree", "remove", "--force", info.path, check=False)
    git(info.repo, "worktree", "prune", check=False)
    git(info.repo, "update-ref", "-d", f"refs/heads/{info.branch}", info.base_commit, check=False)


# -- inspecting --------------------------------------------------------------------------------------------


def inspect(info: WorktreeInfo) -> WorktreeView:
    """Branch, status and diff stat (committed and uncommitted, untracked files included) against the base."""
    exists = Path(info.path).is_dir() and not info.removed
    tip = rev(info.repo, f"refs/heads/{info.branch}") if Path(info.repo).is_dir() else None
    if not exists:
        return WorktreeView(info=info, exists=False, branch_exists=tip is not None, merged=_merged(info, tip))
    where = info.path
    base = rev(where, info.base)
    ahead = count(where, f"{base or info.base_commit}..HEAD")
    behind = count(where, f"HEAD..{base}") if base else 0
    log = git(where, "log", "--format=%h%x09%s", f"-{MAX_LISTED}", f"{base or info.base_commit}..HEAD").stdout
    commits = [tuple(line.split("\t", 1)) for line in log.splitlines() if "\t" in line]
    fork_point = git(where, "merge-base", base, "HEAD", check=False).stdout.strip() if base else ""
    changes = status(where)
    files = _diff_stat(where, fork_point or info.base_commit)
    return WorktreeView(
        info=info,
        exists=True,
        branch_exists=tip is not None,
        merged=_merged(info, tip),
        ahead=ahead,
        behind=behind,
        commits=[(c[0], c[1]) for c in commits],
        status=changes[:MAX_LISTED],
        status_count=len(changes),
        files=files[:MAX_LISTED],
        file_count=len(files),
        insertions=sum(f.added or 0 for f in files),
        deletions=sum(f.deleted or 0 for f in files),
        disk_bytes=disk.usage(where),
    )


def count(cwd: str, spec: str) -> int:
    res = git(cwd, "rev-list", "--count", spec, check=False)
    return int(res.stdout.strip()) if res.returncode == 0 and res.stdout.strip().isdigit() else 0


def _merged(info: WorktreeInfo, tip: str | None) -> bool | None:
    """Whether the branch is in its target (the base, or where ``merge`` took it); None when either is gone."""
    target = rev(info.repo, info.target) if tip is not None else None
    if tip is None or target is None:
        return None
    return _taken_in(info, tip, target)


def _taken_in(info: WorktreeInfo, commit: str, target: str) -> bool:
    """``commit`` is in ``target``, or is the branch tip a squash merge took in."""
    return commit == info.squashed_tip or ok(info.repo, "merge-base", "--is-ancestor", commit, target)


def status(cwd: str) -> list[tuple[str, str]]:
    """``git status --porcelain`` entries (code, path), untracked files included."""
    out = git(cwd, "status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
    entries: list[tuple[str, str]] = []
    parts = iter(out.split("\0"))
    for part in parts:
        if len(part) < 4:
            continue
        code, path = part[:2], part[3:]
        if code[0] in "RC":
            next(parts, None)  # the rename's source path
        entries.append((code, path))
    return entries


def _diff_stat(cwd: str, against: str) -> list[FileChange]:
    """Lines added/deleted per file between ``against`` and the working tree, plus untracked files."""
    out = git(cwd, "diff", "--numstat", "-z", "--no-renames", against, "--").stdout
    files = []
    for entry in out.split("\0"):
        bits = entry.split("\t", 2)
        if len(bits) == 3:
            added, deleted, path = bits
            files.append(FileChange(path, _int(added), _int(deleted)))
    untracked = git(cwd, "ls-files", "--others", "--exclude-standard", "-z").stdout
    for path in filter(None, untracked.split("\0")):
        # Lines are counted for the files that are listed; reading thousands of new files is not worth it.
        lines = _count_lines(Path(cwd) / path) if len(files) < MAX_LISTED else None
        files.append(FileChange(path, lines, 0, untracked=True))
    return files


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _count_lines(path: Path) -> int | None:
    """Lines of a new file, as git would count them; None for binary or unreadable files."""
    try:
        if path.is_symlink() or path.stat().st_size > MAX_COUNTED_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8000]:
        return None
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# -- removing ----------------------------------------------------------------------------------------------


def remove_if_merged(info: WorktreeInfo) -> Removal:
    """Remove the worktree and its branch only if both are clean and merged into the target (the base, or the
    branch ``merge`` took it into); else say why not."""
    if info.removed:
        return Removal(True, f"worktree {info.path} was already removed")
    if not Path(info.repo).is_dir():
        return Removal(False, f"the repository {info.repo} is gone; kept {info.path}")
    target = rev(info.repo, info.target)
    if target is None:
        return Removal(False, f"the branch {info.target} no longer exists; kept {info.path}")
    tip = rev(info.repo, f"refs/heads/{info.branch}")
    if Path(info.path).is_dir():
        kept = _unmerged_work(info, tip, target)
        if kept:
            return Removal(False, f"{kept}; kept {info.path}")
        # Without --force git itself refuses a worktree with changes, should any appear meanwhile.
        res = git(info.repo, "worktree", "remove", info.path, check=False)
        if res.returncode != 0:
            return Removal(False, f"git worktree remove failed: {first_line(res.stderr)}; kept {info.path}")
    else:
        git(info.repo, "worktree", "prune", check=False)
    if tip is not None:
        if not _taken_in(info, tip, target):
            return Removal(False, _unmerged(info, tip, target))
        # Deleted only if it still points at the commit found merged.
        git(info.repo, "update-ref", "-d", f"refs/heads/{info.branch}", tip, check=False)
    return Removal(True, f"removed {info.path} and branch {info.branch} (merged into {info.target})")


def _unmerged_work(info: WorktreeInfo, tip: str | None, target: str) -> str | None:
    """Why the worktree must stay (changes, or commits not in the target), or None."""
    changes = status(info.path)
    if changes:
        return f"the worktree has {len(changes)} uncommitted change(s)"
    head = rev(info.path, "HEAD")
    for commit in (tip, head):
        if commit is not None and not _taken_in(info, commit, target):
            return _unmerged(info, commit, target)
    return None


def _unmerged(info: WorktreeInfo, commit: str, target: str) -> str:
    n = count(info.repo, f"{target}..{commit}")
    return f"branch {info.branch} has {n} commit(s) not merged into {info.target}"
