"""Notifier harness: the real notifier as a transient user unit, a recording stand-in ``openclaw``.

The notifier runs as it does in production, as a user unit (``systemd-run --user``), with the test's state
dir and config; its ``openclawPath`` is a symlink named ``openclaw`` to ``tests/openclaw_standin.py``, which
appends every call to ``$OPENCLAW_RECORD``. The OpenClaw gateway is the only thing not real here.

:class:`Emitter` prints session records with the runner's own :class:`~clawunits.records.RecordWriter` from
a unit carrying a session's syslog identifier: for the few checks that need records at exact moments
(wake debounce, fg coalescing, a crash inside the coalescing window), which a real session cannot time.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import REPO, Claw, systemctl, unit_property, wait_until

from clawunits.records import utc_now_iso
from clawunits.service.foreground import cursor_seqnum
from clawunits.state.models import SessionRecord, Status
from clawunits.state.naming import new_id, unit_name
from clawunits.state.store import Store
from clawunits.systemd.journal import read_tail, syslog_identifier

STANDIN = REPO / "tests" / "openclaw_standin.py"


# -- the recording stand-in ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One ``openclaw`` invocation as the stand-in recorded it."""

    argv: list[str]
    t: float

    @property
    def is_send(self) -> bool:
        return self.argv[:2] == ["message", "send"]

    @property
    def is_edit(self) -> bool:
        return self.argv[:2] == ["message", "edit"]

    @property
    def message_id(self) -> str | None:
        return self._opt("--message-id")

    @property
    def is_event(self) -> bool:
        return self.argv[:2] == ["system", "event"]

    def _opt(self, name: str) -> str | None:
        return self.argv[self.argv.index(name) + 1] if name in self.argv else None

    @property
    def channel(self) -> str | None:
        return self._opt("--channel")

    @property
    def account(self) -> str | None:
        return self._opt("--account")

    @property
    def target(self) -> str | None:
        return self._opt("--target")

    @property
    def text(self) -> str:
        return (self._opt("-m") if self.is_send or self.is_edit else self._opt("--text")) or ""


@dataclass
class Recording:
    """What reached the stand-in ``openclaw``."""

    path: Path

    def calls(self) -> list[Call]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [Call(**json.loads(line)) for line in lines if line.strip()]

    def sends(self, target: str | None = None) -> list[Call]:
        return [c for c in self.calls() if c.is_send and (target is None or c.target == target)]

    def texts(self, target: str | None = None) -> list[str]:
        return [c.text for c in self.sends(target)]

    def edits(self) -> list[Call]:
        return [c for c in self.calls() if c.is_edit]

    def events(self) -> list[Call]:
        return [c for c in self.calls() if c.is_event]

    def event_texts(self, containing: str = "") -> list[str]:
        return [c.text for c in self.events() if containing in c.text]

    def attempts(self) -> int:
        """Every invocation, failed ones included (the stand-in counts them in ``<record>.calls``)."""
        try:
            return len(Path(str(self.path) + ".calls").read_text().splitlines())
        except FileNotFoundError:
            return 0


def install_openclaw(claw: Claw) -> tuple[Path, Recording]:
    """A symlink named ``openclaw`` to the stand-in, and the recording it will write."""
    bin_dir = claw.state_dir.parent / "openclaw-bin"
    bin_dir.mkdir(exist_ok=True)
    link = bin_dir / "openclaw"
    if not link.exists():
        link.symlink_to(STANDIN)
    return link, Recording(claw.state_dir.parent / "openclaw-record.jsonl")


def configure(claw: Claw, **options: Any) -> Recording:
    """Write the test's config with ``openclawPath`` set to the stand-in; returns its recording."""
    link, recording = install_openclaw(claw)
    claw.write_config(openclawPath=str(link), **options)
    return recording


# -- the notifier as a user unit -----------------------------------------------------------------------


