"""Reading sessions: one by reference, the listing with its status filters, and the reconciliation of the
store with the units (a session whose unit ended without its runner recording it is lost or interrupted)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from clawunits.errors import Forbidden, InvalidInput, StateError
from clawunits.notifier.channels import check_channel
from clawunits.service.context import Context
from clawunits.state.models import EndCause, SessionRecord, Status, parse_ts

if TYPE_CHECKING:
    from clawunits.systemd.units import UnitState

LAUNCH_GRACE_SEC = 30.0

STATUS_FILTERS = {
    "all": lambda s: True,
    "running": lambda s: not s.is_terminal,
    "waiting": lambda s: s is Status.WAITING,
    "completed": lambda s: s is Status.COMPLETED,
    "failed": lambda s: s is Status.FAILED,
    "killed": lambda s: s is Status.KILLED,
    "interrupted": lambda s: s is Status.INTERRUPTED,
    "queued": lambda s: s is Status.QUEUED,
    "limited": lambda s: s is Status.LIMITED,
}


def get(ctx: Context, ref: str, agent: str | None = None) -> SessionRecord:
    """One session by id, name, Claude UUID or id prefix, with its status reconciled.

    With ``agent`` (an OpenClaw agent acting through the plugin), a session another agent launched is
    refused: one agent cannot act on another's sessions.
    """
    record = ctx.store.resolve(ref)
    if agent is not None and record.origin_agent is not None and record.origin_agent != agent:
        raise Forbidden(
            f"session {record.name} [{record.id}] belongs to agent {record.origin_agent!r}, not {agent!r}",
            hint="an agent can only act on the sessions it launched",
        )
    return reconcile(ctx, [record])[0]


def list_sessions(
    ctx: Context,
    status: str = "all",
    include_archived: bool = False,
    agent: str | None = None,
    channel: str | None = None,
) -> list[SessionRecord]:
    """Sessions (oldest first), reconciled with their units, filtered by status.

    Sessions finished over an hour ago are archived by ``clawunits gc`` and listed only on request.
    """
    if status not in STATUS_FILTERS:
        raise InvalidInput(f"unknown status filter {status!r}", hint=f"one of: {', '.join(STATUS_FILTERS)}")
    records = ctx.store.all()
    active = [r for r in records if r.is_open]
    if active:
        fixed = {r.id: r for r in reconcile(ctx, active)}
        records = [fixed.get(r.id, r) for r in records]
    origin = check_channel(channel) if channel is not None else None
    return [
        r
        for r in records
        if STATUS_FILTERS[status](r.status)
        and (include_archived or not r.archived)
        and (agent is None or r.origin_agent == agent)
        and (origin is None or r.origin_channel == origin)
    ]


def resumable(ctx: Context) -> list[SessionRecord]:
    """Finished sessions that can be resumed (they have a Claude session id), newest first."""
    done = [r for r in list_sessions(ctx, include_archived=True) if r.status.is_terminal and r.claude_session_id]
    done.sort(key=lambda r: r.completed_at or r.created_at, reverse=True)
    return done[: ctx.settings.maxPersistedSessions]


def reconcile(ctx: Context, records: list[SessionRecord]) -> list[SessionRecord]:
    """Correct open records whose unit ended without the runner recording it.

    A session still marked running or waiting whose unit exited becomes ``failed`` (SIGKILL, OOM); one
    whose unit is gone altogether went down with the user manager (a crash or power cut: nothing ran its
    SIGTERM path) and becomes ``interrupted``, for ``recover``. A completed session still marked open for
    follow-ups is closed.
    """
    if not any(r.is_open for r in records):
        return records
    listed = ctx.manager.list()
    out = []
    freed = False
    for record in records:
        if not record.is_open or record.status.is_parked or listed.get(record.unit, ("", ""))[1] == "running":
            out.append(record)
            continue
        state = ctx.manager.state(record.unit)
        if (state is not None and not state.has_exited) or (state is None and _launching(record)):
            out.append(record)
            continue
        reason, cause = _lost_reason(state)
        out.append(
            ctx.store.update(record.id, partial(SessionRecord.lost, reason=reason, cause=cause, vanished=state is None))
        )
        freed = True
    if freed:
        wake_queue(ctx)
    return out


def wake_queue(ctx: Context) -> None:
    """A slot freed that no runner announced (a death nobody recorded, a unit stopped before its runner ran):
    start a starter of the launch queue if sessions wait."""
    from clawunits.systemd import queuekick

    try:
        queuekick.kick(ctx.store, ctx.environ)
    except Exception as e:  # noqa: BLE001 - best effort: the next slot freed, launch or boot drains it
        import logging  # only here: the logging package costs every CLI call ~4 ms to import

        logging.getLogger(__name__).warning("clawunits: cannot wake the launch queue: %s", e)


def wait(
    ctx: Context, ref: str, timeout: float | None = None, until: str = "idle", interval: float = 0.2
) -> SessionRecord:
    """Block until the session waits for input or has ended (``until="end"``: has ended); returns it."""
    if until not in ("idle", "end"):
        raise InvalidInput(f"unknown wait condition {until!r}", hint="idle or end")
    record = get(ctx, ref)
    deadline = None if timeout is None else time.monotonic() + timeout

    def reached(r: SessionRecord) -> bool:
        if until == "end":
            return not r.is_open
        # Parked at a usage limit counts as idle: it waits for its window, maybe for hours.
        return r.status.is_terminal or r.status in (Status.WAITING, Status.LIMITED)

    while not reached(record):
        if deadline is not None and time.monotonic() >= deadline:
            raise StateError(f"session {record.name} [{record.id}] still {record.status.value} after {timeout:g}s")
        time.sleep(interval)
        record = get(ctx, record.id)
    return record


def _launching(record: SessionRecord) -> bool:
    """Written by ``launch`` (or ``recover``) and its unit not created yet: not a dead session (for a grace
    period)."""
    if record.status is Status.STARTING:
        since = record.created_at
    elif (record.recovered_at or record.limit_resumed_at) and record.status in (Status.RUNNING, Status.WAITING):
        since = max(record.recovered_at or "", record.limit_resumed_at or "")  # recovered, or resumed after a limit
    else:
        return False
    return (datetime.now(UTC) - parse_ts(since)).total_seconds() < LAUNCH_GRACE_SEC


def _lost_reason(state: UnitState | None) -> tuple[str, EndCause]:
    """Why a session ended unrecorded, and its end cause (``oom`` when systemd saw an OOM kill)."""
    if state is None:
        return "the session's unit is gone and its runner recorded no exit (user manager restarted?)", EndCause.LOST
    if state.result == "oom-kill":
        return "out of memory: the kernel killed a process of the session and systemd stopped it", EndCause.OOM
    return f"the runner ended without recording an exit: {state.describe_exit()}", EndCause.LOST
