"""The durable outbox (``notifier/outbox.jsonl``): every notification is added before the journal cursor moves
past its record and marked sent after delivery, so a restart neither loses nor (but in one instant) repeats one."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clawunits.state.store import write_atomically

OUTBOX_COMPACT_BYTES = 4 * 1024 * 1024
WAKE_QUEUE = "wake"


@dataclass
class Item:
    """One notification in the outbox: a chat message (``channel`` set) or a wake event."""

    key: str
    text: str
    channel: str | None = None
    # A wake event's target: an agent and its session (None: the default agent's main session).
    agent_id: str | None = None
    session_key: str | None = None
    # A status message (clawunits/notifier/status.py): the session it shows, and for an edit (never in the
    # outbox) the message it edits and whether it shows the session's final state.
    status_of: str | None = None
    edit_of: str | None = None
    final: bool = False

    def entry(self) -> dict[str, Any]:
        """The outbox line that adds it (the wake target only when there is one)."""
        entry: dict[str, Any] = {"add": self.key, "text": self.text, "channel": self.channel}
        if self.agent_id:
            entry["agentId"] = self.agent_id
        if self.session_key:
            entry["sessionKey"] = self.session_key
        if self.status_of:
            entry["statusOf"] = self.status_of
        return entry

    @property
    def queue(self) -> str:
        return self.channel or WAKE_QUEUE


class Outbox:
    """Durable notifications: appended before delivery, marked sent after (JSON lines, fsynced)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # A dict for its order: compaction keeps the newest keys.
        self.sent: dict[str, None] = {}
        self.pending: dict[str, Item] = {}
        self._load()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the daemon's life
        os.chmod(path, 0o600)

    def _load(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash mid-write
            if "add" in entry:
                self.pending[entry["add"]] = Item(
                    entry["add"], entry.get("text", ""), entry.get("channel"), entry.get("agentId"),
                    entry.get("sessionKey"), entry.get("statusOf"),
                )  # fmt: skip
            elif "sent" in entry:
                self.sent[entry["sent"]] = None
                self.pending.pop(entry["sent"], None)
        if self.path.stat().st_size > OUTBOX_COMPACT_BYTES:
            self._compact()

    def _compact(self) -> None:
        keep: list[dict[str, Any]] = [{"sent": k} for k in list(self.sent)[-20_000:]]
        keep += [i.entry() for i in self.pending.values()]
        write_atomically(self.path, "".join(json.dumps(e) + "\n" for e in keep).encode())

    def known(self, key: str) -> bool:
        return key in self.sent or key in self.pending

    def add(self, item: Item) -> bool:
        """Record a notification to send; False if it was recorded before (a record read again)."""
        if self.known(item.key):
            return False
        self.pending[item.key] = item
        self._write(item.entry())
        return True

    def mark_sent(self, key: str, ok: bool = True, superseded: bool = False) -> None:
        """Close a notification: delivered, given up on (``ok`` False), or replaced before it went out."""
        self.pending.pop(key, None)
        self.sent[key] = None
        entry: dict[str, Any] = {"sent": key}
        if not ok:
            entry["failed"] = True
        if superseded:
            entry["superseded"] = True
        self._write(entry)

    def _write(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