@dataclass
class NotifierUnit:
    """``python -m clawunits notifier`` in a transient user unit, started, stopped and killed like a service."""

    claw: Claw
    recording: Recording
    env: dict[str, str] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    starts: int = 0
    unit: str = ""
    # The interpreter of the clawunits installation it runs (another venv's for the upgrade test).
    python: str = sys.executable

    @property
    def ident(self) -> str:
        # Not clawunits-*: the notifier's own log lines must not look like a session's to any notifier.
        return f"cu-test-notifier-{self.tag}"

    @property
    def dir(self) -> Path:
        return self.claw.state_dir / "notifier"

    def start(self) -> NotifierUnit:
        self.starts += 1
        self.unit = f"{self.ident}-{self.starts}.service"
        self._cgroup = ""
        env = {
            "PATH": f"{Path(self.python).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "CLAWUNITS_STATE_DIR": str(self.claw.state_dir),
            "CLAWUNITS_CONFIG": str(self.claw.config_path),
            "OPENCLAW_RECORD": str(self.recording.path),
            **self.env,
        }
        argv = [
            "systemd-run", "--user", "--quiet", "--collect", f"--unit={self.unit}",
            f"--property=SyslogIdentifier={self.ident}", "--property=Type=exec",
            *[f"--setenv={k}={v}" for k, v in env.items()],
            self.python, "-m", "clawunits", "notifier",
        ]  # fmt: skip
        subprocess.run(argv, env=self.claw.env, check=True, capture_output=True, timeout=60)
        # The first start fixes where in the journal it begins; sessions launched after that are covered.
        wait_until(lambda: (self.dir / "since").exists(), timeout=30, what="the notifier to start")
        return self

    def pids(self) -> list[int]:
        """Every process of the unit, from its cgroup (the layout may be unified or hybrid)."""
        # Looked up once per start: a unit's cgroup does not move, and systemctl is slow under load.
        if not getattr(self, "_cgroup", ""):
            self._cgroup = unit_property(self.claw, self.unit, "ControlGroup")
        cgroup = self._cgroup
        for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup", "/sys/fs/cgroup/systemd"):
            procs = Path(root) / cgroup.lstrip("/") / "cgroup.procs"
            if cgroup and procs.exists():
                return [int(p) for p in procs.read_text().split()]
        return []

    def main_pid(self) -> int:
        out = unit_property(self.claw, self.unit, "MainPID")
        return int(out or 0)

    def active(self) -> bool:
        return systemctl(self.claw, "is-active", self.unit).stdout.strip() in ("active", "activating", "deactivating")

    def stop(self) -> None:
        """``systemctl stop``: SIGTERM, the notifier drains its queues and saves its cursor."""
        systemctl(self.claw, "stop", self.unit)
        systemctl(self.claw, "reset-failed", self.unit)

    def kill(self) -> None:
        """SIGKILL to every process of the unit (the notifier and any ``openclaw`` it is running).

        Sent directly first: under load `systemctl kill` can take long enough for the moment a test chose to
        pass; systemctl then makes sure nothing of the unit survives."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        systemctl(self.claw, "kill", "--signal=SIGKILL", self.unit)
        wait_until(lambda: not self.active(), timeout=30, what="the killed notifier to be gone")
        systemctl(self.claw, "reset-failed", self.unit)

    def close(self) -> None:
        if self.unit:
            self.stop()

    def log(self) -> str:
        return subprocess.run(
            ["journalctl", "--no-pager", "-q", "-a", f"SYSLOG_IDENTIFIER={self.ident}", "-o", "cat"],
            env=self.claw.env,
            capture_output=True,
            text=True,
        ).stdout

    # -- barriers --------------------------------------------------------------------------------------

    def cursor_seqnum(self) -> int:
        try:
            return cursor_seqnum((self.dir / "cursor").read_text())
        except FileNotFoundError:
            return -1

    def pending(self) -> set[str]:
        """Keys in the outbox not yet delivered."""
        pending: dict[str, None] = {}
        try:
            lines = (self.dir / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return set()
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if "add" in entry:
                    pending[entry["add"]] = None
                elif "sent" in entry:
                    pending.pop(entry["sent"], None)
        return set(pending)

    def settle(self, *units: str, timeout: float = 30, wakes: bool = True) -> None:
        """Wait until the notifier has read every record of ``units`` so far and delivered all it decided
        (with ``wakes=False``: all but wake events, which may wait out their 5 s debounce)."""
        last = max((last_seqnum(u) for u in units), default=-1)

        def done() -> bool:
            pending = {k for k in self.pending() if wakes or not k.endswith(":wake")}
            return self.cursor_seqnum() >= last and not pending

        wait_until(done, timeout=timeout, what="the notifier to process and deliver everything")


@contextlib.contextmanager
def running_notifier(claw: Claw, recording: Recording, **env: str) -> Iterator[NotifierUnit]:
    n = NotifierUnit(claw, recording, env=dict(env)).start()
    try:
        yield n
    finally:
        n.close()


def last_seqnum(unit: str) -> int:
    """The journal sequence number of the newest line a session unit printed."""
    return cursor_seqnum(read_tail(unit, 1).cursor)


def journal_entries(claw: Claw, unit: str) -> list[dict[str, Any]]:
    """The unit's journal entries (``__CURSOR``, ``__REALTIME_TIMESTAMP``, ``MESSAGE``)."""
    out = subprocess.run(
        [
            "journalctl",
            "--no-pager",
            "-q",
            "-a",
            f"SYSLOG_IDENTIFIER={syslog_identifier(unit)}",
            "-o",
            "json",
            "--output-fields=MESSAGE",
        ],
        env=claw.env,
        capture_output=True,
        text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def launch_all(claw: Claw, launches: list[tuple[str, ...]]) -> list[dict[str, Any]]:
    """``claw.launch(*args)`` for each, in parallel; results in order."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda args: claw.launch(*args), launches))


def session(claw: Claw, ref: str) -> dict[str, Any]:
    data = claw.json("sessions", "--all")
    return next(s for s in data["sessions"] if ref in (s["id"], s["name"]))


# -- records at exact moments --------------------------------------------------------------------------

EMITTER = """
import json, sys, time
from pathlib import Path
from clawunits.records import RecordWriter
w = RecordWriter()
for step in json.loads(Path(sys.argv[1]).read_text()):
    if "sleep" in step:
        time.sleep(step["sleep"])
    elif "wait_for" in step:
        while not Path(step["wait_for"]).exists():
            time.sleep(0.02)
    else:
        w.emit(step.pop("type"), **step)
"""


@dataclass
class Emitter:
    """A stored session whose records come from a script instead of Claude Code (same writer, same journal)."""

    claw: Claw
    record: SessionRecord

    @classmethod
    def create(cls, claw: Claw, name: str, **fields: Any) -> Emitter:
        sid = new_id()
        values: dict[str, Any] = {
            "prompt": f"scripted records for {name}",
            "workdir": str(claw.workdir),
            "created_at": utc_now_iso(),
            "started_at": utc_now_iso(),
            # Terminal: nothing reconciles it against its unit, whatever the script does.
            "status": Status.COMPLETED,
            "completed_at": utc_now_iso(),
            "end_cause": "completed",
            **fields,
        }
        record = SessionRecord(id=sid, name=name, unit=unit_name(name, sid), **values)
        Store(claw.state_dir).save(record)
        return cls(claw, record)

    @property
    def unit(self) -> str:
        return self.record.unit

    def run(self, steps: list[dict[str, Any]]) -> None:
        """Start a unit printing ``steps`` (records, ``{"sleep": s}``, ``{"wait_for": path}``)."""
        script = self.claw.state_dir.parent / f"steps-{self.record.id}-{time.monotonic_ns()}.json"
        script.write_text(json.dumps(steps))
        unit = f"emit-{self.record.id}-{time.monotonic_ns()}.service"
        self.claw.launched.append(unit)  # stopped at the end of the test, whatever happened
        argv = [
            "systemd-run", "--user", "--quiet", "--collect", f"--unit={unit}",
            f"--property=SyslogIdentifier={syslog_identifier(self.unit)}",
            "--setenv=PYTHONUNBUFFERED=1",
            sys.executable, "-c", EMITTER, str(script),
        ]  # fmt: skip
        subprocess.run(argv, env=self.claw.env, check=True, capture_output=True, timeout=60)
