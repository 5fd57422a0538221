"""The transient unit a session runs in (by ``launch``, and again by ``recover``)."""

from __future__ import annotations

import hashlib
import os
import sys

from clawunits.records import is_secret_name, shorten
from clawunits.service.context import Context
from clawunits.state.models import SessionRecord
from clawunits.systemd import journal
from clawunits.systemd.limits import SESSION_SLICE
from clawunits.systemd.sessionenv import session_environment
from clawunits.systemd.units import UnitSpec, runtime_dir


def runner_python() -> str:
    """This interpreter, by a path without ``$``, for the runner's argv.

    ``units.py`` escapes ``$`` as ``$$`` so that the process gets its argv unchanged, but systemd 252 writes such
    an argv into the transient unit file in a form it reads back wrongly at ``daemon-reload`` (``\\$\\$``), and
    an executable path that differs from ``argv[0]`` in a form it cannot read at all (``bad-setting``). So an
    interpreter under a directory with a ``$`` in its name runs through a symlink in the runtime directory to
    its installation (the venv: Python finds ``pyvenv.cfg`` next to the path it was started by).
    """
    exe = sys.executable
    if "$" not in exe:
        return exe
    bin_dir = os.path.dirname(exe)
    root = os.path.dirname(bin_dir)
    links = runtime_dir() / "clawunits" / "python"
    links.mkdir(mode=0o700, parents=True, exist_ok=True)
    link = links / hashlib.sha256(root.encode()).hexdigest()[:16]
    if not (link.is_symlink() and os.readlink(link) == root):
        # Concurrent launches: each makes its own and renames it into place.
        tmp = links / f".{link.name}.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(root)
        os.replace(tmp, link)
    return str(link / os.path.basename(bin_dir) / os.path.basename(exe))


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
        argv=[runner_python(), "-m", "clawunits.runner", record.id],
        workdir=record.workdir,
        environment=env or current,
        syslog_identifier=journal.syslog_identifier(record.unit),
        stop_timeout_sec=ctx.settings.stopTimeoutSec,
        slice=SESSION_SLICE,
        limits=record.limits,
    )
