"""The runner's stdout stream to journald, and a new one when journald restarts without keeping it.

Under systemd, journald keeps every stdout stream in its fd store across a restart, so the stream survives.
A standalone journald (containers, CI: clawunits.bootstrap starts it) has no fd store: when it restarts, the
stream socket the user manager gave the runner as fds 1 and 2 is closed and the next write fails with EPIPE.
:class:`Reconnector` then opens a new stream the way ``sd_journal_stream_fd()`` does and puts it on fds 1 and
2. journald tells the unit from the writer's cgroup (``_SYSTEMD_USER_UNIT`` stays right); the header carries
the unit's syslog identifier, on which readers match. What was written while no stream worked is lost and
shows as a seq gap to readers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from clawunits.systemd.cgroups import cgroup_paths

JOURNAL_STDOUT = Path("/run/systemd/journal/stdout")
# How long the first write after a break waits for journald to accept connections again (blocks the runner;
# a restart takes well under a second). Writes after that one try once and are lost while journald is down.
RECONNECT_WAIT_SEC = 2.0
RETRY_SEC = 0.05
# As systemd sets up a unit with StandardOutput=journal: info, "<N>" level prefixes, no forwarding.
PRIORITY_INFO = 6


class FdWriter:
    """A text stream that writes each string whole to a file descriptor (no buffer left behind by a
    failed write, unlike ``sys.stdout``: after a new stream is put on the fd, nothing stale is written)."""

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd

    def write(self, text: str) -> int:
        data = memoryview(text.encode())
        while data:
            data = data[os.write(self.fd, data) :]
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


def stream_header(identifier: str, priority: int = PRIORITY_INFO, level_prefix: bool = True) -> bytes:
    """journald's stdout stream protocol: identifier, unit id (empty), priority, level prefix, and forwarding
    to syslog, kmsg and console, each on its own line (systemd's ``sd_journal_stream_fd``)."""
    fields = [identifier, "", str(priority), str(int(level_prefix)), "0", "0", "0"]
    return "".join(f"{f}\n" for f in fields).encode()


def connect(identifier: str, path: Path = JOURNAL_STDOUT) -> socket.socket:
    """A new stdout stream to journald; raises OSError when journald does not accept it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        sock.shutdown(socket.SHUT_RD)  # as sd_journal_stream_fd: journald never writes back
        sock.sendall(stream_header(identifier))
    except OSError:
        sock.close()
        raise
    return sock


def is_journal_stream(fd: int = 1, path: Path = JOURNAL_STDOUT) -> bool:
    """Is ``fd`` a stream socket connected to journald's stdout socket?"""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            return sock.family == socket.AF_UNIX and sock.getpeername() == str(path)
    except OSError:
        return False


def own_unit() -> str | None:
    """The unit this process runs in (the last component of its cgroup path), or None outside a unit."""
    paths = cgroup_paths()
    name = (paths.get("name=systemd") or paths.get("") or "").rstrip("/").rsplit("/", 1)[-1]
    return name if name.endswith(".service") else None


@dataclass
class Reconnector:
    """Puts a new journald stream on fds 1 and 2 when the old one broke; the ``RecordWriter``'s
    ``on_broken``. Returns whether the stream can be written again."""

    identifier: str
    path: Path = JOURNAL_STDOUT
    wait_sec: float = RECONNECT_WAIT_SEC
    fds: tuple[int, ...] = (1, 2)
    reconnects: int = 0
    _down: bool = field(default=False, init=False)

    @classmethod
    def for_stdout(cls) -> Reconnector | None:
        """A reconnector when stdout is a journald stream of this unit, else None (run by hand, piped)."""
        unit = own_unit()
        if unit is None or not is_journal_stream(1):
            return None
        return cls(identifier=unit.removesuffix(".service"))

    def __call__(self, _error: OSError) -> bool:
        # Wait for journald only at the first failure: while it stays down, each record is lost at once.
        deadline = time.monotonic() + (0.0 if self._down else self.wait_sec)
        while True:
            try:
                sock = connect(self.identifier, self.path)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    self._down = True
                    return False
                time.sleep(RETRY_SEC)
        with contextlib.closing(sock):
            for fd in self.fds:
                os.dup2(sock.fileno(), fd)
        self._down = False
        self.reconnects += 1
        return True
