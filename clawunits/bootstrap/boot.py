"""Find, or start where none runs, the systemd user manager and journald that clawunits needs.

On a normal host both already run (journald under PID 1, ``user@UID.service`` through logind or lingering) and
this module only finds them. On machines without systemd as PID 1 (containers, CI VMs) it starts, as root, a
standalone ``systemd-journald`` and ``systemd --user``. The manager is placed in the cgroup
``user.slice/user-UID.slice/user@UID.service`` first, because journald derives ``_SYSTEMD_USER_UNIT`` from the
cgroup path of the writer. :class:`Booted` records exactly what was started or created, so :func:`teardown`
can undo it, also from another process::

    python -m clawunits.bootstrap up|down|status [--json] [--uid UID]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clawunits.errors import SystemdError
from clawunits.systemd.cgroups import cgroup_paths

JOURNAL_DIR = Path("/run/systemd/journal")
JOURNAL_STDOUT = JOURNAL_DIR / "stdout"
# `systemd --user` refuses to start unless this exists (sd_booted()).
SYSTEM_MARKER = Path("/run/systemd/system")
CGROUP_ROOT = Path("/sys/fs/cgroup")
LIBEXEC_DIRS = (Path("/lib/systemd"), Path("/usr/lib/systemd"))
USER_UNIT_DIRS = (Path("/etc/systemd/user"), Path("/usr/lib/systemd/user"), Path("/lib/systemd/user"))
READY_STATES = frozenset({"running", "degraded"})
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATE_VERSION = 1
POLL_SECONDS = 0.1
# Files that must belong to the user for a delegated cgroup (what systemd's Delegate=yes chowns).
DELEGATED_FILES = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "tasks")

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


class BootstrapError(SystemdError):
    """The user manager or journald is not usable and could not be started; ``hint`` says how to fix it."""

    code = "bootstrap"


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


@dataclass(frozen=True)
class Proc:
    """A daemon started by :func:`ensure_user_manager`."""

    pid: int
    start_time: int  # /proc/PID/stat field 22; tells our process from a later one that reused the pid
    log: str

    def is_alive(self) -> bool:
        return _is_alive(self.pid, self.start_time)


@dataclass(frozen=True)
class Booted:
    """Exactly what :func:`ensure_user_manager` started or created; empty when everything already ran."""

    uid: int
    runtime_dir: str
    journald: Proc | None = None
    manager: Proc | None = None
    dirs: tuple[str, ...] = ()  # created, in order; removed in reverse when empty
    trees: tuple[str, ...] = ()  # created and filled only by what we started; removed with their contents
    cgroups: tuple[str, ...] = ()  # created, in order (parents first)

    @property
    def is_empty(self) -> bool:
        return not (self.journald or self.manager or self.dirs or self.trees or self.cgroups)

    def merged(self, later: Booted) -> Booted:
        """This record plus what a later call started (for repeated `up`)."""

        def join(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return a + tuple(x for x in b if x not in a)

        return dataclasses.replace(
            self,
            journald=later.journald or self.journald,
            manager=later.manager or self.manager,
            dirs=join(self.dirs, later.dirs),
            trees=join(self.trees, later.trees),
            cgroups=join(self.cgroups, later.cgroups),
        )

    def to_json(self) -> str:
        return json.dumps({"version": STATE_VERSION, **dataclasses.asdict(self)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Booted:
        data = json.loads(text)
        if data.pop("version", None) != STATE_VERSION:
            raise ValueError("unknown bootstrap state version")
        return cls(
            uid=int(data["uid"]),
            runtime_dir=str(data["runtime_dir"]),
            journald=Proc(**data["journald"]) if data.get("journald") else None,
            manager=Proc(**data["manager"]) if data.get("manager") else None,
            dirs=tuple(data.get("dirs", ())),
            trees=tuple(data.get("trees", ())),
            cgroups=tuple(data.get("cgroups", ())),
        )


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


# ---------------------------------------------------------------------------------------------------- probing


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
    manager_pid = _listener_pid(rd / "systemd" / "private")
    return Probe(
        uid=uid,
        runtime_dir=rd,
        runtime_dir_ok=_runtime_dir_ok(rd, uid),
        pid1_systemd=_read(Path("/proc/1/comm")).strip() == "systemd",
        system_marker=SYSTEM_MARKER.is_dir(),
        journald_pid=_listener_pid(JOURNAL_STDOUT),
        manager_pid=manager_pid,
        manager_cgroup=_cgroup_of(manager_pid) if manager_pid else None,
        manager_state=_manager_state(uid) if manager_pid else None,
        user_bus=_is_socket(rd / "bus"),
    )


def _listener_pid(path: Path) -> int | None:
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


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _cgroup_of(pid: int) -> str | None:
    """The pid's cgroup in systemd's own hierarchy (name=systemd on hybrid hosts, else the unified one)."""
    paths = cgroup_paths(pid)
    return paths.get("name=systemd") or paths.get("") or None


def resource_controllers(pid: int) -> set[str]:
    """The resource controllers (memory, pids, cpu) that manage ``pid``'s own cgroup subtree, so that
    systemd can enforce MemoryMax=, TasksMax= and CPUQuota= for the units below it."""
    paths = cgroup_paths(pid)
    found = set()
    for controller in ("memory", "pids", "cpu"):
        v1 = paths.get(controller)
        if v1 and "/user@" in v1:  # a hybrid host's v1 hierarchy, delegated to the manager
            found.add(controller)
    unified = paths.get("")
    for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        controllers = Path(root, (unified or "").lstrip("/"), "cgroup.controllers")
        if unified and controllers.exists():
            found |= set(_read(controllers).split()) & {"memory", "pids", "cpu"}
    return found


def _manager_state(uid: int) -> str | None:
    systemctl = _find_systemctl()
    if systemctl is None:
        return None
    kwargs: dict[str, Any] = {}
    if uid != os.geteuid():
        if os.geteuid() != 0:
            return None
        # Root may not talk to another user's manager; ask as that user.
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            return None
        kwargs = {"user": uid, "group": gid, "extra_groups": []}
    try:
        res = subprocess.run(
            [systemctl, "--user", "is-system-running"],
            env=_base_env() | user_env(uid),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            **kwargs,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None


def _find_systemctl() -> str | None:
    return shutil.which("systemctl") or next(
        (p for p in ("/usr/bin/systemctl", "/bin/systemctl") if os.access(p, os.X_OK)), None
    )


def _base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", DEFAULT_PATH), "LANG": "C.UTF-8"}


def _user(uid: int) -> _User:
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        raise BootstrapError(f"uid {uid} has no passwd entry", hint="create the user (useradd)") from None
    return _User(uid, pw.pw_gid, pw.pw_name, pw.pw_dir, pw.pw_shell or "/bin/sh")


# -------------------------------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a pid, or None when it does not exist."""
    text = _read(Path(f"/proc/{pid}/stat"))
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


