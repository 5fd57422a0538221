"""Waking the launch queue: a transient unit runs ``clawunits queue start`` when sessions wait for a slot.

A runner calls :func:`kick` when its session frees a slot (it ends, or finishes its task and waits for
follow-ups). The starter runs as its own unit (not a child of the ending session, whose cgroup is about to be
stopped), once per kick: every kick comes after the slot freed, so none is missed; concurrent starters
serialize on the store's launch lock. Nothing is started while the user manager shuts down: its next start
runs ``clawunits recover --boot``, which drains the queue.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from clawunits.state.models import Status
from clawunits.state.store import Store
from clawunits.systemd.units import UnitSpec, UserManager, manager_stopping

STARTER_PREFIX = "clawunits-queue-"
# Variables of the kicking runner that describe that session, not the starter.
NOT_INHERITED = frozenset({"CLAWUNITS_SESSION_ID", "INVOCATION_ID", "JOURNAL_STREAM", "SYSTEMD_EXEC_PID"})


def anything_queued(store: Store) -> bool:
    return any(r.status is Status.QUEUED for r in store.all())


def starter_spec(store: Store, environ: Mapping[str, str]) -> UnitSpec:
    """The starter unit: ``python -m clawunits queue start --quiet`` with the kicker's environment (its state
    directory, config and credentials: a queued session gets its secrets from whoever starts it, as a recovered
    one does)."""
    env = {k: v for k, v in environ.items() if k not in NOT_INHERITED}
    env["CLAWUNITS_STATE_DIR"] = str(store.root)
    return UnitSpec(
        name=f"{STARTER_PREFIX}{os.urandom(4).hex()}.service",
        description="clawunits: start queued sessions while slots are free",
        argv=[sys.executable, "-m", "clawunits", "queue", "start", "--quiet"],
        workdir=str(store.root),
        environment=env,
        syslog_identifier="clawunits-queue",
        remain_after_exit=False,
    )


def kick(store: Store, environ: Mapping[str, str] | None = None) -> str | None:
    """Start a starter unit if sessions are queued; its name, or None (nothing queued, or shutting down)."""
    if not anything_queued(store) or manager_stopping():
        return None
    spec = starter_spec(store, os.environ if environ is None else environ)
    with UserManager() as manager:
        manager.start(spec)
    return spec.name
