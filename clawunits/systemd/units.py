"""Everything systemd: session units on the user manager, through pystemd's low-level D-Bus calls.

pystemd's high-level objects import lxml and introspect each unit over the bus; the raw calls below do
neither, so one connection per process and one round trip per operation is all a CLI call costs.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clawunits.errors import SystemdError
from clawunits.systemd.limits import Limits


def _bare_pystemd() -> None:
    """Make ``import pystemd.dbuslib`` skip pystemd's package ``__init__``.

    That ``__init__`` imports pystemd's high-level objects and with them lxml (~14 ms of every CLI call);
    clawunits uses only the compiled low-level modules, which import nothing of it. So, unless something
    imported pystemd already, register the package as a plain namespace over its own directory.
    """
    if "pystemd" in sys.modules:
        return
    spec = importlib.util.find_spec("pystemd")
    if spec is None or not spec.submodule_search_locations:
        return
    package = types.ModuleType("pystemd")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["pystemd"] = package


_bare_pystemd()

from pystemd.dbusexc import DBusBaseError  # noqa: E402 - after _bare_pystemd()
from pystemd.dbuslib import DBus, DBusAddress, apply_signature  # noqa: E402

SYSTEMD = b"org.freedesktop.systemd1"
MANAGER_PATH = b"/org/freedesktop/systemd1"
MANAGER_IFACE = b"org.freedesktop.systemd1.Manager"
UNIT_IFACE = b"org.freedesktop.systemd1.Unit"
SERVICE_IFACE = b"org.freedesktop.systemd1.Service"
PROPS_IFACE = b"org.freedesktop.DBus.Properties"
UNIT_PREFIX_PATH = b"/org/freedesktop/systemd1/unit"

# D-Bus signatures of the properties we set.
_SIGNATURES: dict[str, bytes] = {
    "Description": b"s",
    "Type": b"s",
    "ExecStart": b"a(sasb)",
    "Environment": b"as",
    "WorkingDirectory": b"s",
    "StandardInput": b"s",
    "StandardOutput": b"s",
    "StandardError": b"s",
    "SyslogIdentifier": b"s",
    "KillMode": b"s",
    "RemainAfterExit": b"b",
    "CollectMode": b"s",
    "TimeoutStopUSec": b"t",
    "Slice": b"s",
    "MemoryMax": b"t",
    "CPUQuotaPerSecUSec": b"t",
    "TasksMax": b"t",
    "RuntimeMaxUSec": b"t",
    "TimersCalendar": b"a(ss)",
    "AccuracyUSec": b"t",
    "RemainAfterElapse": b"b",
    "OOMPolicy": b"s",
}


@dataclass(frozen=True)
class UnitSpec:
    """What a session unit runs and how."""

    name: str
    description: str
    argv: list[str]
    workdir: str
    environment: dict[str, str] = field(repr=False)
    syslog_identifier: str
    stop_timeout_sec: float = 15.0
    slice: str | None = None
    limits: Limits | None = None
    # A session's unit stays loaded after its runner exits (its result is read); a helper unit (the launch
    # queue's starter) goes away when done, failed or not.
    remain_after_exit: bool = True


@dataclass(frozen=True)
class UnitState:
    """The parts of a unit's state that decide a session's fate."""

    name: str
    load_state: str
    active_state: str
    sub_state: str
    result: str = ""
    exec_main_code: int = 0
    exec_main_status: int = 0
    main_pid: int = 0
    exit_timestamp_us: int = 0
    invocation_id: str = ""

    @property
    def is_loaded(self) -> bool:
        return self.load_state == "loaded"

    @property
    def is_running(self) -> bool:
        """The main process is alive (a fresh unit says inactive/dead before its start job runs)."""
        return self.is_loaded and (self.main_pid != 0 or self.active_state in ("activating", "deactivating"))

    @property
    def has_exited(self) -> bool:
        return self.exit_timestamp_us != 0 and self.sub_state in ("exited", "failed", "dead")

    def describe_exit(self) -> str:
        """How the main process ended, in words (``exit code 3``, ``killed by SIGKILL``, ``oom-kill``)."""
        if self.result and self.result not in ("success", "exit-code", "signal", "core-dump"):
            return self.result
        if self.exec_main_code == 1:
            return f"exit code {self.exec_main_status}"
        if self.exec_main_code in (2, 3):
            try:
                sig = signal.Signals(self.exec_main_status).name
            except ValueError:
                sig = f"signal {self.exec_main_status}"
            return f"killed by {sig}" + (" (core dumped)" if self.exec_main_code == 3 else "")
        return self.result or "unknown"


@dataclass(frozen=True)
class TimerSpec:
    """A transient timer that starts its own transient oneshot service (``<stem>.timer`` and
    ``<stem>.service``) once, at a calendar time in UTC."""

    stem: str
    description: str
    at: str  # systemd calendar time, e.g. "2026-12-07 14:05:00 UTC"
    argv: list[str]
    environment: dict[str, str] = field(repr=False)

    @property
    def timer(self) -> str:
        return self.stem + ".timer"

    @property
    def service(self) -> str:
        return self.stem + ".service"


def timer_properties(spec: TimerSpec) -> dict[str, Any]:
    """The timer's plain properties (they survive a ``daemon-reload``); it goes away once elapsed."""
    return {
        "Description": spec.description,
        "TimersCalendar": [("OnCalendar", spec.at)],
        # The default accuracy is a minute: a session resumes within a second of its reset.
        "AccuracyUSec": 1_000_000,
        "RemainAfterElapse": False,
    }


