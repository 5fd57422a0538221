"""Reading and following journald with ``journalctl`` (no compiled reader needed): one session's records
(the CLI, the service, the runner) and the stdout entries of all of a user's units (the notifier).

A session's entries are matched on the unit's own syslog identifier or ``_SYSTEMD_USER_UNIT=<unit>``: user units do not
get LogExtraFields, and ``--user-unit`` also matches the manager's messages about the unit, which are not
records.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from clawunits import proc
from clawunits.errors import CommandError, CommandNotFound, JournalError
from clawunits.records import PART, Record, assemble, parse_line

JOURNALCTL = os.environ.get("CLAWUNITS_JOURNALCTL", "journalctl")
# The longest line (one JSON entry) the notifier's follow reads; records are split into parts well below it.
READ_LIMIT = 4 * 1024 * 1024


def _base(unit: str) -> list[str]:
    # journald resolves _SYSTEMD_USER_UNIT from the writer's cgroup, which fails for a line whose writer has
    # already exited (the runner's last records); the syslog identifier comes with the stream and never fails.
    return [
        JOURNALCTL, "--no-pager", "-q", "-a",
        f"SYSLOG_IDENTIFIER={syslog_identifier(unit)}", "+", f"_SYSTEMD_USER_UNIT={unit}",
    ]  # fmt: skip


def syslog_identifier(unit: str) -> str:
    """A session unit's syslog identifier: its name without ``.service`` (unique forever, like the unit)."""
    return unit.removesuffix(".service")


def _run(argv: list[str]) -> str:
    try:
        return proc.run(argv).stdout
    except CommandNotFound as e:
        raise JournalError("journalctl not found", hint="install systemd (journalctl)") from e
    except CommandError as e:
        raise JournalError(f"journalctl failed: {e.stderr.strip() or _status(e)}") from e


def _status(e: CommandError) -> str:
    return f"exit {e.returncode}" if e.returncode is not None else e.message


def _source(unit: str) -> str:
    """How an error names the session of ``unit`` (``clawunits-<name>-<id>.service``): by its id."""
    return f"session {syslog_identifier(unit).rsplit('-', 1)[-1]}"


def message(entry: dict[str, object]) -> str:
    """An entry's MESSAGE as text."""
    msg = entry.get("MESSAGE", "")
    # journalctl renders a non-UTF-8 message as an array of byte values.
    if isinstance(msg, list):
        return bytes(int(b) for b in msg).decode(errors="replace")
    return "" if msg is None else str(msg)


def _json_lines(lines: Iterable[str]) -> Iterator[tuple[str, str | None]]:
    for raw in lines:
        if not raw.strip():
            continue
        entry = json.loads(raw)
        yield message(entry), entry.get("__CURSOR")


@dataclass(frozen=True)
class Batch:
    """Records read in one go, and the cursor to continue after them (None if nothing was read)."""

    records: list[Record]
    cursor: str | None


def read_tail(unit: str, lines: int) -> Batch:
    """The records of the last ``lines`` journal lines, read from the end (no full scan), and the cursor
    of the last line (to continue after it)."""
    out = _run([*_base(unit), "-o", "json", "--output-fields=MESSAGE", "-n", str(max(1, lines))])
    pairs = list(_json_lines(out.splitlines()))
    return Batch(records=list(assemble(pairs, source=_source(unit))), cursor=pairs[-1][1] if pairs else None)


def read_after(unit: str, cursor: str | None = None) -> Batch:
    """Every record after ``cursor`` (all of them without one), each with its cursor, for catch-up."""
    argv = [*_base(unit), "-o", "json", "--output-fields=MESSAGE"]
    if cursor:
        argv.append(f"--after-cursor={cursor}")
    pairs = list(_json_lines(_run(argv).splitlines()))
    records = list(assemble(pairs, source=_source(unit)))
    return Batch(records=records, cursor=_resume_cursor(pairs, cursor))


def _resume_cursor(pairs: list[tuple[str, str | None]], cursor: str | None) -> str | None:
    """After the last line, or before the first part of a record whose later parts have not arrived yet.

    Continuing after such a part would leave the rest of the record unjoinable: the record would be lost.
    """
    if not pairs:
        return cursor
    last = parse_line(pairs[-1][0])
    part, parts = last.get("part"), last.get("parts")
    if last.type == PART and isinstance(part, int) and isinstance(parts, int) and part + 1 < parts:
        first = len(pairs) - 1 - part
        return pairs[first - 1][1] if first > 0 else cursor
    return pairs[-1][1]


def follow(unit: str, cursor: str | None = None) -> Iterator[Record]:
    """Yield records as journald stores them, starting after ``cursor`` (or from the start), until closed."""
    argv = [*_base(unit), "-o", "json", "--output-fields=MESSAGE", "-f"]
    argv += [f"--after-cursor={cursor}"] if cursor else ["--lines=all"]
    try:
        with proc.stream(argv) as out:
            yield from assemble(_json_lines(out), source=_source(unit))
    except CommandNotFound as e:
        raise JournalError("journalctl not found") from e


@dataclass(frozen=True)
class Entry:
    """One stdout entry of a user's unit: who wrote it (its syslog identifier), what, and where it is."""

    identifier: str
    message: str
    cursor: str


def _user_stdout() -> list[str]:
    """journalctl over the stdout entries of all the user's units (every session's records)."""
    return [JOURNALCTL, "-q", "-a", "--no-pager", "-o", "json", f"_UID={os.getuid()}", "_TRANSPORT=stdout"]


async def user_entry_after(cursor: str | None, since: datetime) -> bool:
    """Is there a stdout entry of the user's units after ``cursor`` (or from ``since``)? One short run."""
    argv = [*_user_stdout(), "--output-fields=SYSLOG_IDENTIFIER", "-n", "1", *_start(cursor, since)]
    return bool((await proc.run_async(argv, timeout=30.0)).stdout.strip())


def _start(cursor: str | None, since: datetime) -> list[str]:
    # journalctl wants --since in local time.
    return [f"--after-cursor={cursor}"] if cursor else [f"--since={since.astimezone():%Y-%m-%d %H:%M:%S}"]


async def follow_user(cursor: str | None, since: datetime) -> AsyncIterator[Entry]:
    """``journalctl -f`` over the user's stdout entries (every session's records, told apart by identifier),
    after ``cursor``, or without one from ``since``; ends when journalctl does. A line that is not JSON is
    skipped; one over :data:`READ_LIMIT` raises ValueError."""
    argv = [*_user_stdout(), "-f", "--output-fields=MESSAGE,SYSLOG_IDENTIFIER", *_start(cursor, since)]
    async with proc.stream_async(argv, limit=READ_LIMIT) as lines:
        async for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            yield Entry(str(entry.get("SYSLOG_IDENTIFIER") or ""), message(entry), str(entry.get("__CURSOR") or ""))
