"""The durable per-session inbox between ``clawunits respond`` and the session's runner.

One file per message, Maildir-style, under ``<state>/inbox/<session id>/``::

    tmp/      a message being written (never read)
    queue/    posted, not yet taken: ``<time_ns>-<message id>.json``, taken in name order
    taken/    taken by the runner, delivery in progress
    done/     delivered (kept for the record; removed with the session)

Every move is a rename within one directory tree, so a message is in exactly one place at any moment: a crash
at any point loses nothing, and a message moves to ``done/`` only after the runner has handed it to Claude.
After a runner restart, ``recover()`` puts back into the queue every taken message that the journal does not
show as delivered.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from clawunits.records import utc_now_iso
from clawunits.state.naming import new_id
from clawunits.state.store import ensure_private_dir, write_atomically, write_error


@dataclass(frozen=True)
class Message:
    id: str
    text: str
    interrupt: bool = False
    user_initiated: bool = False
    ts: str = ""
    posted_ns: int = 0


@dataclass(frozen=True)
class Entry:
    """A message file in the queue or in taken/."""

    path: Path
    message: Message


class Inbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp, self.queue, self.taken, self.done = (root / d for d in ("tmp", "queue", "taken", "done"))

    def _ensure(self) -> None:
        for d in (self.root.parent, self.root, self.tmp, self.queue, self.taken, self.done):
            ensure_private_dir(d)

    def post(self, text: str, *, interrupt: bool = False, user_initiated: bool = False) -> Message:
        """Write a message into the queue atomically and return it."""
        staged = self.stage(text, interrupt=interrupt, user_initiated=user_initiated)
        self.enqueue(staged)
        return staged.message

    def stage(self, text: str, *, interrupt: bool = False, user_initiated: bool = False) -> Entry:
        """Write a message into tmp/ (never read): the one step that needs space. Then :meth:`enqueue` or
        :meth:`discard` it. Raises :class:`StoreError` when it cannot be written (full or read-only state)."""
        now = time.time_ns()
        msg = Message(
            id=new_id(), text=text, interrupt=interrupt, user_initiated=user_initiated, ts=utc_now_iso(), posted_ns=now
        )
        staged = self.tmp / f"{now:020d}-{msg.id}.json"
        try:
            self._ensure()
            write_atomically(staged, json.dumps(asdict(msg)).encode())
        except OSError as e:
            raise write_error("the message", staged, e, self.root.parent.parent) from e
        return Entry(staged, msg)

    def enqueue(self, staged: Entry) -> None:
        """Move a staged message into the queue (a rename: it needs no space)."""
        try:
            os.rename(staged.path, self.queue / staged.path.name)
        except OSError as e:
            self.discard(staged)
            raise write_error("the message", self.queue / staged.path.name, e, self.root.parent.parent) from e

    def discard(self, staged: Entry) -> None:
        """Remove a staged message that will not be sent."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged.path)

    def pending(self) -> list[Entry]:
        """Queued messages, oldest first."""
        return _entries(self.queue)

    def in_flight(self) -> list[Entry]:
        return _entries(self.taken)

    def take(self, entry: Entry) -> Entry | None:
        """Move a queued message to taken/; None if another taker was faster."""
        dest = self.taken / entry.path.name
        try:
            os.rename(entry.path, dest)
        except FileNotFoundError:
            return None
        return Entry(dest, entry.message)

    def delivered(self, entry: Entry) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.rename(entry.path, self.done / entry.path.name)

    def recover(self, delivered_ids: Iterable[str]) -> int:
        """After a restart: taken messages that were delivered go to done/, the others back to the queue."""
        known = set(delivered_ids)
        requeued = 0
        for entry in self.in_flight():
            if entry.message.id in known:
                self.delivered(entry)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.rename(entry.path, self.queue / entry.path.name)
                    requeued += 1
        return requeued


def _entries(directory: Path) -> list[Entry]:
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        path = directory / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out.append(Entry(path, Message(**data)))
        except (OSError, ValueError, TypeError):
            # A file that vanished (taken meanwhile) or cannot be parsed is skipped, never fatal.
            continue
    return out


def inbox_for(state_root: Path, session_id: str) -> Inbox:
    return Inbox(state_root / "inbox" / session_id)
