"""The git steps of ``clawunits merge`` and ``clawunits pr``: nothing here moves a ref until every check passed.

A merge is computed without touching any work tree (``git merge-tree --write-tree``), so a conflict is found
before anything changes. The target branch then moves by a fast-forward of the checkout that has it (which
must be clean) or, where no work tree has it, by a compare-and-swap of its ref. Work a session left
uncommitted is first taken into a commit object built with a temporary index; the session's branch moves to
it only once the merge itself went through.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from clawunits.errors import GitError, InvalidInput
from clawunits.service.worktree import first_line, git, ok, rev
from clawunits.state.models import WorktreeInfo

# The identity of commits clawunits makes where git has none configured (git refuses to commit without one).
FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "clawunits",
    "GIT_AUTHOR_EMAIL": "clawunits@localhost",
    "GIT_COMMITTER_NAME": "clawunits",
    "GIT_COMMITTER_EMAIL": "clawunits@localhost",
}


@dataclass(frozen=True)
class Target:
    """The branch to merge into: its commit, and the work tree that has it checked out (if any)."""

    branch: str
    commit: str
    checkout: str | None


@dataclass(frozen=True)
class Source:
    """What a session's branch brings: its tip, or a commit of the work it left uncommitted on top of it."""

    tip: str
    commit: str
    uncommitted: int

    @property
    def snapshot(self) -> bool:
        return self.commit != self.tip


def target(repo: str, branch: str) -> Target:
    """The local branch ``branch`` of ``repo``, with the work tree where it is checked out."""
    if not branch or branch.startswith("-") or not ok(repo, "check-ref-format", f"refs/heads/{branch}"):
        raise InvalidInput(f"invalid branch name {branch!r}", hint="give a local branch, e.g. --into main")
    commit = rev(repo, f"refs/heads/{branch}")
    if commit is None:
        raise InvalidInput(f"no local branch {branch!r} in {repo}", hint="give an existing local branch with --into")
    return Target(branch, commit, checkout_of(repo, branch))


def checkout_of(repo: str, branch: str) -> str | None:
    """The work tree (of all the repository's) that has ``branch`` checked out."""
    listing = git(repo, "worktree", "list", "--porcelain").stdout
    path = None
    for line in listing.splitlines():
        if line.startswith("worktree "):
            path = line.removeprefix("worktree ")
        elif line == f"branch refs/heads/{branch}":
            return path
    return None


def tracked_changes(path: str) -> int:
    """Uncommitted changes to tracked files in the work tree at ``path``."""
    out = git(path, "status", "--porcelain=v1", "-z", "--untracked-files=no").stdout
    return sum(1 for entry in out.split("\0") if len(entry) >= 4)


def source(info: WorktreeInfo, message: str) -> Source:
    """The session's branch tip and, if its worktree has uncommitted work (untracked files too, ignored ones
    not), a commit of that work on top of the tip; no ref moves."""
    tip = rev(info.repo, f"refs/heads/{info.branch}")
    if tip is None:
        raise GitError(f"branch {info.branch} no longer exists in {info.repo}")
    if not os.path.isdir(info.path):
        return Source(tip, tip, 0)
    head = rev(info.path, "HEAD")
    if head != tip:
        raise GitError(
            f"the worktree {info.path} is not on {info.branch} any more",
            hint=f"check it out again there: git -C {info.path} switch {info.branch}",
        )
    changes = git(info.path, "status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
    uncommitted = sum(1 for entry in changes.split("\0") if len(entry) >= 4)
    if not uncommitted:
        return Source(tip, tip, 0)
    with tempfile.TemporaryDirectory(prefix="clawunits-index-") as tmp:
        # A private index: the worktree's own index, and so what the session staged, stays as it is.
        index = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        git(info.path, "read-tree", tip, env_extra=index)
        git(info.path, "add", "--all", ".", env_extra=index)
        tree = git(info.path, "write-tree", env_extra=index).stdout.strip()
    return Source(tip, commit_tree(info.repo, tree, [tip], message), uncommitted)


def merged_tree(repo: str, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """The tree of merging ``theirs`` into ``ours``, or None and the paths that conflict."""
    res = git(repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs, check=False)
    if res.returncode == 0:
        return res.stdout.split("\0", 1)[0].strip(), []
    if res.returncode != 1:
        raise GitError(f"git merge-tree failed in {repo}: {first_line(res.stderr) or f'exit {res.returncode}'}")
    # Exit 1: a conflict; the tree id, then the conflicted paths, NUL-separated.
    _tree, *paths = res.stdout.split("\0")
    return None, sorted({p for p in paths if p})


def commit_tree(repo: str, tree: str, parents: list[str], message: str) -> str:
    """A new commit object (on no branch) with the configured identity, or clawunits' where none is."""
    args = ["commit-tree", tree, *(a for p in parents for a in ("-p", p)), "-m", message]
    return git(repo, *args, env_extra=identity(repo)).stdout.strip()


def identity(repo: str) -> dict[str, str]:
    """Nothing when git knows who commits here; otherwise clawunits' own identity."""
    return {} if ok(repo, "var", "GIT_COMMITTER_IDENT") and ok(repo, "var", "GIT_AUTHOR_IDENT") else FALLBACK_IDENTITY


def advance(repo: str, into: Target, commit: str) -> None:
    """Move the target branch to ``commit`` (a descendant): a fast-forward of the checkout that has it, else a
    compare-and-swap of the ref, so that a branch that moved meanwhile is never overwritten."""
    if into.checkout is not None:
        res = git(into.checkout, "merge", "--ff-only", "--quiet", commit, check=False)
        if res.returncode != 0:
            raise GitError(
                f"cannot update {into.branch} in {into.checkout}: {first_line(res.stderr)}",
                hint="move or commit the files git names, then merge again",
            )
        return
    git(repo, "update-ref", "-m", "clawunits merge", f"refs/heads/{into.branch}", commit, into.commit)


def take_snapshot(info: WorktreeInfo, src: Source) -> None:
    """Move the session's branch onto the commit of its uncommitted work; the worktree's files stay as they
    are and its index now matches them, so it is clean."""
    if not src.snapshot:
        return
    git(info.path, "update-ref", "-m", "clawunits: commit the session's uncommitted work", "HEAD", src.commit, src.tip)
    git(info.path, "reset", "--quiet", "--mixed", src.commit)


def push(repo: str, remote: str, branch: str) -> None:
    """Push the session's branch to the same name at ``remote`` (no prompts for credentials)."""
    res = git(repo, "push", "--porcelain", remote, f"refs/heads/{branch}:refs/heads/{branch}", check=False)
    if res.returncode != 0:
        raise GitError(
            f"git push of {branch} to {remote} failed: {first_line(res.stderr) or f'exit {res.returncode}'}",
            hint=f"check that `git push {remote} {branch}` works in {repo}",
        )


def remotes(repo: str) -> list[str]:
    return [r for r in git(repo, "remote").stdout.split() if r]
