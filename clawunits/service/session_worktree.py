"""A session's git worktree (``launch --worktree``): show it, and remove it once merged and clean."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from clawunits.errors import InvalidInput
from clawunits.service import kill, sessions
from clawunits.service import worktree as worktrees
from clawunits.service.authority import Action
from clawunits.service.context import Context
from clawunits.service.results import KillResult
from clawunits.state.models import SessionRecord, WorktreeInfo


def root(ctx: Context) -> Path:
    """Where the sessions' worktrees go (config ``worktreeDir``, else under the state directory)."""
    return worktrees.root_for(ctx.settings.worktreeDir, ctx.store.root)


def show(ctx: Context, ref: str) -> tuple[SessionRecord, worktrees.WorktreeView]:
    """The session's worktree: branch, base, status and diff stat against the base."""
    record = sessions.get(ctx, ref)
    if record.worktree is None:
        raise InvalidInput(
            f"session {record.name} [{record.id}] has no worktree", hint="launch with --worktree to get one"
        )
    return record, worktrees.inspect(record.worktree)


def remove(ctx: Context, record: SessionRecord) -> worktrees.Removal:
    """Remove a finished session's worktree and branch if merged into the base and clean; else keep them.

    A worktree shared with a resumed session stays while any of them is open.
    """
    with ctx.store.lock("worktrees"):
        return remove_locked(ctx, record)


def remove_locked(ctx: Context, record: SessionRecord) -> worktrees.Removal:
    """:func:`remove`, for a caller that holds the ``worktrees`` lock."""
    info = record.worktree
    if info is None:
        raise InvalidInput(f"session {record.name} [{record.id}] has no worktree")
    sharing = [r for r in ctx.store.all() if r.worktree is not None and r.worktree.path == info.path]
    users = [r for r in sessions.reconcile(ctx, sharing) if r.is_open]
    if users:
        names = ", ".join(f"{r.name} [{r.id}]" for r in users)
        return worktrees.Removal(False, f"session {names} still works in {info.path}; kept it")
    removal = worktrees.remove_if_merged(info)
    if removal.removed:
        for r in sharing:
            ctx.store.update(r.id, lambda cur: cur.with_changes(worktree=marked_removed(cur.worktree)))
    return removal


def kill_and_remove(ctx: Context, ref: str, agent: str | None = None) -> KillResult:
    """``kill --remove-worktree``: stop the session, then remove its worktree and branch if merged and clean."""
    record = sessions.get(ctx, ref, agent)
    ctx.authorize(Action.KILL, record)
    if record.worktree is None:
        raise InvalidInput(
            f"session {record.name} [{record.id}] has no worktree", hint="kill it without --remove-worktree"
        )
    result = kill.stop(ctx, record)
    removal = remove(ctx, result.record)
    return KillResult(ctx.store.load(record.id), result.already_finished, removal)


def marked_removed(info: WorktreeInfo | None) -> WorktreeInfo | None:
    return replace(info, removed=True) if info else None
