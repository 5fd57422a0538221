"""The daemons bootstrap starts (journald, the user manager): launched detached into their cgroups, told
apart from a later process with the same pid, and stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from clawunits.bootstrap.probe import read_file
from clawunits.errors import BootstrapError, CommandError
from clawunits.proc import run

POLL_SECONDS = 0.1

# The launcher runs as a background job of a throw-away `sh`, which prints the job's pid and exits at once:
# the daemon is then nobody's child here (no zombie, no ResourceWarning) and can be stopped from any process.
# The job writes its own pid into each cgroup.procs given before `--` (a leading `?` marks one it may fail to
# join), then execs the rest of its arguments, so the daemon keeps that pid and cgroup.
_OUTER = 'log=$1; shift; /bin/sh -c "$0" clawunits-launch "$@" </dev/null >>"$log" 2>&1 & echo $!'
_INNER = (
    'while [ "$1" != -- ]; do case $1 in'
    ' \\?*) echo $$ >"${1#?}" 2>/dev/null || :;;'
    ' *) echo $$ >"$1" || exit 121;; esac; shift; done; shift; exec "$@"'
)


@dataclass(frozen=True)
class Proc:
    """A daemon started by :func:`ensure_user_manager`."""

    pid: int
    start_time: int  # /proc/PID/stat field 22; tells our process from a later one that reused the pid
    log: str

    def is_alive(self) -> bool:
        return _is_alive(self.pid, self.start_time)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a pid, or None when it does not exist."""
    text = read_file(Path(f"/proc/{pid}/stat"))
    if not text:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def _is_alive(pid: int, start_time: int) -> bool:
    st = _proc_stat(pid)
    if st is None or st[1] != start_time:
        return False
    if st[0] == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
        return False
    return True


def launch(argv: list[str], log: Path, env: dict[str, str], cgroup_procs: list[Path]) -> Proc:
    """Start ``argv`` detached (own session, stdin /dev/null, output appended to ``log``) and return it."""
    shell = ["/bin/sh", "-c", _OUTER, _INNER, str(log), *map(str, cgroup_procs), "--", *argv]
    try:
        res = run(shell, check=False, env=env, new_session=True)
    except CommandError as e:
        raise BootstrapError(f"could not start {argv[0]}: {e.message}") from None
    try:
        pid = int(res.stdout.strip())
    except ValueError:
        raise BootstrapError(f"could not start {argv[0]}: {res.stderr.strip() or 'no pid'}") from None
    st = _proc_stat(pid)
    proc = Proc(pid=pid, start_time=st[1] if st else 0, log=str(log))
    if st is None:
        raise BootstrapError(f"{argv[0]} exited at once", hint=log_hint(proc))
    return proc


def stop(proc: Proc, timeout: float) -> str:
    if not proc.is_alive():
        return "already gone"
    os.kill(proc.pid, signal.SIGTERM)
    if _wait_dead(proc, timeout):
        return "stopped"
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    _wait_dead(proc, 5.0)
    return "killed (did not stop on SIGTERM)"


def _wait_dead(proc: Proc, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while proc.is_alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def log_hint(proc: Proc) -> str:
    lines = read_file(Path(proc.log)).splitlines()[-15:]
    if lines:
        return f"log {proc.log}:\n  " + "\n  ".join(lines)
    # The user manager logs to the journal once it is up.
    return f"its log {proc.log} is empty; try `journalctl _PID={proc.pid}`"
