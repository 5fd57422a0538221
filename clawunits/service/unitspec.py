"""The transient unit a session runs in (by ``launch``, and again by ``recover``)."""

from __future__ import annotations

import sys

from clawunits.records import is_secret_name, shorten
from clawunits.service.context import Context
from clawunits.state.models import SessionRecord
from clawunits.systemd import journal
from clawunits.systemd.limits import SESSION_SLICE
from clawunits.systemd.sessionenv import session_environment
from clawunits.systemd.units import UnitSpec


def unit_spec(ctx: Context, record: SessionRecord) -> UnitSpec:
    fixed = {
        "CLAWUNITS_STATE_DIR": str(ctx.store.root),
        "CLAWUNITS_SESSION_ID": record.id,
        "PYTHONUNBUFFERED": "1",
    }
    if ctx.settings.claudePath:
        fixed["CLAWUNITS_CLAUDE_PATH"] = ctx.settings.claudePath
    # The environment it was launched with (a recovery runs as the original did, CLAUDE_CONFIG_DIR and
    # ANTHROPIC_BASE_URL included), but secrets, which are never stored, from this caller's environment
    # (at boot: the user manager's, e.g. ~/.config/environment.d). Records without one get the caller's.
    current = session_environment(ctx.environ, ctx.settings, fixed)
    env = None
    if record.environment:
        secrets = {k: v for k, v in current.items() if is_secret_name(k)}
        env = {**record.environment, **secrets, **fixed}
    return UnitSpec(
        name=record.unit,
        description=f"clawunits session {record.name} [{record.id}]: {shorten(record.prompt, 60)}",
        argv=[sys.executable, "-m", "clawunits.runner", record.id],
        workdir=record.workdir,
        environment=env or current,
        syslog_identifier=journal.syslog_identifier(record.unit),
        stop_timeout_sec=ctx.settings.stopTimeoutSec,
        slice=SESSION_SLICE,
        limits=record.limits,
    )
