"""Foreground streaming: a session's records to the chats that have it in the foreground, each record once
per chat (the chat's seen cursor), text coalesced into one message 500 ms after its last block."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clawunits.notifier.outbox import Item, Outbox
from clawunits.records import Record
from clawunits.service.foreground import Foreground, View, cursor_seqnum
from clawunits.state.models import SessionRecord

FG_COALESCE_SEC = 0.5


@dataclass
class FgBuffer:
    texts: list[str] = field(default_factory=list)
    first_cursor: str = ""
    last_cursor: str = ""
    due: float = 0.0
    # The journal cursor before the first text: until the buffer is in the outbox, a restart reads from here.
    resume_cursor: str | None = None


class ForegroundStream:
    """What the foreground chats of each session get, put in the outbox."""

    def __init__(self, foreground: Foreground, outbox: Outbox, enqueue: Callable[[Item], None]) -> None:
        self.foreground = foreground
        self.outbox = outbox
        self.enqueue = enqueue
        self.buffers: dict[tuple[str, str], FgBuffer] = {}

    def _views(self, s: SessionRecord, rec: Record) -> dict[str, View]:
        """Foreground channels of the session that have not seen this record yet."""
        here = cursor_seqnum(rec.cursor)
        return {
            ch: v for ch, v in self.foreground.channels_of(s.id).items() if cursor_seqnum(v.seen) < here or here < 0
        }

    def text(self, s: SessionRecord, rec: Record, resume_cursor: str | None) -> None:
        """Buffer a text block; ``resume_cursor`` is the journal cursor before its record."""
        for channel in self._views(s, rec):
            buf = self.buffers.setdefault(
                (s.id, channel), FgBuffer(first_cursor=rec.cursor or "", resume_cursor=resume_cursor)
            )
            buf.texts.append(str(rec.get("text", "")))
            buf.last_cursor = rec.cursor or buf.last_cursor
            buf.due = time.monotonic() + FG_COALESCE_SEC

    def event(self, s: SessionRecord, rec: Record, text: str) -> None:
        """An event line after the text buffered before it."""
        for channel in self._views(s, rec):
            self._flush((s.id, channel))
            if self.outbox.add(Item(f"{rec.cursor}:fg:{channel}", text, channel)):
                self.enqueue(self.outbox.pending[f"{rec.cursor}:fg:{channel}"])
            if rec.cursor:
                self.foreground.mark_seen(s.id, channel, rec.cursor)

    def event_now(self, s: SessionRecord, key: str, text: str) -> None:
        """An event that has no record (a death systemd reports), keyed ``<key>:fg:<channel>``."""
        for channel in self.foreground.channels_of(s.id):
            item = Item(f"{key}:fg:{channel}", text, channel)
            if self.outbox.add(item):
                self.enqueue(item)

    def flush(self, force: bool = False) -> None:
        """Put the buffers that are due (all with ``force``) in the outbox."""
        now = time.monotonic()
        for key, buf in list(self.buffers.items()):
            if force or buf.due <= now:
                self._flush(key)

    def _flush(self, key: tuple[str, str]) -> None:
        buf = self.buffers.pop(key, None)
        if buf is None or not buf.texts:
            return
        sid, channel = key
        item = Item(f"{buf.first_cursor}:fgtext:{channel}", "\n".join(buf.texts), channel)
        if self.outbox.add(item):
            self.enqueue(item)
        if buf.last_cursor:
            self.foreground.mark_seen(sid, channel, buf.last_cursor)

    def held_cursors(self) -> list[str | None]:
        """The journal cursors before text still only in memory: a restart must read from the earliest."""
        return [buf.resume_cursor for buf in self.buffers.values()]
