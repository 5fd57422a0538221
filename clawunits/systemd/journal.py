"""Reading a session's records from journald with ``journalctl`` (no compiled reader needed).

Entries are matched on the unit's own syslog identifier or ``_SYSTEMD_USER_UNIT=<unit>``: user units do not
get LogExtraFields, and ``--user-unit`` also matches the manager's messages about the unit, which are not
records.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from clawunits.errors import JournalError
from clawunits.records import PART, Record, assemble, parse_line

JOURNALCTL = os.environ.get("CLAWUNITS_JOURNALCTL", "journalctl")


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
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", check=False
        )
    except FileNotFoundError as e:
        raise JournalError("journalctl not found", hint="install systemd (journalctl)") from e
    if proc.returncode != 0:
        raise JournalError(f"journalctl failed: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc.stdout


def _message(entry: dict[str, object]) -> str:
    msg = entry.get("MESSAGE", "")
    # journalctl renders a non-UTF-8 message as an array of byte values.
    if isinstance(msg, list):
        return bytes(int(b) for b in msg).decode(errors="replace")
    return "" if msg is None else str(msg)


def _json_lines(out: str) -> Iterator[tuple[str, str | None]]:
    for raw in out.splitlines():
        if not raw.strip():
            continue
        entry = json.loads(raw)
        yield _message(entry), entry.get("__CURSOR")


@dataclass(frozen=True)
class Batch:
    """Records read in one go, and the cursor to continue after them (None if nothing was read)."""

    records: list[Record]
    cursor: str | None


def read_tail(unit: str, lines: int) -> Batch:
    """The records of the last ``lines`` journal lines, read from the end (no full scan), and the cursor
    of the last line (to continue after it)."""
    out = _run([*_base(unit), "-o", "json", "--output-fields=MESSAGE", "-n", str(max(1, lines))])
    pairs = list(_json_lines(out))
    return Batch(records=list(assemble(pairs)), cursor=pairs[-1][1] if pairs else None)


def read_after(unit: str, cursor: str | None = None) -> Batch:
    """Every record after ``cursor`` (all of them without one), each with its cursor, for catch-up."""
    argv = [*_base(unit), "-o", "json", "--output-fields=MESSAGE"]
    if cursor:
        argv.append(f"--after-cursor={cursor}")
    pairs = list(_json_lines(_run(argv)))
    records = list(assemble(pairs))
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
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, errors="replace")
    except FileNotFoundError as e:
        raise JournalError("journalctl not found") from e
    assert proc.stdout is not None

    def pairs() -> Iterator[tuple[str, str | None]]:
        for raw in proc.stdout:  # type: ignore[union-attr]
            if raw.strip():
                entry = json.loads(raw)
                yield _message(entry), entry.get("__CURSOR")

    try:
        yield from assemble(pairs())
    finally:
        proc.terminate()
        proc.wait()
