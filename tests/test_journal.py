"""Reading session records back from the real journald: tail, catch-up by cursor, and follow."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until

from clawunits import records as R
from clawunits.records import Record, encode
from clawunits.systemd.journal import Batch, follow, read_after, read_tail
from clawunits.systemd.units import UnitSpec, UserManager

TS = "2026-11-21T23:55:42.201Z"
BIG_TEXT = ('NUL\x00 "quoted" back\\slash ünïcødé 日本語 🦀 \ttab ' * 3000)[:100_000]


def rec(seq: int, type_: str = R.TEXT, **fields: Any) -> list[str]:
    return encode(seq, TS, type_, fields)


# The unit's one long-lived process writes every line itself, like the runner. (Short-lived writers such as
# `cat` are a trap: journald reads a writer's cgroup when it processes the line, and a busy journald may do
# that after the writer exited, storing the line without _SYSTEMD_USER_UNIT.)
WRITER = """
import pathlib, sys, time
d, i = pathlib.Path(sys.argv[1]), 1
while True:
    if (d / f"go{i}").exists():
        sys.stdout.write((d / f"batch{i}").read_text())
        sys.stdout.flush()
        i += 1
    else:
        time.sleep(0.02)
"""


@dataclass
class Printer:
    """A real unit that prints the batches of lines it is handed, in order, to its stdout (the journal)."""

    manager: UserManager
    tmp_path: Path
    name: str = field(default_factory=lambda: f"clawunits-test-journal-{secrets.token_hex(4)}.service")
    batches: int = 0

    def start(self) -> None:
        self.manager.start(
            UnitSpec(
                name=self.name,
                description="clawunits journal test",
                argv=[sys.executable, "-c", WRITER, str(self.tmp_path)],
                workdir=str(self.tmp_path),
                environment={"PATH": "/usr/bin:/bin"},
                syslog_identifier="clawunits-test-journal",
            )
        )

    def print(self, *groups: list[str]) -> None:
        lines = [line for group in groups for line in group]
        self.batches += 1
        (self.tmp_path / f"batch{self.batches}").write_text("".join(line + "\n" for line in lines))
        (self.tmp_path / f"go{self.batches}").touch()

    def journal_lines(self) -> list[str]:
        out = subprocess.run(
            ["journalctl", "--no-pager", "-q", "-a", f"_SYSTEMD_USER_UNIT={self.name}", "-o", "cat"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.splitlines()


@pytest.fixture
def printer(user_manager: dict[str, str], tmp_path: Path) -> Iterator[Printer]:
    manager = UserManager()
    p = Printer(manager=manager, tmp_path=tmp_path)
    try:
        p.start()
        yield p
    finally:
        _kill_my_journalctls(p.name)
        subprocess.run(["systemctl", "--user", "stop", p.name], capture_output=True, timeout=60)
        subprocess.run(["systemctl", "--user", "reset-failed", p.name], capture_output=True, timeout=60)
        wait_until(lambda: manager.state(p.name) is None, what=f"{p.name} to be unloaded")
        manager.close()


def _my_journalctls(unit: str) -> list[int]:
    """Pids of journalctl processes this test process started for ``unit``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and cmdline[0].endswith(b"journalctl") and unit.encode() in b" ".join(cmdline):
            pids.append(int(proc.name))
    return pids


def _kill_my_journalctls(unit: str) -> None:
    for pid in _my_journalctls(unit):
        os.kill(pid, signal.SIGTERM)


def seqs(records: list[Record]) -> list[tuple[str, int | None]]:
    return [(r.type, r.seq) for r in records]


def read_until(unit: str, cursor: str | None, last_seq: int) -> Batch:
    """read_after, repeated until the record ``last_seq`` has reached the journal."""

    def attempt() -> Batch | None:
        batch = read_after(unit, cursor)
        return batch if any(r.seq == last_seq for r in batch.records) else None

    return wait_until(attempt, timeout=30, what=f"record {last_seq} in the journal of {unit}")


FIRST = [
    rec(1, R.STARTED, sessionId="abcd1234"),
    rec(2, R.TEXT, text=BIG_TEXT),
    ["plain line on stderr, not a record"],
    rec(3, R.TOOL_USE, tool="Bash", summary="npm test"),
    rec(6, R.TEXT, text="after a lost stretch"),
]


