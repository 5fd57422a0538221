"""Following the journal of all sessions: every session's record parts joined into records, gaps warned
about, each record handed over with the journal cursor before it, and the cursor after the last entry kept."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from clawunits.records import EXIT, STREAM_VERSION, VERSION_KEY, GapDetector, Joiner, Record, is_newer, parse_line
from clawunits.state.naming import ID_ALPHABET, ID_LENGTH, UNIT_PREFIX
from clawunits.systemd import journal

log = logging.getLogger(__name__)

FOLLOW_RESTART_SEC = 1.0
# journalctl -f (systemd 252) can miss journald's wake-up for entries written while it starts reading, and then
# sits on them until the next write anywhere in the journal (seen: a notifier started just after a burst stayed
# silent for minutes). So while it is idle the follower asks whether anything lies past its cursor, and follows
# again if so: every second in its first seconds, then rarely (each check is one ~10 ms journalctl run).
STALL_CHECK_SEC = 1.0
STALL_CHECK_LATER_SEC = 30.0
STARTING_SEC = 15.0

# (session id, record, journal cursor before the record)
OnRecord = Callable[[str, Record, str | None], None]


class Follower:
    """Reads the journal after ``cursor`` (from ``since`` without one) for the daemon's life."""

    def __init__(self, cursor: str | None, since: datetime, on_record: OnRecord) -> None:
        self.cursor = cursor
        self.cursor_dirty = False  # moved since it was last saved
        self.since = since
        self.on_record = on_record
        self.streams: dict[str, tuple[Joiner, GapDetector]] = {}
        self.last_read = time.monotonic()
        # Runner streams of a newer format than this notifier reads: their records are not handled (see _newer).
        self.newer: set[str] = set()

    async def run(self) -> None:
        """Follow the journal for the daemon's life: should ``journalctl`` end (killed, out of memory, a bad
        line) or stall, start it again after the last entry read, so the notifier never sits deaf but alive."""
        while True:
            try:
                await self._follow()
            except Exception:  # logged with traceback; following goes on
                log.exception("following the journal failed; following again after the last entry read")
            await asyncio.sleep(FOLLOW_RESTART_SEC)

    async def _follow(self) -> None:
        """One ``journalctl -f``, until it ends or is found sitting on entries it did not hand over."""
        started = time.monotonic()
        reader = asyncio.create_task(self._read())
        try:
            while True:
                starting = time.monotonic() - started < STARTING_SEC
                done, _ = await asyncio.wait({reader}, timeout=STALL_CHECK_SEC if starting else STALL_CHECK_LATER_SEC)
                if done:
                    reader.result()  # its error, if any, is logged by run
                    log.warning("journalctl ended; following again after the last entry read")
                    return
                if await self._stalled():
                    log.warning("journalctl -f missed new entries; following again after the last entry read")
                    return
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self) -> None:
        async for entry in journal.follow_user(self.cursor, self.since):
            self.last_read = time.monotonic()
            self.on_entry(entry)

    async def _stalled(self) -> bool:
        """Idle for a while, yet the journal holds an entry after the last one read."""
        if time.monotonic() - self.last_read < STALL_CHECK_SEC:
            return False
        return await journal.user_entry_after(self.cursor, self.since)

    def on_entry(self, entry: journal.Entry) -> None:
        session_id = session_of(entry.identifier)
        if session_id is not None:
            joiner, gaps = self.streams.setdefault(entry.identifier, (Joiner(), GapDetector()))
            rec = joiner.feed(parse_line(entry.message, entry.cursor))
            if rec is not None and not self._newer(entry.identifier, session_id, rec):
                gap = gaps.check(rec)
                if gap is not None:
                    log.warning("session %s: %s record(s) lost in the journal", session_id, gap.get("missing"))
                try:
                    # self.cursor is still the entry before this record's (it moves once the record is handled).
                    self.on_record(session_id, rec, self.cursor)
                except Exception:  # one bad record must not stop the notifier (logged with traceback)
                    log.exception("session %s: could not handle a %s record", session_id, rec.type)
                if rec.type == EXIT:
                    self.streams.pop(entry.identifier, None)  # this runner writes no more
        if entry.cursor:
            self.cursor, self.cursor_dirty = entry.cursor, True

    def _newer(self, ident: str, session_id: str, rec: Record) -> bool:
        """Is ``rec`` part of a runner stream of a newer format than this notifier reads? Such a stream is not
        handled (misread, it could send wrong notifications) and is reported in one log line; it ends with its
        runner's ``exit``, or at a record of a format this notifier reads (a runner of this version)."""
        if is_newer(rec):
            if ident not in self.newer:
                self.newer.add(ident)
                log.warning(
                    "session %s was written by a newer clawunits: record stream v%s, this one reads v%s "
                    "(hint: upgrade clawunits); its notifications are not sent until then",
                    session_id, rec.get(VERSION_KEY), STREAM_VERSION,
                )  # fmt: skip
            return True
        if ident not in self.newer:
            return False
        if VERSION_KEY in rec.data:
            self.newer.discard(ident)
            return False
        if rec.type == EXIT:
            self.newer.discard(ident)
            self.streams.pop(ident, None)
        return True


def session_of(ident: str) -> str | None:
    """The session id in a unit's syslog identifier ``clawunits-<name>-<id>``; None for anything else."""
    if not ident.startswith(UNIT_PREFIX):
        return None
    sid = ident.rsplit("-", 1)[-1]
    return sid if len(sid) == ID_LENGTH and all(c in ID_ALPHABET for c in sid) else None
