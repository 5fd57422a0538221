"""The timer that resumes a session parked at a usage limit: ``clawunits-resume-<name>-<id>.timer``, a
transient timer at the reset time (UTC) whose transient oneshot service runs ``clawunits unpark <id>``.

Transient units are written under ``$XDG_RUNTIME_DIR/systemd/transient``: they survive a ``daemon-reload``
but not a reboot, so ``clawunits recover --boot`` arms them again (or resumes a session whose reset passed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clawunits.errors import SystemdError
from clawunits.state.models import SessionRecord, parse_ts
from clawunits.systemd.units import TimerSpec, UserManager

PREFIX = "clawunits-resume-"
RETRY = "-retry"
# Environment of the session unit that belongs to that unit alone.
UNIT_ONLY = ("CLAWUNITS_SESSION_ID", "INVOCATION_ID", "JOURNAL_STREAM", "SYSTEMD_EXEC_PID", "MANAGERPID")


def stem(record: SessionRecord) -> str:
    """``clawunits-resume-<name>-<id>`` for the session unit ``clawunits-<name>-<id>.service``."""
    return PREFIX + record.unit.removeprefix("clawunits-").removesuffix(".service")


# A timer for a time already past would never fire: it fires this soon instead.
SOONEST_SEC = 2


def calendar_time(iso: str) -> str:
    """An ISO 8601 timestamp as a systemd calendar time in UTC (``2026-12-07 14:05:00 UTC``), at least
    ``SOONEST_SEC`` from now."""
    at = max(parse_ts(iso).astimezone(UTC), datetime.now(UTC) + timedelta(seconds=SOONEST_SEC))
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def spec(record: SessionRecord, python: str, environment: dict[str, str], retry: bool = False) -> TimerSpec:
    """The timer of ``record`` (parked, ``limit_resets_at`` set): its service runs ``python -m clawunits unpark``
    with ``environment`` (the session's own, secrets included, so that the resumed unit gets them). ``retry``:
    the timer armed again from inside the first one's service, whose name is still taken."""
    assert record.limit_resets_at is not None
    env = {k: v for k, v in environment.items() if k not in UNIT_ONLY}
    return TimerSpec(
        stem=stem(record) + (RETRY if retry else ""),
        description=f"clawunits: resume session {record.name} [{record.id}] after its usage limit",
        at=calendar_time(record.limit_resets_at),
        argv=[python, "-m", "clawunits", "unpark", "--timer", record.id],
        environment=env,
    )


def arm(manager: UserManager, timer: TimerSpec) -> None:
    """Start the timer, replacing one of the same name that is still loaded."""
    try:
        manager.stop(timer.timer, timeout=30)
    except SystemdError as e:
        if e.code != "no-such-unit":
            raise
    manager.start_timer(timer)


def in_use(manager: UserManager, record: SessionRecord) -> bool:
    """Whether the first timer's service is running (a retry from inside it must use the other name)."""
    name = stem(record) + ".service"
    return manager.list(name).get(name, ("", ""))[0] in ("active", "activating")


def armed(manager: UserManager, record: SessionRecord) -> bool:
    loaded = manager.list(stem(record) + "*.timer")
    return any(name in loaded for name in (stem(record) + ".timer", stem(record) + RETRY + ".timer"))


def disarm(manager: UserManager, name: str, service: bool = True) -> None:
    """Stop the timer ``name`` (a stem) so it never fires; with ``service``, its service too (not from inside
    that service: it would stop itself)."""
    stems = (name, name + RETRY)
    units = [s + ".timer" for s in stems] + ([s + ".service" for s in stems] if service else [])
    for unit in units:
        try:
            manager.stop(unit, timeout=30)
        except SystemdError as e:
            if e.code != "no-such-unit":
                raise