def test_read_after_gives_whole_records_gaps_logs_and_a_cursor(printer: Printer) -> None:
    assert len(FIRST[1]) > 1  # the big record really is cut into parts
    printer.print(*FIRST)
    batch = read_until(printer.name, None, 6)
    assert seqs(batch.records) == [
        (R.STARTED, 1),
        (R.TEXT, 2),
        (R.LOG, None),
        (R.TOOL_USE, 3),
        (R.GAP, None),
        (R.TEXT, 6),
    ]
    started, big, log, tool, gap, last = batch.records
    assert started.get("sessionId") == "abcd1234" and started.ts == TS
    assert big.get("text") == BIG_TEXT
    assert log.get("text") == "plain line on stderr, not a record"
    assert tool.get("summary") == "npm test"
    assert gap.data == {"fromSeq": 4, "toSeq": 5, "missing": 2}
    assert last.get("text") == "after a lost stretch"
    assert all(r.cursor for r in batch.records)
    assert batch.cursor == last.cursor
    # Reading again from the start gives the same; nothing is consumed.
    assert seqs(read_after(printer.name).records) == seqs(batch.records)

    printer.print(rec(7, R.TOOL_RESULT, summary="1 line: ok"), rec(8, R.TURN_END, costUsd=0.01))
    more = read_until(printer.name, batch.cursor, 8)
    assert seqs(more.records) == [(R.TOOL_RESULT, 7), (R.TURN_END, 8)]
    assert more.cursor == more.records[-1].cursor != batch.cursor

    # Nothing new: no records, and the cursor stays where it was.
    idle = read_after(printer.name, more.cursor)
    assert idle.records == []
    assert idle.cursor == more.cursor


def test_read_after_a_cursor_inside_a_records_parts_loses_nothing(printer: Printer) -> None:
    parts = rec(2, R.TEXT, text=BIG_TEXT)
    assert len(parts) >= 3
    # journald has stored only the first parts of record 2 when the reader comes by.
    printer.print(rec(1, R.STARTED), parts[:2])
    wait_until(lambda: len(printer.journal_lines()) == 3, what="record 1 and two parts in the journal")
    first = read_after(printer.name)
    assert seqs(first.records) == [(R.STARTED, 1)]

    printer.print(parts[2:], rec(3, R.EXIT, status="completed"))
    rest = read_until(printer.name, first.cursor, 3)
    assert seqs(rest.records) == [(R.TEXT, 2), (R.EXIT, 3)]
    assert rest.records[0].get("text") == BIG_TEXT


def test_read_tail_returns_only_the_last_lines(printer: Printer) -> None:
    printer.print(*(rec(i, R.TEXT, text=f"line {i}") for i in range(1, 11)))
    wait_until(lambda: len(printer.journal_lines()) == 10, what="ten lines in the journal")
    tail = read_tail(printer.name, 3).records
    assert seqs(tail) == [(R.TEXT, 8), (R.TEXT, 9), (R.TEXT, 10)]
    assert [r.get("text") for r in tail] == ["line 8", "line 9", "line 10"]
    assert [r.seq for r in read_tail(printer.name, 1).records] == [10]
    assert [r.seq for r in read_tail(printer.name, 100).records] == list(range(1, 11))


def test_read_of_a_unit_without_output_is_empty(user_manager: dict[str, str]) -> None:
    unit = f"clawunits-test-silent-{secrets.token_hex(4)}.service"
    assert read_tail(unit, 10) == Batch(records=[], cursor=None)
    assert read_after(unit) == Batch(records=[], cursor=None)


@dataclass
class Follower:
    """Runs ``follow`` in a thread until it has seen ``until_seq``, then closes the generator."""

    unit: str
    cursor: str | None
    until_seq: int
    records: list[Record] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Follower:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        gen = follow(self.unit, self.cursor)
        try:
            for r in gen:
                self.records.append(r)
                if r.seq == self.until_seq:
                    break
        except BaseException as e:  # noqa: BLE001 - handed to the test thread, which re-raises it
            self.error = e
        finally:
            gen.close()
            self.done.set()


def test_follow_yields_what_is_printed_after_the_cursor(printer: Printer) -> None:
    printer.print(rec(1, R.STARTED), rec(2, R.TEXT, text="before"))
    batch = read_until(printer.name, None, 2)

    follower = Follower(printer.name, batch.cursor, until_seq=5).start()
    wait_until(lambda: _my_journalctls(printer.name), what="journalctl -f to run")
    assert follower.records == []  # nothing after the cursor yet

    printer.print(rec(3, R.TEXT, text=BIG_TEXT), ["a log line"])
    printer.print(rec(5, R.EXIT, status="completed"))
    assert follower.done.wait(30), f"follow saw only {seqs(follower.records)}"
    assert follower.error is None
    assert seqs(follower.records) == [(R.TEXT, 3), (R.LOG, None), (R.GAP, None), (R.EXIT, 5)]
    assert follower.records[0].get("text") == BIG_TEXT
    assert follower.records[2].data == {"fromSeq": 4, "toSeq": 4, "missing": 1}
    # Closing the generator ended its journalctl.
    wait_until(lambda: not _my_journalctls(printer.name), what="journalctl -f to end")


def test_follow_without_cursor_starts_at_the_beginning(printer: Printer) -> None:
    printer.print(rec(1, R.STARTED), rec(2, R.TEXT, text="early"))
    read_until(printer.name, None, 2)
    follower = Follower(printer.name, None, until_seq=3).start()
    printer.print(rec(3, R.EXIT, status="completed"))
    assert follower.done.wait(30), f"follow saw only {seqs(follower.records)}"
    assert follower.error is None
    assert seqs(follower.records) == [(R.STARTED, 1), (R.TEXT, 2), (R.EXIT, 3)]
    wait_until(lambda: not _my_journalctls(printer.name), what="journalctl -f to end")
