"""Looking at what runs for a user: journald, the user manager and its bus. Nothing here starts or changes
anything."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from clawunits.errors import CommandError
from clawunits.proc import run
from clawunits.systemd.cgroups import cgroup_paths

JOURNAL_DIR = Path("/run/systemd/journal")
JOURNAL_STDOUT = JOURNAL_DIR / "stdout"
# `systemd --user` refuses to start unless this exists (sd_booted()).
SYSTEM_MARKER = Path("/run/systemd/system")
READY_STATES = frozenset({"running", "degraded"})
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Probe:
    """What exists right now for one uid. Nothing here starts or changes anything."""

    uid: int
    runtime_dir: Path
    runtime_dir_ok: bool  # exists, owned by uid, mode 0700
    pid1_systemd: bool
    system_marker: bool  # /run/systemd/system exists
    # Who listens on /run/systemd/journal/stdout (1 where PID 1 holds the socket); None: nothing accepts.
    journald_pid: int | None
    manager_pid: int | None  # listener of $XDG_RUNTIME_DIR/systemd/private
    manager_cgroup: str | None  # the manager's cgroup path, when readable
    manager_state: str | None  # `systemctl --user is-system-running`
    user_bus: bool  # $XDG_RUNTIME_DIR/bus is a socket

    @property
    def journald(self) -> bool:
        return self.journald_pid is not None

    @property
    def manager(self) -> bool:
        return self.manager_pid is not None

    @property
    def manager_ready(self) -> bool:
        return self.manager_state in READY_STATES

    @property
    def manager_cgroup_ok(self) -> bool:
        """False only when the manager provably runs outside user@UID.service (journald cannot tag units)."""
        return self.manager_cgroup is None or f"/user@{self.uid}.service" in self.manager_cgroup

    @property
    def usable(self) -> bool:
        return self.journald and self.manager_ready and self.user_bus and self.manager_cgroup_ok

    def missing(self) -> list[str]:
        """Human-readable list of what keeps clawunits from working; empty when usable."""
        out = []
        if not self.journald:
            out.append(f"journald ({JOURNAL_STDOUT} accepts no connections)")
        if not self.manager:
            out.append(f"user manager ({self.runtime_dir}/systemd/private accepts no connections)")
        elif not self.manager_ready:
            out.append(f"user manager is {self.manager_state or 'unreachable'}, not running")
        elif not self.user_bus:
            out.append(f"user bus ({self.runtime_dir}/bus)")
        if self.manager and not self.manager_cgroup_ok:
            out.append(f"user manager outside user@{self.uid}.service (cgroup {self.manager_cgroup})")
        return out


def runtime_dir(uid: int | None = None) -> Path:
    """``/run/user/UID``: where logind (or we) put the user manager's sockets."""
    return Path(f"/run/user/{os.getuid() if uid is None else uid}")


def user_env(uid: int | None = None) -> dict[str, str]:
    """Environment a subprocess needs to reach the user manager and user bus of ``uid``."""
    rd = runtime_dir(uid)
    return {"XDG_RUNTIME_DIR": str(rd), "DBUS_SESSION_BUS_ADDRESS": f"unix:path={rd}/bus"}


def probe(uid: int | None = None) -> Probe:
    """Look at what runs for ``uid`` (default: the current user)."""
    uid = os.getuid() if uid is None else uid
    rd = runtime_dir(uid)
    manager_pid = listener_pid(rd / "systemd" / "private")
    return Probe(
        uid=uid,
        runtime_dir=rd,
        runtime_dir_ok=_runtime_dir_ok(rd, uid),
        pid1_systemd=read_file(Path("/proc/1/comm")).strip() == "systemd",
        system_marker=SYSTEM_MARKER.is_dir(),
        journald_pid=listener_pid(JOURNAL_STDOUT),
        manager_pid=manager_pid,
        manager_cgroup=_cgroup_of(manager_pid) if manager_pid else None,
        manager_state=_manager_state(uid) if manager_pid else None,
        user_bus=_is_socket(rd / "bus"),
    )


def listener_pid(path: Path) -> int | None:
    """Pid of the process listening on a unix stream socket, or None when nothing accepts connections."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
            pid, _uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        except OSError:
            return None
        return pid if pid > 0 else None


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def _runtime_dir_ok(path: Path, uid: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o700


def read_file(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _cgroup_of(pid: int) -> str | None:
    """The pid's cgroup in systemd's own hierarchy (name=systemd on hybrid hosts, else the unified one)."""
    paths = cgroup_paths(pid)
    return paths.get("name=systemd") or paths.get("") or None


def _manager_state(uid: int) -> str | None:
    systemctl = find_systemctl()
    if systemctl is None:
        return None
    as_user = None
    if uid != os.geteuid():
        if os.geteuid() != 0:
            return None
        # Root may not talk to another user's manager; ask as that user.
        try:
            as_user = (uid, pwd.getpwuid(uid).pw_gid)
        except KeyError:
            return None
    argv = [systemctl, "--user", "is-system-running"]
    try:
        # Its exit status is not 0 for "degraded" or "starting": the state is what it prints.
        res = run(argv, check=False, timeout=5, env=base_env() | user_env(uid), as_user=as_user)
    except CommandError:
        return None
    return res.stdout.strip() or None


def find_systemctl() -> str | None:
    return shutil.which("systemctl") or next(
        (p for p in ("/usr/bin/systemctl", "/bin/systemctl") if os.access(p, os.X_OK)), None
    )


def base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", DEFAULT_PATH), "LANG": "C.UTF-8"}