def timer_service_properties(spec: TimerSpec) -> dict[str, Any]:
    return {
        "Description": spec.description,
        "Type": "oneshot",
        "ExecStart": [(spec.argv[0], literal_argv(spec.argv), False)],
        "Environment": [f"{k}={v}" for k, v in sorted(spec.environment.items())],
        "StandardInput": "null",
        "StandardOutput": "journal",
        "StandardError": "journal",
        "SyslogIdentifier": spec.stem,
        "CollectMode": "inactive-or-failed",
    }


def literal_argv(argv: list[str]) -> list[str]:
    """``argv`` as ``ExecStart`` must carry it for the process to receive it unchanged.

    systemd expands ``$VAR`` and ``${VAR}`` in ``ExecStart`` argv (even over D-Bus) and drops an argument that is
    an undefined ``$VAR``; ``$$`` is its literal dollar. (``ExecStartEx`` with ``no-env-expand`` would avoid the
    expansion, but systemd 252 writes it into the transient unit file under a key it cannot read back: after a
    ``daemon-reload`` the unit is ``bad-setting``.)
    """
    return [arg.replace("$", "$$") for arg in argv]


def unit_properties(spec: UnitSpec) -> dict[str, Any]:
    """The transient unit's properties; every one of them survives a ``daemon-reload`` and ``daemon-reexec``."""
    props: dict[str, Any] = {
        "Description": spec.description,
        "Type": "exec",
        # The path is executed as it is (systemd expands only argv); no failure is ignored (False).
        "ExecStart": [(spec.argv[0], literal_argv(spec.argv), False)],
        "Environment": [f"{k}={v}" for k, v in sorted(spec.environment.items())],
        "WorkingDirectory": spec.workdir,
        "StandardInput": "null",
        "StandardOutput": "journal",
        "StandardError": "journal",
        "SyslogIdentifier": spec.syslog_identifier,
        # SIGTERM to every process of the session, then SIGKILL after the timeout: kill takes the tree.
        "KillMode": "control-group",
        # Keep the finished unit (and its result) loaded until it is reset.
        "RemainAfterExit": spec.remain_after_exit,
        "CollectMode": "inactive" if spec.remain_after_exit else "inactive-or-failed",
        "TimeoutStopUSec": int(spec.stop_timeout_sec * 1_000_000),
    }
    if spec.slice:
        props["Slice"] = spec.slice
    if spec.limits is not None:
        props |= spec.limits.unit_properties()
    return props


def _encode_properties(props: dict[str, Any]) -> list[Any]:
    args: list[Any] = [(ord("a"), b"(sv)")]
    for key, value in props.items():
        sig = _SIGNATURES[key]
        args += [(ord("r"), b"sv"), (ord("s"), key.encode()), (ord("v"), sig)]
        args += apply_signature(sig, [_to_bytes(value)])
        args += [(-1, None), (-1, None)]
    args.append((-1, None))
    return args


def _to_bytes(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list | tuple):
        return type(value)(_to_bytes(v) for v in value)
    return value


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def runtime_dir() -> Path:
    return Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")


