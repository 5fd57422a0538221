"""``recover``: resume the sessions a shutdown interrupted, each as itself (same id, name and unit name)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from clawunits.errors import StateError, SystemdError
from clawunits.service import sessions
from clawunits.service.authority import Action
from clawunits.service.context import Context
from clawunits.service.results import RecoverReport, Recovery, RecoveryAction
from clawunits.service.unitspec import unit_spec
from clawunits.state.models import EndCause, SessionRecord, Status, WaitingFor


def recover(
    ctx: Context, refs: list[str] | None = None, dry_run: bool = False, boot: bool = False, agent: str | None = None
) -> RecoverReport:
    """Resume sessions a shutdown interrupted, each as itself: same id, name and unit name (a new
    invocation), the same Claude session, workdir, model and permission mode, what is left of its budget.

    Without ``refs``: every interrupted session (of ``agent``, if given). ``boot`` is the run at the user
    manager's start (``clawunits-recover.service``), which ``recoverOnBoot = false`` turns off. Safe to
    run again or concurrently: one recovery at a time, and a session whose unit runs is left alone.
    """
    ctx.authorize(Action.READ if dry_run else Action.RECOVER)
    # A reboot took the timers of sessions parked at a usage limit: arm them again (recoverOnBoot or not).
    parked = _rearm_parked(ctx) if boot and not dry_run else []
    if boot and not ctx.settings.recoverOnBoot:
        _drain_queue(ctx)
        return RecoverReport(parked, dry_run, disabled="recoverOnBoot is false")
    try:
        return _recover(ctx, refs, dry_run, agent, parked)
    finally:
        if boot and not dry_run:
            # The interrupted sessions took their slots again; the launch queue gets what is left.
            _drain_queue(ctx)


def _recover(
    ctx: Context, refs: list[str] | None, dry_run: bool, agent: str | None, parked: list[Recovery]
) -> RecoverReport:
    with ctx.store.lock("recover"):
        if refs:
            chosen = [_recoverable(sessions.get(ctx, ref, agent)) for ref in refs]
        else:
            records = sessions.list_sessions(ctx, include_archived=True, agent=agent)
            chosen = [r for r in records if r.status is Status.INTERRUPTED]
        return RecoverReport(parked + [_recover_one(ctx, r, dry_run) for r in chosen], dry_run)


def _rearm_parked(ctx: Context) -> list[Recovery]:
    from clawunits.service import parking

    with ctx.store.lock("recover"):
        return parking.rearm(ctx)


def _drain_queue(ctx: Context) -> None:
    """At the user manager's start: the queue waited through the restart (its records are all it is)."""
    from clawunits.service import queue

    queue.quiet_drain(ctx)


def _recoverable(record: SessionRecord) -> SessionRecord:
    if record.status is Status.INTERRUPTED or not record.status.is_terminal:
        return record  # interrupted: recovered; running: reported as such
    raise StateError(
        f"session {record.name} [{record.id}] is {record.status.value}, not interrupted by a shutdown",
        hint=f"continue its conversation with: clawunits resume {record.name}",
    )


def _recover_one(ctx: Context, record: SessionRecord, dry_run: bool) -> Recovery:
    if record.status is Status.LIMITED:
        # Named by the caller (never chosen without refs): resumed now instead of at its reset.
        if dry_run:
            return Recovery(record, RecoveryAction.WOULD_RECOVER, "would resume it now, before its usage limit resets")
        from clawunits.service import parking

        return parking.resume(ctx, record)
    if record.status is not Status.INTERRUPTED:
        return Recovery(record, RecoveryAction.SKIPPED, f"it is {record.status.value}: nothing to recover")
    state = ctx.manager.state(record.unit)
    if state is not None and state.is_running and not state.has_exited:
        return Recovery(record, RecoveryAction.SKIPPED, "its unit is still running")
    unfit = _unrecoverable(record)
    if unfit:
        if dry_run:
            return Recovery(record, RecoveryAction.FAILED, unfit)
        failed = ctx.store.update(
            record.id,
            lambda r: (
                r.ended(Status.FAILED, f"not recovered: {unfit}", EndCause.ERROR)
                if r.status is Status.INTERRUPTED
                else None
            ),
        )
        return Recovery(failed, RecoveryAction.FAILED, unfit)
    if dry_run:
        return Recovery(record, RecoveryAction.WOULD_RECOVER, _resumes_how(record))
    if state is not None:
        try:
            _unload(ctx, record.unit)
        except SystemdError as e:
            return Recovery(record, RecoveryAction.ERROR, f"recovery failed: {e.message}")
    resumed = ctx.store.update(record.id, lambda r: r.recovering())
    if resumed.status is Status.INTERRUPTED or resumed.recoveries == record.recoveries:
        return Recovery(resumed, RecoveryAction.SKIPPED, f"it is {resumed.status.value}: nothing to recover")
    try:
        ctx.manager.start(unit_spec(ctx, resumed))
    except SystemdError as e:
        why = f"recovery failed: {e.message}"
        back = ctx.store.update(record.id, lambda r: record.with_changes(reason=why))
        return Recovery(back, RecoveryAction.ERROR, why)
    started = ctx.manager.state(record.unit)
    return Recovery(resumed, RecoveryAction.RECOVERED, _resumes_how(record), started.invocation_id if started else None)


def _unload(ctx: Context, unit: str, timeout: float = 30.0) -> None:
    """Make the unit name free for a new start: a finished unit stays loaded (RemainAfterExit) or failed."""
    deadline = time.monotonic() + timeout
    asked = False
    while (state := ctx.manager.state(unit)) is not None:
        if state.active_state == "failed" or not asked:
            with contextlib.suppress(SystemdError):
                ctx.manager.reset(unit)
            asked = True
        if time.monotonic() > deadline:
            raise SystemdError(f"unit {unit} of the interrupted session is still loaded after {timeout:g}s")
        time.sleep(0.05)


def _unrecoverable(record: SessionRecord) -> str | None:
    """Why an interrupted session cannot go on, or None."""
    left = record.budget_usd - record.prior_cost_usd - record.cost_usd
    if left <= 0:
        return f"its ${record.budget_usd:g} budget is spent"
    path = Path(record.workdir)
    if not path.is_dir():
        return f"its workdir {record.workdir} is gone"
    return None


def _resumes_how(record: SessionRecord) -> str:
    if not record.claude_session_id:
        return "starts over with its prompt (it was interrupted before Claude Code started)"
    if record.waiting_for is WaitingFor.QUESTION:
        return f"resumes Claude session {record.claude_session_id}, waiting for the answer to its question"
    return f"resumes Claude session {record.claude_session_id} and continues its turn"
