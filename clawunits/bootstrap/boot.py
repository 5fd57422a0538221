"""Find, or start where none runs, the systemd user manager and journald that clawunits needs.

On a normal host both already run (journald under PID 1, ``user@UID.service`` through logind or lingering) and
this module only finds them. On machines without systemd as PID 1 (containers, CI VMs) it starts, as root, a
standalone ``systemd-journald`` and ``systemd --user``. The manager is placed in the cgroup
``user.slice/user-UID.slice/user@UID.service`` first, because journald derives ``_SYSTEMD_USER_UNIT`` from the
cgroup path of the writer. :class:`Booted` records exactly what was started or created, so :func:`teardown`
can undo it, also from another process::

    python -m clawunits.bootstrap up|down|status [--json] [--uid UID]

This module is the package's entry point (:func:`ensure_user_manager`, :func:`teardown`, :func:`probe`,
:func:`user_env`); the parts live beside it: probe, placement (cgroups), daemons, state, teardown, cli.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pwd
import shutil
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clawunits.bootstrap.daemons import POLL_SECONDS, Proc, launch, log_hint
from clawunits.bootstrap.placement import cgroup_roots, make_user_cgroup, resource_roots
from clawunits.bootstrap.probe import (
    DEFAULT_PATH,
    JOURNAL_DIR,
    JOURNAL_STDOUT,
    SYSTEM_MARKER,
    Probe,
    base_env,
    find_systemctl,
    listener_pid,
    probe,
    runtime_dir,
    user_env,
)
from clawunits.bootstrap.state import Booted
from clawunits.bootstrap.teardown import teardown
from clawunits.errors import BootstrapError

__all__ = ["Booted", "BootstrapError", "Probe", "Proc", "ensure_user_manager", "probe", "teardown", "user_env"]

LIBEXEC_DIRS = (Path("/lib/systemd"), Path("/usr/lib/systemd"))
USER_UNIT_DIRS = (Path("/etc/systemd/user"), Path("/usr/lib/systemd/user"), Path("/lib/systemd/user"))


@dataclass(frozen=True)
class _User:
    uid: int
    gid: int
    name: str
    home: str
    shell: str

    @property
    def runtime_dir(self) -> Path:
        return runtime_dir(self.uid)


def _user(uid: int) -> _User:
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        raise BootstrapError(f"uid {uid} has no passwd entry", hint="create the user (useradd)") from None
    return _User(uid, pw.pw_gid, pw.pw_name, pw.pw_dir, pw.pw_shell or "/bin/sh")


def ensure_user_manager(uid: int | None = None, timeout: float = 15.0, log_dir: Path | None = None) -> Booted:
    """Make journald, the user manager and the user bus of ``uid`` usable; start only what is missing.

    Returns what was started or created (empty when everything ran). Idempotent; concurrent callers are
    serialised by a lock and the later ones find what the first started. Raises :class:`BootstrapError`
    when it cannot (not root, systemd is PID 1 but no manager runs, a binary is missing, timeout).
    """
    user = _user(os.getuid() if uid is None else uid)
    deadline = time.monotonic() + timeout
    nothing = Booted(uid=user.uid, runtime_dir=str(user.runtime_dir))
    found = probe(user.uid)
    if found.usable:
        return nothing
    if found.journald and found.manager and found.manager_cgroup_ok:
        # Everything runs, but the manager is still starting or its bus socket is not there yet.
        if not found.user_bus:
            _check_dbus_user_session()
        _wait_usable(user.uid, deadline, None)
        return nothing
    _check_can_boot(found, user)
    with lock(user.uid, deadline):
        found = probe(user.uid)  # another process may have booted while we waited
        if found.usable:
            return nothing
        boot = _Boot(user, deadline, log_dir)
        try:
            boot.run(found)
        except BaseException:
            teardown(boot.booted, timeout=5.0)
            raise
        return boot.booted


def _check_can_boot(found: Probe, user: _User) -> None:
    missing = ", ".join(found.missing())
    if found.manager and not found.manager_cgroup_ok:
        raise BootstrapError(
            f"the user manager (pid {found.manager_pid}) runs in cgroup {found.manager_cgroup}, outside "
            f"user@{user.uid}.service, so journald cannot tell its units apart",
            hint=f"stop it (kill {found.manager_pid}) and run `python -m clawunits.bootstrap up` as root",
        )
    if found.pid1_systemd:
        # A real systemd host: never hand-start daemons next to PID 1; logind owns user managers there.
        hint = f"run `loginctl enable-linger {user.name}` (starts user@{user.uid}.service now and at boot)"
        if not found.journald:
            hint = "run `systemctl start systemd-journald`"
        elif found.manager and not found.user_bus:
            hint = (
                "install dbus-user-session (`apt-get install dbus-user-session`), then "
                "`systemctl --user daemon-reload && systemctl --user start dbus.socket`"
            )
        raise BootstrapError(f"not usable: {missing}", hint=hint)
    if os.geteuid() != 0:
        raise BootstrapError(
            f"not usable: {missing}; starting it needs root on a host without systemd as PID 1",
            hint=f"run `sudo {sys.executable} -m clawunits.bootstrap up --uid {user.uid}`",
        )


@contextlib.contextmanager
def lock(uid: int, deadline: float) -> Iterator[None]:
    lock_dir = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
    path = lock_dir / f"clawunits-bootstrap-{uid}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BootstrapError(f"timed out waiting for {path} (another bootstrap runs)") from None
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(fd)


class _Boot:
    """One boot attempt; ``booted`` always holds what was done so far, so a failure can be undone."""

    def __init__(self, user: _User, deadline: float, log_dir: Path | None) -> None:
        self.user = user
        self.deadline = deadline
        self.custom_log_dir = log_dir
        self.log_dir = log_dir or user.runtime_dir / "clawunits-bootstrap"
        self.booted = Booted(uid=user.uid, runtime_dir=str(user.runtime_dir))

    def run(self, found: Probe) -> None:
        # Check every prerequisite before starting anything.
        journald_bin = None if found.journald else libexec("systemd-journald", "journald")
        manager_bin = None if found.manager else libexec("systemd", "the user manager")
        if manager_bin:
            self._check_manager_prerequisites()
        if not found.user_bus:
            _check_dbus_user_session()
        if manager_bin:
            self._make_runtime_dir()
        if journald_bin or manager_bin:
            self._make_dir(self.log_dir, tree=self.custom_log_dir is None, mode=0o700)
        if journald_bin:
            self._start_journald(journald_bin)
        if manager_bin:
            self._start_manager(manager_bin)
        _wait_usable(self.user.uid, self.deadline, self.booted.manager or self.booted.journald)

    def _check_manager_prerequisites(self) -> None:
        if find_systemctl() is None:
            raise BootstrapError("systemctl not found", hint="apt-get install systemd")
        if not cgroup_roots():
            raise BootstrapError(
                "no cgroup hierarchy for systemd (neither cgroup2 nor name=systemd is mounted)",
                hint="mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup`",
            )

    def _record(self, **changes: Any) -> None:
        self.booted = dataclasses.replace(self.booted, **changes)

    def _make_dir(self, path: Path, *, tree: bool = False, mode: int = 0o755) -> None:
        """Create ``path`` and missing parents, recording each one created."""
        missing = [p for p in (*reversed(path.parents), path) if not p.exists()]
        for p in missing:
            try:
                p.mkdir()
                os.chmod(p, mode)  # not left to the umask: other users must reach /run/user, /run/systemd
            except FileExistsError:
                continue  # created concurrently by someone else: not ours
            except OSError as e:
                raise BootstrapError(f"cannot create {p}: {e.strerror}") from None
            if tree and p == path:
                self._record(trees=(*self.booted.trees, str(p)))
            else:
                self._record(dirs=(*self.booted.dirs, str(p)))

    def _make_runtime_dir(self) -> None:
        rd = self.user.runtime_dir
        if not rd.exists():
            self._make_dir(rd.parent)
            self._make_dir(rd, tree=True, mode=0o700)
            os.chown(rd, self.user.uid, self.user.gid)
        st = rd.stat()
        if st.st_uid != self.user.uid:
            raise BootstrapError(
                f"{rd} belongs to uid {st.st_uid}, not {self.user.uid}",
                hint=f"remove it or `chown {self.user.uid} {rd}`",
            )
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(rd, 0o700)

    def _start_journald(self, binary: str) -> None:
        self._make_dir(JOURNAL_DIR, tree=True)
        proc = launch([binary], self.log_dir / "journald.log", base_env(), [])
        self._record(journald=proc)
        while listener_pid(JOURNAL_STDOUT) is None:
            _tick(self.deadline, proc, f"journald to accept connections on {JOURNAL_STDOUT}")

    def _start_manager(self, binary: str) -> None:
        self._make_dir(SYSTEM_MARKER)
        procs_files = [self._make_cgroup(root) / "cgroup.procs" for root in cgroup_roots()]
        # Best effort: without them sessions run, only without enforced resource limits (doctor says so).
        for root in resource_roots():
            with contextlib.suppress(BootstrapError):
                procs_files.append(Path(f"?{self._make_cgroup(root) / 'cgroup.procs'}"))
        u = self.user
        env = (
            base_env()
            | user_env(u.uid)
            | {"HOME": u.home, "USER": u.name, "LOGNAME": u.name, "SHELL": u.shell}
            # Log to the journal, as user@.service does on a normal host ("Started …" lines with USER_UNIT=).
            | {"SYSTEMD_LOG_TARGET": "journal-or-kmsg"}
        )
        if u.uid != os.geteuid():
            env["PATH"] = DEFAULT_PATH  # not root's PATH (pyenv shims etc.)
        argv = [binary, "--user"]
        if u.uid != os.geteuid():
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise BootstrapError(
                    "setpriv not found (needed to start another user's manager)",
                    hint="apt-get install util-linux",
                )
            argv = [setpriv, f"--reuid={u.uid}", f"--regid={u.gid}", "--init-groups", "--", *argv]
        self._record(manager=launch(argv, self.log_dir / "user-manager.log", env, procs_files))

    def _make_cgroup(self, root: Path) -> Path:
        def created(path: str) -> None:
            self._record(cgroups=(*self.booted.cgroups, path))

        return make_user_cgroup(root, self.user.uid, self.user.gid, created)


def _wait_usable(uid: int, deadline: float, proc: Proc | None) -> None:
    while True:
        p = probe(uid)
        if p.usable:
            return
        _tick(deadline, proc, ", ".join(p.missing()))


def _tick(deadline: float, proc: Proc | None, waiting_for: str) -> None:
    """Sleep a little; raise when ``proc`` (the daemon being waited for) died or the deadline passed."""
    if proc is not None and not proc.is_alive():
        name = Path(proc.log).stem
        raise BootstrapError(f"{name} (pid {proc.pid}) exited while starting", hint=log_hint(proc))
    if time.monotonic() >= deadline:
        raise BootstrapError(
            f"timed out waiting for {waiting_for}",
            hint=log_hint(proc) if proc else "see `systemctl --user status`, or retry with a longer timeout",
        )
    time.sleep(POLL_SECONDS)


def _check_dbus_user_session() -> None:
    if not any((d / "dbus.socket").exists() for d in USER_UNIT_DIRS):
        raise BootstrapError(
            "no user unit dbus.socket: the user bus ($XDG_RUNTIME_DIR/bus) would never appear",
            hint="apt-get install dbus-user-session (then restart the user manager)",
        )


def libexec(name: str, what: str) -> str:
    for d in LIBEXEC_DIRS:
        if os.access(d / name, os.X_OK):
            return str(d / name)
    raise BootstrapError(
        f"{what} binary {name} not found in {', '.join(map(str, LIBEXEC_DIRS))}",
        hint="apt-get install systemd",
    )