class UserManager:
    """One connection to the user's systemd manager, opened on first use.

    ``private`` talks to the manager over its private socket only, never through the user bus: while the
    manager shuts down, dbus-daemon may already be gone, systemd itself still answers.
    """

    def __init__(self, private: bool = False) -> None:
        self._private = private
        self._bus: DBus | None = None
        self._jobs: dict[bytes, str] | None = None
        self._job_cb: Any = None

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None
            self._jobs = None

    def __enter__(self) -> UserManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def bus(self) -> DBus:
        if self._bus is None:
            self._bus = _connect(private_only=self._private)
        return self._bus

    def _call(self, path: bytes, iface: bytes, method: bytes, args: list[Any] | None = None) -> Any:
        try:
            return self.bus.call_method(SYSTEMD, path, iface, method, args or []).body
        except DBusBaseError as e:
            raise _translate(e, method.decode()) from e

    # -- operations ------------------------------------------------------------------------------------

    def start(self, spec: UnitSpec, timeout: float = 10.0) -> None:
        """Start the transient unit and wait until its start job is done (the process was exec'd)."""
        args = apply_signature(b"ss", [spec.name.encode(), b"fail"])
        args += _encode_properties(unit_properties(spec))
        args += [(ord("a"), b"(sa(sv))"), (-1, None)]
        with self._watch_jobs() as finished:
            job = self._call(MANAGER_PATH, MANAGER_IFACE, b"StartTransientUnit", args)
            result = self._wait_job(finished, job, timeout)
        if result != "done":
            state = self.state(spec.name)
            detail = state.describe_exit() if state else result
            raise SystemdError(f"unit {spec.name} failed to start: {detail}")

    def start_timer(self, spec: TimerSpec, timeout: float = 10.0) -> None:
        """Start the transient timer with its service as an auxiliary transient unit (as ``systemd-run
        --on-calendar`` does); the service is loaded, inactive, until the timer fires."""
        args = apply_signature(b"ss", [spec.timer.encode(), b"fail"])
        args += _encode_properties(timer_properties(spec))
        args += [(ord("a"), b"(sa(sv))"), (ord("r"), b"sa(sv)"), (ord("s"), spec.service.encode())]
        args += _encode_properties(timer_service_properties(spec))
        args += [(-1, None), (-1, None)]
        with self._watch_jobs() as finished:
            job = self._call(MANAGER_PATH, MANAGER_IFACE, b"StartTransientUnit", args)
            result = self._wait_job(finished, job, timeout)
        if result != "done":
            raise SystemdError(f"timer {spec.timer} failed to start: {result}")

    def stop(self, name: str, timeout: float | None = None) -> None:
        """Stop the unit (SIGTERM to all its processes, SIGKILL after its stop timeout).

        With ``timeout`` wait until the stop job is done, i.e. no process of the unit is left.
        """
        with self._watch_jobs() as finished:
            job = self._call(
                MANAGER_PATH, MANAGER_IFACE, b"StopUnit", apply_signature(b"ss", [name.encode(), b"replace"])
            )
            if timeout is not None:
                self._wait_job(finished, job, timeout)

    def kill(self, name: str, sig: int, whom: str = "main") -> None:
        self._call(
            MANAGER_PATH,
            MANAGER_IFACE,
            b"KillUnit",
            apply_signature(b"ssi", [name.encode(), whom.encode(), sig]),
        )

    def reset(self, name: str) -> None:
        """Forget a finished unit (its journal stays)."""
        state = self.state(name)
        if state is None:
            return
        if state.active_state == "failed":
            self._call(MANAGER_PATH, MANAGER_IFACE, b"ResetFailedUnit", apply_signature(b"s", [name.encode()]))
        elif state.is_loaded:
            self.stop(name)

    def state(self, name: str) -> UnitState | None:
        """The unit's state, or None when the manager has no such unit loaded."""
        try:
            path = self._call(MANAGER_PATH, MANAGER_IFACE, b"GetUnit", apply_signature(b"s", [name.encode()]))
        except SystemdError as e:
            if e.code == "no-such-unit":
                return None
            raise
        unit = self._get_all(path, UNIT_IFACE)
        service = self._get_all(path, SERVICE_IFACE)
        return UnitState(
            name=name,
            load_state=_text(unit.get(b"LoadState", b"")),
            active_state=_text(unit.get(b"ActiveState", b"")),
            sub_state=_text(unit.get(b"SubState", b"")),
            result=_text(service.get(b"Result", b"")),
            exec_main_code=int(service.get(b"ExecMainCode", 0)),
            exec_main_status=int(service.get(b"ExecMainStatus", 0)),
            main_pid=int(service.get(b"MainPID", 0)),
            exit_timestamp_us=int(service.get(b"ExecMainExitTimestamp", 0)),
            invocation_id=bytes(unit.get(b"InvocationID", b"")).hex(),
        )

    def system_state(self) -> str:
        """The manager's ``SystemState``: running, degraded, starting, stopping (shutting down), …"""
        value = self._call(MANAGER_PATH, PROPS_IFACE, b"Get", apply_signature(b"ss", [MANAGER_IFACE, b"SystemState"]))
        return _text(value)

    def list(self, pattern: str = "clawunits-*") -> dict[str, tuple[str, str]]:
        """Loaded units matching ``pattern``: name -> (active state, sub state)."""
        rows = self._call(
            MANAGER_PATH,
            MANAGER_IFACE,
            b"ListUnitsByPatterns",
            apply_signature(b"asas", [[], [pattern.encode()]]),
        )
        return {_text(r[0]): (_text(r[3]), _text(r[4])) for r in rows}

    def _get_all(self, path: bytes, iface: bytes) -> dict[bytes, Any]:
        return self._call(path, PROPS_IFACE, b"GetAll", apply_signature(b"s", [iface]))

    # -- job completion through the JobRemoved signal (no polling) -----------------------------------

    @contextmanager
    def _watch_jobs(self) -> Iterator[dict[bytes, str]]:
        """Collect JobRemoved signals (job path -> result) while the block runs.

        The match is registered once per connection and before any job is created, so a job that finishes
        at once is not missed. The manager sends JobRemoved for a client's own jobs even without Subscribe().
        """
        if self._jobs is None:
            self._jobs = {}
            jobs = self._jobs

            def on_job_removed(msg: Any, error: Any = None, userdata: Any = None) -> None:
                try:
                    msg.process_reply(False)
                    _id, job, _unit, result = msg.body
                    jobs[bytes(job)] = _text(result)
                except Exception:  # noqa: BLE001 - an exception must never escape into sd-bus
                    pass

            # pystemd hands the callback to C without taking a reference; it must live as long as the bus.
            self._job_cb = on_job_removed
            self.bus.match_signal(SYSTEMD, MANAGER_PATH, MANAGER_IFACE, b"JobRemoved", on_job_removed)
        self._jobs.clear()
        yield self._jobs

    def _wait_job(self, finished: dict[bytes, str], job: Any, timeout: float) -> str:
        job_path = bytes(job[0] if isinstance(job, tuple | list) else job)
        deadline = time.monotonic() + timeout
        while job_path not in finished:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemdError(f"systemd job {job_path.decode()} did not finish within {timeout:.0f}s")
            while not self.bus.process().is_empty():
                pass
            if job_path in finished:
                break
            self.bus.wait(int(min(left, 0.5) * 1_000_000))
        return finished[job_path]


