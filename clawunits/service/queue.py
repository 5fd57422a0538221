"""The launch queue: launches beyond ``maxSessions`` wait as ``queued`` records and start, in order, when a
slot frees.

Order: ``launch --priority`` first, then first come, first served (by the time the launch was recorded). The
queue is nothing but the records (no state elsewhere): it survives restarts of the notifier and of the user
manager. Starting is done by :func:`drain` under the store's launch lock, so two starters (a session's end, a
launch, the boot) never start one session twice nor more than the free slots. Who runs it: a transient unit
each runner starts when its session ends or finishes its task (:mod:`clawunits.systemd.queuekick`), a launch
that finds a free slot, ``clawunits recover --boot`` at the manager's start, and ``clawunits queue start``.
"""

from __future__ import annotations

from dataclasses import dataclass

from clawunits.errors import ClawunitsError
from clawunits.service.context import Context
from clawunits.state.models import EndCause, SessionRecord, Status, WorktreeInfo


@dataclass(frozen=True)
class Started:
    """A queued session that drain took out of the queue: started, or failed to (``error``)."""

    record: SessionRecord
    error: str | None = None


def ordered(records: list[SessionRecord]) -> list[SessionRecord]:
    """The queued sessions in the order they start: priority launches first, then oldest first."""
    waiting = [r for r in records if r.status is Status.QUEUED]
    return sorted(waiting, key=lambda r: (not r.queue_priority, r.created_at, r.id))


def positions(records: list[SessionRecord]) -> dict[str, int]:
    """Each queued session's place (1: starts next), by id."""
    return {r.id: i for i, r in enumerate(ordered(records), start=1)}


def drain(ctx: Context) -> list[Started]:
    """Start queued sessions, in order, while slots are free; the rest stay queued.

    A session that cannot start (its worktree cannot be created, its unit fails) ends failed and the next one
    gets the slot. One that resumes a conversation another session has open meanwhile waits (it keeps its
    place; the others behind it may start).
    """
    from clawunits.service.launch import free_slots

    chosen: list[tuple[SessionRecord, WorktreeInfo | None]] = []
    out: list[Started] = []
    with ctx.store.lock("launch"):
        records = ctx.store.all()
        free = free_slots(ctx, records) if any(r.status is Status.QUEUED for r in records) else 0
        for record in ordered(records):
            if free <= 0:
                break
            if _conversation_busy(record, records):
                continue
            try:
                taken, created = _take(ctx, record, records)
            except ClawunitsError as e:
                out.append(Started(_fail(ctx, record, e.message), e.message))
                continue
            if taken is not None:
                chosen.append((taken, created))
                free -= 1
    # Units start outside the lock (as a launch's do): the records already say starting, so they hold their slots.
    for record, created in chosen:
        out.append(_start(ctx, record, created))
    return out


def _take(
    ctx: Context, record: SessionRecord, records: list[SessionRecord]
) -> tuple[SessionRecord | None, WorktreeInfo | None]:
    """Mark ``record`` starting (with its worktree created now, if it asked for one); None: killed meanwhile."""
    from clawunits.service import session_worktree
    from clawunits.service import worktree as worktrees

    created = None
    workdir = record.workdir
    if record.queued_worktree_base is not None:
        checkout = worktrees.prepare(record.workdir, record.queued_worktree_base)
        created = worktrees.create(checkout, session_worktree.root(ctx), record.name)
        workdir = worktrees.session_workdir(checkout, created)
    prior = _prior_cost(record, records)

    def change(r: SessionRecord) -> SessionRecord | None:
        started = r.dequeued(workdir, created)
        return started.with_changes(prior_cost_usd=prior) if started else None

    taken = ctx.store.update(record.id, change)
    if taken.status is not Status.STARTING or taken.started_at is None:
        if created is not None:
            worktrees.discard(created)
        return None, None
    if prior >= taken.budget_usd:
        why = f"its conversation has spent ${prior:.4f} of its ${taken.budget_usd:g} budget meanwhile"
        _fail(ctx, taken, why, created)
        return None, None
    return taken, created


def _start(ctx: Context, record: SessionRecord, created: WorktreeInfo | None) -> Started:
    from clawunits.service import kill
    from clawunits.service import worktree as worktrees
    from clawunits.service.launch import start

    current = ctx.store.load(record.id)
    if current.status is not Status.STARTING:
        # Killed between taking it and starting it: nothing starts.
        if created is not None:
            worktrees.discard(created)
        return Started(current, f"it is {current.status.value}")
    try:
        for holder in _holders(current, ctx.store.all()):
            if holder.status.is_terminal:
                kill.close_open(ctx, holder)  # done, open for follow-ups: its conversation continues here
    except ClawunitsError as e:
        return Started(_fail(ctx, current, e.message, created), e.message)
    try:
        # A unit that fails to start marks the session failed (and removes its new worktree) itself.
        start(ctx, current, created)
    except ClawunitsError as e:
        return Started(ctx.store.load(record.id), e.message)
    return Started(ctx.store.load(record.id))


def _holders(record: SessionRecord, records: list[SessionRecord]) -> list[SessionRecord]:
    """The other sessions that work (or are parked at a usage limit) in the Claude session ``record`` resumes
    (not forks): two Claude Code processes must not append to one transcript. Queued ones wait their turn."""
    conversation = record.resume_claude_session_id
    if conversation is None or record.forked:
        return []
    return [
        r
        for r in records
        if r.id != record.id
        and r.is_open
        and r.status is not Status.QUEUED
        and conversation in (r.claude_session_id, r.resume_claude_session_id)
    ]


def _conversation_busy(record: SessionRecord, records: list[SessionRecord]) -> bool:
    """Another session works in its conversation now (or is parked in it): it waits. One whose task is done
    and only waits for follow-ups is closed when this one starts, as a resume does."""
    return any(not r.status.is_terminal for r in _holders(record, records))


def _prior_cost(record: SessionRecord, records: list[SessionRecord]) -> float:
    """What its conversation has spent by now: it may have been continued meanwhile by another session."""
    conversation = record.resume_claude_session_id
    if conversation is None or record.forked:
        return record.prior_cost_usd
    spent = [
        r.prior_cost_usd + r.cost_usd
        for r in records
        if r.id != record.id and conversation in (r.claude_session_id, r.resume_claude_session_id)
    ]
    return round(max([record.prior_cost_usd, *spent]), 6)


def _fail(ctx: Context, record: SessionRecord, why: str, created: WorktreeInfo | None = None) -> SessionRecord:
    """A queued session that cannot start ends failed, with why (it never ran)."""
    from clawunits.service import worktree as worktrees

    if created is not None:
        worktrees.discard(created)
    reason = f"could not start from the launch queue: {why}"
    _warn(f"session {record.name} [{record.id}]: {reason}")

    def change(r: SessionRecord) -> SessionRecord | None:
        if r.status not in (Status.QUEUED, Status.STARTING):
            return None
        return r.ended(Status.FAILED, reason, EndCause.ERROR).with_changes(queued_worktree_base=None)

    return ctx.store.update(record.id, change)


def quiet_drain(ctx: Context) -> list[Started]:
    """:func:`drain` for unattended starters (the boot, a session's end): errors are logged, never raised."""
    try:
        return drain(ctx)
    except ClawunitsError as e:
        _warn(f"the launch queue could not be drained: {e.message}")
        return []


def _warn(text: str) -> None:
    import logging  # only here: listings import this module, and logging costs every CLI call ~4 ms

    logging.getLogger(__name__).warning("clawunits: %s", text)