def _launch(argv: list[str], log: Path, env: dict[str, str], cgroup_procs: list[Path]) -> Proc:
    """Start ``argv`` detached (own session, stdin /dev/null, output appended to ``log``) and return it."""
    res = subprocess.run(
        ["/bin/sh", "-c", _OUTER, _INNER, str(log), *map(str, cgroup_procs), "--", *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        check=False,
    )
    try:
        pid = int(res.stdout.strip())
    except ValueError:
        raise BootstrapError(f"could not start {argv[0]}: {res.stderr.strip() or 'no pid'}") from None
    st = _proc_stat(pid)
    proc = Proc(pid=pid, start_time=st[1] if st else 0, log=str(log))
    if st is None:
        raise BootstrapError(f"{argv[0]} exited at once", hint=_log_hint(proc))
    return proc


def _stop(proc: Proc, timeout: float) -> str:
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


def _log_hint(proc: Proc) -> str:
    lines = _read(Path(proc.log)).splitlines()[-15:]
    if lines:
        return f"log {proc.log}:\n  " + "\n  ".join(lines)
    # The user manager logs to the journal once it is up.
    return f"its log {proc.log} is empty; try `journalctl _PID={proc.pid}`"


# ------------------------------------------------------------------------------------------------- cgroups


def _cgroup_mounts() -> tuple[bool, list[list[str]]]:
    """Whether /sys/fs/cgroup is a pure cgroup2 mount, and every mount as [mountpoint, fstype, options]."""
    mounts = [line.split()[1:4] for line in _read(Path("/proc/self/mounts")).splitlines()]
    return any(mp == str(CGROUP_ROOT) and fs == "cgroup2" for mp, fs, _ in mounts), mounts


def cgroup_roots() -> list[Path]:
    """Hierarchies systemd tracks processes in: /sys/fs/cgroup on cgroup2 hosts; on hybrid hosts the
    name=systemd and unified mounts (the manager must sit in both, or journald cannot name the unit)."""
    unified, mounts = _cgroup_mounts()
    if unified:
        return [CGROUP_ROOT]
    roots = [Path(mp) for mp, fs, opts in mounts if fs == "cgroup" and "name=systemd" in opts.split(",")]
    roots += [Path(mp) for mp, fs, _ in mounts if fs == "cgroup2" and mp.startswith(f"{CGROUP_ROOT}/")]
    return list(dict.fromkeys(roots))  # a path mounted over again is listed twice


# cgroup-v1 controllers a hybrid host's user@.service gets delegated for resource limits: systemd applies
# MemoryMax= (as memory.limit_in_bytes), TasksMax= and CPUQuota= only in hierarchies it can write to.
V1_RESOURCE_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")


def resource_roots() -> list[Path]:
    """The v1 resource-controller hierarchies mounted on a hybrid host (none on a cgroup2 host: there
    the controllers live in the unified tree, delegated by user@.service)."""
    unified, mounts = _cgroup_mounts()
    if unified:
        return []
    wanted = set(V1_RESOURCE_CONTROLLERS)
    return list(dict.fromkeys(Path(mp) for mp, fs, opts in mounts if fs == "cgroup" and wanted & set(opts.split(","))))


def _user_cgroup(uid: int) -> Path:
    return Path("user.slice", f"user-{uid}.slice", f"user@{uid}.service")


def _cgroup_pids(top: Path) -> set[int]:
    pids: set[int] = set()
    for dirpath, _dirs, _files in os.walk(top):
        pids.update(int(p) for p in _read(Path(dirpath, "cgroup.procs")).split())
    return pids


# ------------------------------------------------------------------------------------------------------- boot


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
    with _lock(user.uid, deadline):
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
def _lock(uid: int, deadline: float) -> Iterator[None]:
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
        journald_bin = None if found.journald else _libexec("systemd-journald", "journald")
        manager_bin = None if found.manager else _libexec("systemd", "the user manager")
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
        if _find_systemctl() is None:
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
        proc = _launch([binary], self.log_dir / "journald.log", _base_env(), [])
        self._record(journald=proc)
        while _listener_pid(JOURNAL_STDOUT) is None:
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
            _base_env()
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
        self._record(manager=_launch(argv, self.log_dir / "user-manager.log", env, procs_files))

    def _make_cgroup(self, root: Path) -> Path:
        leaf = root / _user_cgroup(self.user.uid)
        for p in (*reversed(leaf.relative_to(root).parents), leaf.relative_to(root)):
            if p == Path("."):
                continue
            try:
                (root / p).mkdir()
                os.chmod(root / p, 0o755)  # not left to the umask: the user must reach its own cgroup
            except FileExistsError:
                continue
            except OSError as e:
                raise BootstrapError(
                    f"cannot create cgroup {root / p}: {e.strerror}",
                    hint="the cgroup filesystem must be writable (containers: --privileged or --cgroupns)",
                ) from None
            self._record(cgroups=(*self.booted.cgroups, str(root / p)))
        if self.user.uid != 0:  # delegate the subtree to the user, as Delegate=yes would
            for target in (leaf, *(leaf / f for f in DELEGATED_FILES if (leaf / f).exists())):
                os.chown(target, self.user.uid, self.user.gid)
        return leaf


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
        raise BootstrapError(f"{name} (pid {proc.pid}) exited while starting", hint=_log_hint(proc))
    if time.monotonic() >= deadline:
        raise BootstrapError(
            f"timed out waiting for {waiting_for}",
            hint=_log_hint(proc) if proc else "see `systemctl --user status`, or retry with a longer timeout",
        )
    time.sleep(POLL_SECONDS)


def _check_dbus_user_session() -> None:
    if not any((d / "dbus.socket").exists() for d in USER_UNIT_DIRS):
        raise BootstrapError(
            "no user unit dbus.socket: the user bus ($XDG_RUNTIME_DIR/bus) would never appear",
            hint="apt-get install dbus-user-session (then restart the user manager)",
        )


def _libexec(name: str, what: str) -> str:
    for d in LIBEXEC_DIRS:
        if os.access(d / name, os.X_OK):
            return str(d / name)
    raise BootstrapError(
        f"{what} binary {name} not found in {', '.join(map(str, LIBEXEC_DIRS))}",
        hint="apt-get install systemd",
    )


# --------------------------------------------------------------------------------------------------- teardown


def teardown(booted: Booted, timeout: float = 15.0) -> list[str]:
    """Undo :func:`ensure_user_manager`: stop the manager, then journald, then remove what it created.

    Touches only what ``booted`` lists; cgroups and dirs that are not empty are kept. Returns what it did.
    """
    done: list[str] = []
    if booted.manager:
        done.append(f"user manager (pid {booted.manager.pid}): {_stop(booted.manager, timeout)}")
        # Units the manager failed to stop, in the cgroup subtree we created for it.
        leaves = [c for c in booted.cgroups if c.endswith(f"/user@{booted.uid}.service")]
        for pid in set().union(*(_cgroup_pids(Path(c)) for c in leaves)) - {os.getpid()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                done.append(f"killed leftover pid {pid}")
    if booted.journald:
        done.append(f"journald (pid {booted.journald.pid}): {_stop(booted.journald, timeout)}")
    for cg in reversed(booted.cgroups):
        _remove_cgroup(Path(cg), done)
    for tree in reversed(booted.trees):
        if Path(tree).exists():
            shutil.rmtree(tree, ignore_errors=True)
            done.append(f"removed {tree}" if not Path(tree).exists() else f"kept {tree} (could not remove)")
    for d in reversed(booted.dirs):
        _remove_dir(Path(d), done)
    return done


def _remove_cgroup(top: Path, done: list[str]) -> None:
    """rmdir a cgroup bottom-up; children the manager left behind are ours too. Busy ones are kept."""
    if not top.exists():
        return
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
    done.append(f"kept cgroup {top} (not empty)" if top.exists() else f"removed cgroup {top}")


def _remove_dir(path: Path, done: list[str]) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        return
    except OSError as e:
        done.append(f"kept {path} ({e.strerror.lower() if e.strerror else 'not removable'})")
        return
    done.append(f"removed {path}")


# ------------------------------------------------------------------------------------------------------ state


def state_path(uid: int | None = None) -> Path:
    """Where `up` records what it started, for `down` in another process."""
    return runtime_dir(uid) / "clawunits-bootstrap" / "state.json"


def save_state(booted: Booted, path: Path | None = None) -> Path:
    """Write ``booted`` atomically with mode 0600."""
    path = path or state_path(booted.uid)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(booted.to_json() + "\n")
    os.replace(tmp, path)
    return path


def load_state(uid: int | None = None, path: Path | None = None) -> Booted | None:
    """The saved record, or None when nothing was saved."""
    try:
        return Booted.from_json((path or state_path(uid)).read_text())
    except FileNotFoundError:
        return None


# -------------------------------------------------------------------------------------------------------- CLI


def _describe_up(after: Probe, booted: Booted) -> list[str]:
    rd = booted.runtime_dir
    lines = [f"created {d}" for d in (*booted.dirs, *booted.trees)]
    if booted.cgroups:
        roots = dict.fromkeys(
            str(Path(c).parents[len(_user_cgroup(booted.uid).parts) - 1])
            for c in booted.cgroups
            if c.endswith(f"/user@{booted.uid}.service")
        )
        lines.append(f"created cgroup {_user_cgroup(booted.uid)} in {', '.join(roots)}")
    if booted.journald:
        lines.append(f"started journald (pid {booted.journald.pid}, log {booted.journald.log})")
    else:
        lines.append(f"using running journald (pid {after.journald_pid})")
    if booted.manager:
        lines.append(f"started user manager at {rd} (pid {booted.manager.pid}, log {booted.manager.log})")
    else:
        lines.append(f"using running user manager at {rd} (pid {after.manager_pid})")
    return lines


def _describe_status(p: Probe, saved: Booted | None) -> list[str]:
    def yes(ok: bool, text: str) -> str:
        return f"{'ok' if ok else 'MISSING':8}{text}"

    lines = [
        f"{'':8}pid 1 is {'systemd' if p.pid1_systemd else 'not systemd (container mode)'}",
        yes(p.runtime_dir_ok, f"runtime dir {p.runtime_dir} (uid {p.uid}, mode 0700)"),
        yes(p.journald, f"journald {f'(pid {p.journald_pid})' if p.journald else ''}".rstrip()),
        yes(
            p.manager_ready,
            f"user manager: {p.manager_state or 'not reachable'}"
            + (f" (pid {p.manager_pid}, cgroup {p.manager_cgroup})" if p.manager else ""),
        ),
        yes(p.user_bus, f"user bus {p.runtime_dir}/bus"),
    ]
    if saved and not saved.is_empty:
        procs = (("journald", saved.journald), ("manager", saved.manager))
        started = [f"{name} pid {proc.pid}" for name, proc in procs if proc]
        lines.append(f"{'':8}started by clawunits.bootstrap: {', '.join(started) or 'dirs only'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clawunits.bootstrap", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--uid", type=int, default=None, help="target user (default: the current one)")
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    uid = os.getuid() if args.uid is None else args.uid

    out: dict[str, Any]
    rc = 0
    try:
        if args.command == "up":
            booted = ensure_user_manager(uid, timeout=args.timeout, log_dir=args.log_dir)
            if not booted.is_empty:
                prev = load_state(uid)
                save_state(prev.merged(booted) if prev else booted)
            lines = _describe_up(probe(uid), booted)
            out = {"actions": lines, "booted": dataclasses.asdict(booted), "env": user_env(uid)}
        elif args.command == "down":
            saved = load_state(uid)
            lines = teardown(saved, timeout=args.timeout) if saved else []
            if saved:
                state_path(uid).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    state_path(uid).parent.rmdir()
            else:
                lines = [f"nothing to stop: clawunits.bootstrap started nothing for uid {uid}"]
            out = {"stopped": saved is not None, "actions": lines}
        else:
            p = probe(uid)
            lines = _describe_status(p, load_state(uid))
            rc = 0 if p.usable else 1
            out = {
                "usable": p.usable,
                "missing": p.missing(),
                "probe": dataclasses.asdict(p),
                "env": user_env(uid),
            }
    except (BootstrapError, OSError) as e:
        if isinstance(e, OSError):
            e = BootstrapError(f"{args.command} failed: {e}")
        if args.json:
            print(json.dumps({"error": e.message, "hint": e.hint}))
        else:
            print(f"error: {e.message}", file=sys.stderr)
            if e.hint:
                print(f"hint: {e.hint}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print("\n".join(lines))
    return rc