def _connect(private_only: bool = False) -> DBus:
    """Open the user bus, or the manager's private socket when no user bus (dbus-daemon) is running."""
    rt = runtime_dir()
    os.environ.setdefault("XDG_RUNTIME_DIR", str(rt))
    errors = []
    if (rt / "bus").exists() and not private_only:
        try:
            bus = DBus(user_mode=True)
            bus.open()
            return bus
        except DBusBaseError as e:
            errors.append(f"user bus: {e}")
    private = rt / "systemd" / "private"
    if private.exists():
        try:
            bus = DBusAddress(f"unix:path={private}".encode(), peer_to_peer=True)
            bus.open()
            return bus
        except DBusBaseError as e:
            errors.append(f"private socket: {e}")
    raise SystemdError(
        f"cannot reach the systemd user manager in {rt}" + (f" ({'; '.join(errors)})" if errors else ""),
        hint="is `systemd --user` running? On a server: loginctl enable-linger $USER; in a container: "
        "python -m clawunits.bootstrap up",
    )


def manager_stopping() -> bool | None:
    """Is the user manager shutting down (its exit or shutdown target is queued)? None: it cannot be asked."""
    try:
        with UserManager(private=True) as m:
            return m.system_state() == "stopping"
    except (SystemdError, DBusBaseError, OSError):
        return None


def _translate(e: DBusBaseError, doing: str) -> SystemdError:
    # Mapped D-Bus errors arrive as subclasses with an empty err_name; the class name still tells.
    name = _text(getattr(e, "err_name", b"") or b"") or type(e).__name__
    message = _text(getattr(e, "err_message", b"") or b"") or f"error {getattr(e, 'errno', '?')}"
    err = SystemdError(f"systemd {doing} failed: {message}")
    for marker, code in (
        ("NoSuchUnit", "no-such-unit"),
        ("UnitExists", "unit-exists"),
        ("NoSuchProcess", "no-such-process"),
    ):
        if marker in name:
            err.code = code  # type: ignore[misc]
    return err
