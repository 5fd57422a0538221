"""Sessions parked at a usage limit: resuming one (what its timer runs, or by hand), arming its timer again at
the user manager's start, and disarming it when the session is killed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from clawunits.errors import SystemdError
from clawunits.records import utc_now_iso
from clawunits.service import sessions
from clawunits.service.authority import Action
from clawunits.service.context import Context
from clawunits.service.recover import _unload
from clawunits.service.results import Recovery, RecoveryAction
from clawunits.service.unitspec import runner_python, unit_spec
from clawunits.state.models import SessionRecord, Status, parse_ts
from clawunits.systemd import resume_timer

# A resume that failed to start its unit is tried again this much later.
RETRY_SEC = 60.0
# How long a runner that just parked may take to exit before its unit is reused.
EXIT_WAIT_SEC = 30.0


def unpark(ctx: Context, ref: str, agent: str | None = None, timer: bool = False) -> Recovery:
    """Resume a parked session now, as itself: the same unit name and Claude session (its runner continues the
    turn the limit stopped). ``timer``: run by the session's own timer (whose service must not stop itself)."""
    record = sessions.get(ctx, ref, agent)
    ctx.authorize(Action.RECOVER, record)
    with ctx.store.lock("recover"):
        return resume(ctx, ctx.store.load(record.id), timer)


def resume(ctx: Context, record: SessionRecord, timer: bool = False) -> Recovery:
    """Start a parked session's unit again (``unpark``, and ``recover --boot`` for one whose reset passed)."""
    if record.status is not Status.LIMITED:
        return Recovery(record, RecoveryAction.SKIPPED, f"it is {record.status.value}: not parked")
    if not timer:
        resume_timer.disarm(ctx.manager, resume_timer.stem(record))
    deadline = time.monotonic() + EXIT_WAIT_SEC
    while (state := ctx.manager.state(record.unit)) is not None and state.is_running and not state.has_exited:
        if time.monotonic() > deadline:
            return Recovery(record, RecoveryAction.SKIPPED, "its unit is still running")
        time.sleep(0.1)
    try:
        if state is not None:
            _unload(ctx, record.unit)
    except SystemdError as e:
        return _retry(ctx, record, f"resume failed: {e.message}", timer)
    resumed = ctx.store.update(record.id, lambda r: r.unparked())
    if resumed.status is Status.LIMITED or resumed.limit_resumes == record.limit_resumes:
        return Recovery(resumed, RecoveryAction.SKIPPED, f"it is {resumed.status.value}: not parked")
    try:
        ctx.manager.start(unit_spec(ctx, resumed))
    except SystemdError as e:
        ctx.store.update(record.id, lambda r: record if r.limit_resumes == resumed.limit_resumes else None)
        return _retry(ctx, record, f"resume failed: {e.message}", timer)
    started = ctx.manager.state(record.unit)
    how = f"resumes Claude session {record.claude_session_id} after its {record.limit_window} usage limit"
    return Recovery(resumed, RecoveryAction.RESUMED, how, started.invocation_id if started else None)


def _retry(ctx: Context, record: SessionRecord, why: str, timer: bool) -> Recovery:
    """The unit did not start: the session stays parked, a timer fires again a minute later (from inside the
    timer's own service: a second timer, the first one's name is still taken)."""
    later = (datetime.now(UTC) + timedelta(seconds=RETRY_SEC)).isoformat().replace("+00:00", "Z")
    back = ctx.store.update(record.id, lambda r: r.with_changes(limit_resets_at=later, reason=why))
    try:
        arm(ctx, back, retry=timer)
    except SystemdError as e:
        why += f"; its timer could not be armed again ({e.message}): `clawunits unpark` resumes it"
    return Recovery(back, RecoveryAction.ERROR, why)


def arm(ctx: Context, record: SessionRecord, retry: bool = False) -> None:
    """Arm ``record``'s timer from the service side (the runner arms it itself when it parks)."""
    env = unit_spec(ctx, record).environment
    retry = retry and resume_timer.in_use(ctx.manager, record)
    resume_timer.arm(ctx.manager, resume_timer.spec(record, runner_python(), env, retry))


def rearm(ctx: Context) -> list[Recovery]:
    """At the user manager's start (``recover --boot``): a reboot took the transient timers. A parked session
    whose reset passed is resumed now; the others get their timer again."""
    done: list[Recovery] = []
    now = utc_now_iso()
    for record in sessions.list_sessions(ctx, include_archived=True):
        if record.status is not Status.LIMITED or not record.limit_resets_at:
            continue
        if parse_ts(record.limit_resets_at) <= parse_ts(now):
            done.append(resume(ctx, record))
        elif not resume_timer.armed(ctx.manager, record):
            arm(ctx, record)
            done.append(Recovery(record, RecoveryAction.REARMED, f"its timer resumes it at {record.limit_resets_at}"))
    return done


def disarm(ctx: Context, record: SessionRecord) -> None:
    """The session will never be resumed (killed): its timer goes."""
    resume_timer.disarm(ctx.manager, resume_timer.stem(record))
