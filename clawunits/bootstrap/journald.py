"""Restarting journald, as a host does on an upgrade of systemd: the journald the bootstrap started, or the one
systemd runs. For tests of what survives it; every process on the host logs through it, so the outage is kept
short and the function returns only once journald accepts lines again."""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from pathlib import Path

from clawunits.bootstrap.boot import libexec, lock
from clawunits.bootstrap.daemons import POLL_SECONDS, launch, stop
from clawunits.bootstrap.probe import JOURNAL_STDOUT, base_env, find_systemctl, listener_pid, probe, read_file
from clawunits.bootstrap.state import load_state, save_state
from clawunits.errors import BootstrapError, CommandError
from clawunits.proc import run

# journald flushes and exits on SIGTERM in well under a second; SIGKILL after this.
STOP_TIMEOUT_SEC = 5.0
MARKER_IDENTIFIER = "clawunits-bootstrap"


def restart_journald(uid: int | None = None, timeout: float = 15.0) -> str:
    """Stop and start journald: the standalone one the bootstrap started (its record is updated), else, where
    systemd is PID 1, ``systemd-journald.service`` (as root). Returns what it did, once journald stores lines
    again. Raises :class:`BootstrapError` for a journald neither started."""
    uid = os.getuid() if uid is None else uid
    deadline = time.monotonic() + timeout
    saved = load_state(uid)
    if saved is not None and saved.journald is not None and saved.journald.is_alive():
        with lock(uid, deadline):
            saved = load_state(uid) or saved  # as another process may have left it
            old = saved.journald
            if old is None or not old.is_alive():
                raise BootstrapError("the journald the bootstrap started is gone", hint="run bootstrap up")
            stop(old, STOP_TIMEOUT_SEC)
            log = Path(old.log)
            new = launch([libexec("systemd-journald", "journald")], log, base_env(), [])
            save_state(dataclasses.replace(saved, journald=new))
            _wait_listening(deadline)
        done = f"restarted standalone journald (pid {old.pid} -> {new.pid})"
    elif probe(uid).pid1_systemd:
        systemctl = find_systemctl()
        if systemctl is None or os.geteuid() != 0:
            raise BootstrapError("restarting systemd-journald needs root and systemctl", hint="run it as root")
        try:
            run([systemctl, "restart", "systemd-journald.service"], timeout=timeout)
        except CommandError as e:
            raise BootstrapError(f"could not restart systemd-journald: {e.message}") from None
        _wait_listening(deadline)
        done = "restarted systemd-journald.service (its fd store keeps the stdout streams)"
    else:
        pid = listener_pid(JOURNAL_STDOUT)
        comm = read_file(Path(f"/proc/{pid}/comm")).strip() if pid else ""
        raise BootstrapError(
            f"journald ({comm or 'nothing'} pid {pid}) was started neither by clawunits.bootstrap nor by systemd",
            hint="restart it the way it was started",
        )
    _wait_storing(deadline)
    return done


def _wait_listening(deadline: float) -> None:
    while listener_pid(JOURNAL_STDOUT) is None:
        if time.monotonic() >= deadline:
            raise BootstrapError(f"journald did not accept connections on {JOURNAL_STDOUT} again")
        time.sleep(POLL_SECONDS)


def _wait_storing(deadline: float) -> None:
    """Write a line through a new stdout stream (systemd-cat) and wait until journalctl shows it."""
    marker = f"journald restarted {secrets.token_hex(6)}"
    try:
        run(["systemd-cat", "-t", MARKER_IDENTIFIER, "echo", marker], timeout=10)
    except CommandError as e:
        raise BootstrapError(f"journald does not take lines after its restart: {e.message}") from None
    argv = ["journalctl", "--no-pager", "-q", "-o", "cat", f"SYSLOG_IDENTIFIER={MARKER_IDENTIFIER}", "-n", "20"]
    while marker not in run(argv, check=False, timeout=10).stdout:
        if time.monotonic() >= deadline:
            raise BootstrapError("journald accepts connections but does not store lines", hint="see its log")
        time.sleep(POLL_SECONDS)
