"""``merge``: take a finished worktree session's branch into its base (or ``--into``), or refuse and change
nothing; with ``--resolve`` a conflict launches a session that resolves it in the worktree."""

from __future__ import annotations

from dataclasses import replace

from clawunits.errors import MergeConflict, StateError
from clawunits.records import shorten
from clawunits.service import git_merge, session_worktree, sessions
from clawunits.service import worktree as worktrees
from clawunits.service.authority import Action
from clawunits.service.context import Context
from clawunits.service.results import LaunchRequest, MergeResult
from clawunits.service.worktree import Removal
from clawunits.state.models import SessionRecord, Status, WaitingFor, WorktreeInfo

RESOLVE_PROMPT = """Merging branch {branch} into {into} conflicts in: {files}.
In this worktree, run `git merge {into}` and resolve every conflict, keeping what both sides meant to do. Run the
project's tests if it has any. Then commit the merge. Do not push and do not switch branches."""


def merge(
    ctx: Context,
    ref: str,
    squash: bool = False,
    into: str | None = None,
    resolve: bool = False,
    agent: str | None = None,
    channel: str | None = None,
    instructions: str | None = None,
) -> MergeResult:
    """Merge the session's branch (with the work it left uncommitted) into ``into`` (default: its base).

    Nothing changes on a conflict or when the target's checkout has uncommitted changes; with ``resolve`` a
    conflict launches a session (the same conversation where it can be resumed) that merges the target into
    the session's branch, after which ``merge`` goes through. After a merge the worktree and branch are
    removed if merged and clean (a session still open keeps them).
    """
    record = sessions.get(ctx, ref, agent)
    ctx.authorize(Action.MERGE, record)
    info = session_worktree_of(record)
    check_finished(record)
    branch = into or info.base
    with ctx.store.lock("worktrees"):
        target = git_merge.target(info.repo, branch)
        if target.checkout == info.path:
            raise StateError(f"{branch} is checked out in the session's own worktree {info.path}")
        src = git_merge.source(info, leftover_message(record))
        if worktrees.ok(info.repo, "merge-base", "--is-ancestor", src.commit, target.commit):
            removal = _record_and_remove(ctx, record, info, branch, None)
            return MergeResult(ctx.store.load(record.id), branch, None, False, 0, removal, already_merged=True)
        tree, conflicts = git_merge.merged_tree(info.repo, target.commit, src.commit)
        if tree is None:
            if not resolve:
                raise _conflict(record, info, branch, conflicts)
            git_merge.take_snapshot(info, src)
            resolver = _launch_resolver(ctx, record, info, branch, conflicts, channel, instructions)
            return MergeResult(
                ctx.store.load(record.id), branch, None, squash, src.uncommitted, None, conflicts=conflicts,
                resolver=resolver,
            )  # fmt: skip
        _check_clean_target(target)
        parents = [target.commit] if squash else [target.commit, src.commit]
        commit = git_merge.commit_tree(info.repo, tree, parents, _merge_message(record, info, branch, squash))
        git_merge.advance(info.repo, target, commit)
        git_merge.take_snapshot(info, src)
        removal = _record_and_remove(ctx, record, info, branch, src.commit if squash else None)
    return MergeResult(ctx.store.load(record.id), branch, commit, squash, src.uncommitted, removal)


def session_worktree_of(record: SessionRecord) -> WorktreeInfo:
    info = record.worktree
    if info is None:
        raise StateError(
            f"session {record.name} [{record.id}] has no worktree: its changes are already in {record.workdir}",
            hint="merge works on sessions launched with --worktree",
        )
    if info.removed:
        raise StateError(f"the worktree of session {record.name} [{record.id}] was removed (its branch was merged)")
    return info


def check_finished(record: SessionRecord) -> None:
    """Only work that is done is merged: ended, or completed and open for follow-ups."""
    done = record.status.is_terminal and record.status is not Status.INTERRUPTED
    if done or (record.status is Status.COMPLETED and record.waiting_for is WaitingFor.INPUT):
        return
    raise StateError(
        f"session {record.name} [{record.id}] is {record.status.value}: merge it when it has finished",
        hint=f"wait for it (clawunits wait {record.name} --ended) or kill it",
    )


def _check_clean_target(target: git_merge.Target) -> None:
    if target.checkout is None:
        return
    changed = git_merge.tracked_changes(target.checkout)
    if changed:
        raise StateError(
            f"{target.branch} has {changed} uncommitted change(s) in {target.checkout}; nothing was merged",
            hint="commit or stash them there, then merge again",
        )


def _conflict(record: SessionRecord, info: WorktreeInfo, branch: str, files: list[str]) -> MergeConflict:
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return MergeConflict(
        f"merging {info.branch} into {branch} would conflict in {shown}; nothing was changed",
        hint=f"clawunits merge {record.name} --resolve launches a session that resolves it",
        files=files,
    )


def _launch_resolver(
    ctx: Context,
    record: SessionRecord,
    info: WorktreeInfo,
    branch: str,
    files: list[str],
    channel: str | None,
    instructions: str | None,
) -> SessionRecord:
    """A session in the worktree that merges the target into the branch: the same conversation when it can
    be resumed (it knows what it changed), else a new one in the worktree."""
    from clawunits.service.launch import launch

    prompt = RESOLVE_PROMPT.format(branch=info.branch, into=branch, files=", ".join(files))
    if instructions:
        prompt += "\n\n" + instructions
    resumable = bool(record.claude_session_id)
    return launch(
        ctx,
        LaunchRequest(
            prompt=prompt,
            resume=record.id if resumable else None,
            workdir=None if resumable else info.path,
            origin_channel=channel or record.origin_channel,
            origin_agent=record.origin_agent,
        ),
    )


def _record_and_remove(
    ctx: Context, record: SessionRecord, info: WorktreeInfo, branch: str, squashed_tip: str | None
) -> Removal:
    """Note where the branch went (the removal rule and ``gc`` check against it), then remove what is merged."""

    def note(r: SessionRecord) -> SessionRecord:
        if r.worktree is None:
            return r
        merged_into = None if branch == r.worktree.base else branch
        return r.with_changes(worktree=replace(r.worktree, merged_into=merged_into, squashed_tip=squashed_tip))

    updated = ctx.store.update(record.id, note)
    return session_worktree.remove_locked(ctx, updated)


def leftover_message(record: SessionRecord) -> str:
    """The message of the commit that takes in what the session left uncommitted (merge and pr alike)."""
    return f"clawunits: work session {record.name} left uncommitted\n\n{shorten(record.prompt, 500)}"


def _merge_message(record: SessionRecord, info: WorktreeInfo, branch: str, squash: bool) -> str:
    head = f"Squashed session {record.name} ({info.branch})" if squash else f"Merge session {record.name}"
    body = [f"{head} into {branch}", "", shorten(record.prompt, 1000)]
    if record.result_preview:
        body += ["", shorten(record.result_preview, 2000)]
    claude = f", Claude session {record.claude_session_id}" if record.claude_session_id else ""
    body += ["", f"clawunits session {record.id}{claude}"]
    return "\n".join(body)
