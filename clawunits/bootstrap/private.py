"""A private user manager: a second ``systemd --user`` of the same user with its own ``XDG_RUNTIME_DIR`` (its
sockets, bus and runtime units), which a test may stop and start as a reboot would without touching the
user's own manager (logind's ``user@UID.service`` where systemd is PID 1, or the one the bootstrap started).

Where systemd is PID 1 it runs as a transient system service ``clawunits-test-manager-TAG.service`` in
``user-UID.slice`` with ``Delegate=yes`` and ``KillMode=mixed``, as logind's ``user@.service`` does; elsewhere
it is launched like the bootstrap's manager into a cgroup of that name, so both cases look alike to journald.
journald names a user unit only below a ``user@UID.service`` cgroup, a name PID 1 gives to logind's manager
alone: lines of a private manager's units carry no ``_SYSTEMD_USER_UNIT``, and are found by their
``SYSLOG_IDENTIFIER`` (the unit's stem), as clawunits' readers do anyway.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from clawunits.bootstrap.boot import libexec
from clawunits.bootstrap.daemons import POLL_SECONDS, Proc, launch, log_hint
from clawunits.bootstrap.placement import cgroup_roots, make_user_cgroup, resource_roots
from clawunits.bootstrap.probe import READY_STATES, base_env, find_systemctl, listener_pid, probe, read_file
from clawunits.bootstrap.teardown import remove_cgroup
from clawunits.errors import BootstrapError, CommandError
from clawunits.proc import run

STOP_TIMEOUT_SEC = 120.0


@dataclass(frozen=True)
class PrivateManager:
    """One private user manager: where it lives, and how it runs (a PID-1 unit, or a process of ours)."""

    uid: int
    tag: str
    runtime_dir: Path
    under_pid1: bool
    proc: Proc | None = None  # the manager process (hosts without systemd as PID 1)
    cgroups: tuple[str, ...] = ()  # created for it, parents first (hosts without systemd as PID 1)

    @property
    def service(self) -> str:
        """The service it runs as (PID 1's unit, or the name of its cgroup)."""
        return f"clawunits-test-manager-{self.tag}.service"

    def env(self) -> dict[str, str]:
        """What a process needs to reach this manager and its bus instead of the user's own."""
        rd = self.runtime_dir
        return {"XDG_RUNTIME_DIR": str(rd), "DBUS_SESSION_BUS_ADDRESS": f"unix:path={rd}/bus"}

    def main_pid(self) -> int | None:
        return listener_pid(self.runtime_dir / "systemd" / "private")


def start_private_manager(tag: str, under_pid1: bool | None = None, timeout: float = 60.0) -> PrivateManager:
    """Start a private manager for the current user (root: the cgroups and, under PID 1, the unit need it)
    and wait until it runs and its bus answers. ``under_pid1`` defaults to whether systemd is PID 1."""
    if os.geteuid() != 0:
        raise BootstrapError("a private user manager needs root", hint="run the tests as root")
    uid = os.getuid()
    rd = Path(f"/run/user/{uid}-clawunits-{tag}")
    rd.mkdir(mode=0o700, parents=False, exist_ok=True)
    pm = PrivateManager(uid, tag, rd, probe(uid).pid1_systemd if under_pid1 is None else under_pid1)
    return _start(pm, time.monotonic() + timeout)


def stop_private_manager(pm: PrivateManager, timeout: float = STOP_TIMEOUT_SEC) -> None:
    """What a shutdown does to it: SIGTERM to the manager, which stops every unit, then exits."""
    if pm.under_pid1:
        _systemctl("stop", pm.service, timeout=timeout)
    elif (pid := pm.main_pid()) is not None:
        # The manager that listens on its socket now (the record may name one before a restart).
        os.kill(pid, signal.SIGTERM)
        _wait(lambda: not _alive(pid), time.monotonic() + timeout, "the private user manager to stop")


def restart_private_manager(pm: PrivateManager, timeout: float = STOP_TIMEOUT_SEC) -> PrivateManager:
    """Stop it as a shutdown would, and start it again in the same place (it runs its enabled units)."""
    stop_private_manager(pm, timeout)
    return _start(pm, time.monotonic() + timeout)


def remove_private_manager(pm: PrivateManager) -> None:
    """Stop it and remove what was created for it: its cgroups and its runtime directory."""
    with contextlib.suppress(BootstrapError):
        stop_private_manager(pm)
    if not pm.under_pid1 and (pid := pm.main_pid()) is not None:
        os.kill(pid, signal.SIGKILL)
    for cg in reversed(pm.cgroups):
        remove_cgroup(Path(cg), [])
    shutil.rmtree(pm.runtime_dir, ignore_errors=True)


def _start(pm: PrivateManager, deadline: float) -> PrivateManager:
    binary = libexec("systemd", "the user manager")
    user = pwd.getpwuid(pm.uid)
    env = base_env() | pm.env() | {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name}
    # Not the user's own unit directories: the units they enable (a clawunits notifier over their real state)
    # must not start a second time here. Runtime units ($XDG_RUNTIME_DIR/systemd/user) are this manager's.
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data")):
        (pm.runtime_dir / sub).mkdir(mode=0o700, exist_ok=True)
        env[var] = str(pm.runtime_dir / sub)
    env |= {"SHELL": user.pw_shell or "/bin/sh", "SYSTEMD_LOG_TARGET": "journal-or-kmsg"}
    if pm.under_pid1:
        systemd_run = shutil.which("systemd-run") or "systemd-run"
        argv = [
            systemd_run, "--quiet", "--collect", f"--unit={pm.service}", f"--slice=user-{pm.uid}.slice",
            "--property=Type=notify", "--property=Delegate=yes", "--property=KillMode=mixed",
            f"--property=TimeoutStopSec={int(STOP_TIMEOUT_SEC)}",
            *(f"--setenv={k}={v}" for k, v in env.items()), binary, "--user",
        ]  # fmt: skip
        try:
            run(argv, timeout=max(1.0, deadline - time.monotonic()))
        except CommandError as e:
            raise BootstrapError(f"could not start the private user manager {pm.service}: {e.message}") from None
    else:
        cgroups: list[str] = list(pm.cgroups)

        def created(path: str) -> None:
            cgroups.append(path)

        def cgroup(root: Path) -> Path:
            return make_user_cgroup(root, pm.uid, user.pw_gid, created, pm.service)

        procs = [cgroup(root) / "cgroup.procs" for root in cgroup_roots()]
        for root in resource_roots():  # best effort, as for the bootstrap's manager
            with contextlib.suppress(BootstrapError):
                procs.append(Path(f"?{cgroup(root)}/cgroup.procs"))
        proc = launch([binary, "--user"], pm.runtime_dir / "manager.log", env, procs)
        pm = replace(pm, proc=proc, cgroups=tuple(dict.fromkeys(cgroups)))
    _wait(lambda: _ready(pm), deadline, "the private user manager to run", pm.proc)
    return pm


def _ready(pm: PrivateManager) -> bool:
    if pm.main_pid() is None or not (pm.runtime_dir / "bus").exists():
        return False
    systemctl = find_systemctl() or "systemctl"
    try:
        state = run([systemctl, "--user", "is-system-running"], check=False, timeout=5, env=base_env() | pm.env())
    except CommandError:
        return False
    return state.stdout.strip() in READY_STATES


def _alive(pid: int) -> bool:
    stat = read_file(Path(f"/proc/{pid}/stat"))
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"


def _systemctl(*args: str, timeout: float) -> None:
    try:
        run([find_systemctl() or "systemctl", *args], timeout=timeout)
    except CommandError as e:
        raise BootstrapError(f"systemctl {' '.join(args)} failed: {e.message}") from None


def _wait(done: Callable[[], bool], deadline: float, what: str, proc: Proc | None = None) -> None:
    while not done():
        if proc is not None and not proc.is_alive():
            raise BootstrapError(f"{what}: it exited", hint=log_hint(proc))
        if time.monotonic() >= deadline:
            raise BootstrapError(f"timed out waiting for {what}", hint=log_hint(proc) if proc else "")
        time.sleep(POLL_SECONDS)
