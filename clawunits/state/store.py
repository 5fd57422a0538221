"""Session records on disk: one TOML file per session, written atomically with mode 0600.

Layout under the state directory (0700)::

    sessions/<id>.toml     the record
    locks/<id>.lock        flock target for read-modify-write of one record
    locks/launch.lock      serializes launches (name uniqueness, maxSessions)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tomli_w

from clawunits.errors import Ambiguous, NewerFormat, NotFound, StoreError
from clawunits.state import session_file
from clawunits.state.models import SessionRecord
from clawunits.state.naming import ID_ALPHABET

MIN_ID_PREFIX = 4
CACHE = "records.cache.json"
UUID_LEN = 36


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, private temp file next to ``path`` (what ``tempfile.mkstemp`` does, without its ~6 ms import)."""
    while True:
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue


def write_atomically(path: Path, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a torn one.

    ``durable`` also fsyncs the file and its directory, so the new content survives a power cut.
    """
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# A temp file this old was left by a writer killed mid-write (a write takes milliseconds).
STALE_TEMP_SEC = 600.0


def sweep_temp_files(root: Path, older_than_sec: float = STALE_TEMP_SEC) -> list[Path]:
    """Delete the temp files of :func:`write_atomically` that writers killed mid-write left under ``root``.

    They were never renamed into place, so no reader ever saw them; only their space is reclaimed here.
    Messages staged in an inbox's ``tmp/`` whose poster died before queueing them go too (never delivered,
    and ``respond`` never said they were sent).
    """
    removed = []
    cutoff = time.time() - older_than_sec
    candidates = [*root.rglob(".*.tmp"), *root.glob("inbox/*/tmp/*")] if root.exists() else []
    for tmp in dict.fromkeys(candidates):
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
    return removed


# The file system is full or read-only: the user has to act on the host, not on clawunits.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
READ_ONLY = frozenset({errno.EROFS})


def write_error(what: str, path: Path, e: OSError, root: Path) -> StoreError:
    """A write into the state directory failed: one line naming what and where, with the fix for full and
    read-only file systems (``root``: the state directory, where space has to be freed)."""
    why = (e.strerror or str(e)).lower()
    if e.errno in NO_SPACE:
        hint = f"free space on the file system of {root} (df -h {root}), then try again"
    elif e.errno in READ_ONLY:
        hint = f"{root} is on a read-only file system: remount it read-write, or set CLAWUNITS_STATE_DIR"
    else:
        hint = f"check {root}: it must be a writable directory of yours"
    return StoreError(f"cannot write {what} {path}: {why}", hint=hint)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 and tighten it if it already exists."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


class Store:
    """The durable session records under one state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sessions_dir = root / "sessions"
        self.locks_dir = root / "locks"
        # The damaged record files the last all() skipped (path → why); each is warned about once per Store
        # (the notifier lists sessions every few seconds).
        self.skipped: dict[Path, str] = {}
        # Record files of a newer schema than this clawunits reads (path → why): skipped, never written.
        self.newer: dict[Path, str] = {}
        self._warned: set[tuple[Path, str]] = set()

    def _ensure(self) -> None:
        try:
            for d in (self.root, self.sessions_dir, self.locks_dir):
                ensure_private_dir(d)
        except OSError as e:
            raise write_error("the state directory", self.root, e, self.root) from e

    def path_of(self, session_id: str) -> Path:
        return self.sessions_dir / f"{session_id}.toml"

    # -- reading ---------------------------------------------------------------------------------------

    def load(self, session_id: str) -> SessionRecord:
        path = self.path_of(session_id)
        try:
            return _record(path, tomllib.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise NotFound(f"unknown session {session_id!r}") from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            why = " ".join(str(e).split()) or type(e).__name__
            raise StoreError(
                f"session record {path} is unreadable: {why}", hint=f"move it out of {self.sessions_dir} or delete it"
            ) from e

    def all(self) -> list[SessionRecord]:
        """Every readable record, oldest first; a damaged file is skipped (in ``skipped``, and warned about
        once on stderr), never fatal.

        Parsing TOML is most of the cost of listing many sessions, so parsed records are cached in
        ``records.cache.json``, each entry valid while its file's inode, size and mtime are unchanged (every
        write replaces the file, so the inode changes too).
        """
        try:
            names = sorted(n for n in os.listdir(self.sessions_dir) if n.endswith(".toml"))
        except OSError:
            return []
        cache = self._read_cache()
        fresh: dict[str, Any] = {}
        records = []
        self.skipped, self.newer = {}, {}
        for name in names:
            path = self.sessions_dir / name
            try:
                st = os.stat(path)
                stamp = [st.st_ino, st.st_size, st.st_mtime_ns]
                hit = cache.get(name)
                data = hit["r"] if hit and hit["k"] == stamp else tomllib.loads(path.read_text(encoding="utf-8"))
                records.append(_record(path, data))
                fresh[name] = {"k": stamp, "r": data}
            except NewerFormat as e:
                self._skip(path, e, fix=e.hint or "upgrade clawunits", damaged=False)
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
                self._skip(path, e)
        if fresh != cache:
            self._write_cache(fresh)
        records.sort(key=lambda r: r.created_at)
        return records

    def _skip(self, path: Path, e: Exception, fix: str = "", damaged: bool = True) -> None:
        """Note a record file skipped: damaged, or (``damaged`` False) of a newer schema, kept in ``newer``;
        warned about (one line naming it) the first time this Store sees it."""
        why = " ".join(str(e).split()) or type(e).__name__
        (self.skipped if damaged else self.newer)[path] = why
        if (path, why) in self._warned:
            return
        self._warned.add((path, why))
        import logging  # only here: the logging package costs every CLI call ~4 ms to import

        logging.getLogger(__name__).warning(
            "clawunits: warning: skipping %ssession file %s: %s (fix: %s)",
            "damaged " if damaged else "",
            path,
            why,
            fix or f"move it out of {self.sessions_dir} or delete it",
        )

    def skipped_json(self) -> list[dict[str, str]]:
        """The damaged files all() skipped, for ``--json`` output (``skipped``)."""
        return [{"file": str(p), "error": why} for p, why in self.skipped.items()]

    def _read_cache(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / CACHE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_cache(self, entries: dict[str, Any]) -> None:
        # Only a speed-up: a reader that cannot write it just parses again next time.
        with contextlib.suppress(OSError):
            write_atomically(self.root / CACHE, json.dumps(entries, separators=(",", ":")).encode(), durable=False)

    def resolve(self, ref: str) -> SessionRecord:
        """Find a session by exact id, then exact name, then Claude session UUID, then unique id prefix."""
        ref = ref.strip()
        if not ref:
            raise NotFound("empty session reference")
        if _looks_like_id(ref) and self.path_of(ref).exists():
            return self.load(ref)
        records = self.all()
        for key in (lambda r: r.name, lambda r: r.claude_session_id):
            matches = [r for r in records if key(r) == ref]
            if matches:
                # Names are unique; a Claude UUID is shared by a session and its resumptions: newest wins.
                return matches[-1]
        if len(ref) >= MIN_ID_PREFIX:
            prefixed = [r for r in records if r.id.startswith(ref)]
            if len(prefixed) == 1:
                return prefixed[0]
            if len(prefixed) > 1:
                ids = ", ".join(r.id for r in prefixed[:5])
                raise Ambiguous(f"session reference {ref!r} is ambiguous: matches {ids}", hint="use the full id")
        raise NotFound(f"unknown session {ref!r}", hint="list sessions with: clawunits sessions")

    # -- writing ---------------------------------------------------------------------------------------

    def save(self, record: SessionRecord) -> None:
        self._ensure()
        path = self.path_of(record.id)
        try:
            write_atomically(path, tomli_w.dumps(session_file.to_toml(record)).encode())
        except OSError as e:
            raise write_error("the session record", path, e, self.root) from e

    def update(self, session_id: str, change: Callable[[SessionRecord], SessionRecord | None]) -> SessionRecord:
        """Read, change and write one record under its lock; ``change`` returning None writes nothing."""
        with self.lock(session_id):
            current = self.load(session_id)
            new = change(current)
            if new is None or new == current:
                return current
            self.save(new)
            return new

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive advisory lock shared by every process using this state directory."""
        self._ensure()
        path = self.locks_dir / f"{name}.lock"
        try:
            # Read-only is enough for flock, and an existing lock file opens so on a read-only file system
            # too: the write that follows fails with the clearer message.
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise write_error("the lock file", path, e, self.root) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _record(path: Path, data: dict[str, Any]) -> SessionRecord:
    """The record a file holds; ValueError (or TypeError) when it is damaged."""
    record = session_file.from_toml(data)
    if record.id != path.stem:
        # A torn or copied file can parse and name another session, which has a file of its own.
        raise ValueError(f"it names session {record.id!r}, not {path.stem!r}")
    return record


def _looks_like_id(ref: str) -> bool:
    return len(ref) == 8 and all(c in ID_ALPHABET for c in ref)
