"""Stopping sessions: ``kill``, and closing a completed session whose runner still waits for follow-ups."""

from __future__ import annotations

from clawunits.errors import SystemdError
from clawunits.service import sessions
from clawunits.service.authority import Action
from clawunits.service.context import Context
from clawunits.service.results import KillResult
from clawunits.state.models import SessionRecord, Status


def kill(ctx: Context, ref: str, agent: str | None = None) -> KillResult:
    """Stop the session's unit: every process of it gets SIGTERM, then SIGKILL after the stop timeout."""
    record = sessions.get(ctx, ref, agent)
    ctx.authorize(Action.KILL, record)
    return stop(ctx, record)


def stop(ctx: Context, record: SessionRecord) -> KillResult:
    """Kill ``record``'s session (an interrupted one is just marked killed: do not recover it; a queued one
    leaves the launch queue and never starts)."""
    if record.status is Status.QUEUED:
        dropped = ctx.store.update(record.id, lambda r: r.killed() if r.status is Status.QUEUED else None)
        if dropped.status is Status.KILLED:
            return KillResult(dropped, already_finished=False)
        record = dropped  # started meanwhile: stopped like any running session
    if record.status is Status.INTERRUPTED:
        # Nothing runs; killing it means: do not recover it.
        def down(r: SessionRecord) -> SessionRecord | None:
            if r.status is not Status.INTERRUPTED:
                return None
            return r.killed()

        killed = ctx.store.update(record.id, down)
        if killed.status is Status.KILLED:
            return KillResult(killed, already_finished=False)
        record = sessions.reconcile(ctx, [killed])[0]  # recovered meanwhile: stopped like any running session
    if record.status is Status.LIMITED:
        record = _kill_parked(ctx, record)
        if record.status is Status.KILLED:
            return KillResult(record, already_finished=False)
    if record.status.is_terminal:
        if record.is_open:
            # Its task is done; only the process waiting for follow-ups is left to stop.
            record = close_open(ctx, record)
        return KillResult(record, already_finished=True)
    before = record
    killed = ctx.store.update(
        record.id,
        lambda r: None if r.status.is_terminal else r.killed(),
    )
    if killed.status is not Status.KILLED:
        # Its turn finished since we looked: it may still be open for follow-ups; close it as above.
        return KillResult(close_open(ctx, killed) if killed.is_open else killed, already_finished=True)
    try:
        stop_unit(ctx, record)
    except SystemdError:
        ctx.store.update(record.id, lambda r: before)
        raise
    # Its runner wakes the launch queue as it ends, unless the stop came before it could (SIGTERM at start).
    sessions.wake_queue(ctx)
    return KillResult(ctx.store.load(record.id), already_finished=False)


def _kill_parked(ctx: Context, record: SessionRecord) -> SessionRecord:
    """A session parked at a usage limit: marked killed first (its timer's ``unpark`` then leaves it alone),
    then the timer goes, and the unit if its runner is still on its way out. Resumed meanwhile: returned as
    it is now, to be killed like any running session."""
    from clawunits.service import parking

    killed = ctx.store.update(record.id, lambda r: r.killed() if r.status is Status.LIMITED else None)
    if killed.status is not Status.KILLED:
        return sessions.reconcile(ctx, [killed])[0]
    parking.disarm(ctx, killed)
    stop_unit(ctx, killed)
    return ctx.store.load(record.id)


def close_open(ctx: Context, record: SessionRecord) -> SessionRecord:
    """Stop a completed session's idle runner; it takes no more messages."""
    stop_unit(ctx, record)
    return ctx.store.update(record.id, lambda r: r.with_changes(waiting_for=None))


def stop_unit(ctx: Context, record: SessionRecord) -> None:
    """Stop the unit and wait until none of its processes is left."""
    try:
        ctx.manager.stop(record.unit, timeout=ctx.settings.stopTimeoutSec + 10)
    except SystemdError as e:
        if e.code != "no-such-unit":
            raise
