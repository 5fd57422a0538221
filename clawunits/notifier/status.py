"""The live status message: under the ``status`` notify policy a session's chat gets one message, edited in
place as the session goes on (its status, current tool, elapsed time and cost), at most every few seconds.

Exactly once: the message is an outbox item like any other (key ``<session>:status``), so it is sent once
across restarts of the notifier and of the gateway; the message id its receipt carries is written to
``notifier/status.json`` (atomically) before the outbox marks it sent. Edits are not in the outbox: each carries
that message id, so a retried or repeated edit changes the same message and can never become a new one, and a
lost edit (a crash, a refused call) is superseded by the next, computed afresh from the session's record. After a
restart every session whose final state was not yet shown is edited again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from clawunits.errors import NotFound
from clawunits.notifier.gateway import EDIT_MARK
from clawunits.notifier.outbox import Item, Outbox
from clawunits.notify_policy import EDITABLE_CHANNELS, NotifyPolicy, effective_policy
from clawunits.render import duration, local_time
from clawunits.state.config import Settings
from clawunits.state.models import SessionRecord, Status
from clawunits.state.store import Store, write_atomically

log = logging.getLogger(__name__)

# At most one edit per session this often (Telegram allows about one message a second per chat).
EDIT_EVERY_SEC = 3.0
# With no record to show, a running session's message is still edited this often (its elapsed time).
REFRESH_EVERY_SEC = 30.0
KEEP_FINAL = 500
MAX_FAILED_EDITS = 5


@dataclass
class StatusEntry:
    """One session's status message: where it is, its id once sent ("" when the channel gave none), the tool
    shown, and whether its final state is shown."""

    channel: str
    message_id: str | None = None
    tool: str | None = None
    final: bool = False


def status_key(sid: str) -> str:
    return f"{sid}:status"


def policy_of(s: SessionRecord, settings: Settings, channel: str | None) -> NotifyPolicy:
    return effective_policy(s.notify, channel, settings.notifyPolicy, settings.notifyPolicyByChannel)


def can_edit(channel: str | None) -> bool:
    return bool(channel) and str(channel).split("|", 1)[0] in EDITABLE_CHANNELS


def status_text(s: SessionRecord, tool: str | None) -> str:
    """``🟢 [name] running`` / ``🔧 Tool — summary`` / ``⏱️ 1m05s · 💰 $0.0123``."""
    label = s.status.value
    if s.status is Status.WAITING and s.waiting_for:
        label = f"waiting ({s.waiting_for})"
    elif s.status is Status.COMPLETED and s.waiting_for:
        label = "completed (open for follow-ups)"
    elif s.status is Status.LIMITED:
        label = f"usage limit ({s.limit_window}); resumes at {local_time(s.limit_resets_at)}"
    lines = [f"{s.status.icon} [{s.name}] {label}"]
    if tool and s.status in (Status.RUNNING, Status.STARTING):
        lines.append(f"🔧 {tool}")
    lines.append(f"⏱️ {duration(s.duration_ms)} · 💰 ${s.cost_usd:.4f}")
    return "\n".join(lines)


def is_final(s: SessionRecord) -> bool:
    return s.status.is_terminal and not s.is_open


class StatusBoard:
    """The status messages of the sessions under ``status``: created once, edited when something changed."""

    def __init__(self, path: Path, store: Store, outbox: Outbox, enqueue: Callable[[Item], None]) -> None:
        self.path = path
        self.store = store
        self.outbox = outbox
        self.enqueue = enqueue
        self.entries: dict[str, StatusEntry] = self._load()
        # Sessions with something new to show, and when each was last edited / what it shows.
        self.dirty: set[str] = {sid for sid, e in self.entries.items() if not e.final}
        self.last_edit: dict[str, float] = {}
        self.shown: dict[str, str] = {}
        self.edits = 0  # edits enqueued (a newer one makes older queued ones stale)
        self.newest: dict[str, str] = {}  # session -> key of its newest edit
        self.failures: dict[str, int] = {}  # session -> edits refused in a row

    def _load(self) -> dict[str, StatusEntry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:  # damaged: the messages already sent are not sent again (outbox)
            log.warning("unreadable %s (%s): status messages are not edited until they change", self.path, e)
            return {}
        known = set(StatusEntry.__dataclass_fields__)
        return {sid: StatusEntry(**{k: v for k, v in e.items() if k in known}) for sid, e in raw.items()}

    def _save(self) -> None:
        finals = [sid for sid, e in self.entries.items() if e.final]
        for sid in finals[:-KEEP_FINAL]:
            del self.entries[sid]
        data = {sid: asdict(e) for sid, e in self.entries.items()}
        write_atomically(self.path, json.dumps(data, ensure_ascii=False).encode())

    def editable(self, sid: str, channel: str) -> bool:
        """Whether ``sid``'s status message can be edited (a channel that gave no message id cannot)."""
        entry = self.entries.get(sid)
        return can_edit(channel) and (entry is None or entry.message_id != "")

    def touch(self, s: SessionRecord, channel: str, tool: str | None = None) -> None:
        """Something happened to ``s``: its status message is sent now if it has none, else edited soon."""
        entry = self.entries.get(s.id)
        if entry is None:
            item = Item(status_key(s.id), status_text(s, tool), channel, status_of=s.id)
            # The outbox before the entry file: a crash between leaves the item, found again by its key.
            entry = self.entries[s.id] = StatusEntry(channel, tool=tool)
            if self.outbox.add(item):
                self.enqueue(item)
            elif item.key not in self.outbox.pending:
                entry.message_id = ""  # sent long ago and its id lost (a damaged status.json): never sent again
            self._save()
            self.shown[s.id] = item.text
            return
        if tool is not None:
            entry.tool = tool
        entry.final = False
        self.dirty.add(s.id)

    def sent(self, sid: str, channel: str, message_id: str | None) -> None:
        """The status message went out (its receipt said so): keep its id, before the outbox closes it."""
        entry = self.entries.setdefault(sid, StatusEntry(channel))
        entry.message_id = message_id or ""
        if not message_id:
            log.warning("session %s: the channel gave no message id; its status is sent as new messages", sid)
        self._save()
        self.dirty.add(sid)

    def refresh(self, records: list[SessionRecord]) -> None:
        """The periodic check: a session's elapsed time, or an end no record told of (a death), shows."""
        now = time.monotonic()
        for s in records:
            entry = self.entries.get(s.id)
            if entry is None or entry.final:
                continue
            if is_final(s) or now - self.last_edit.get(s.id, 0.0) >= REFRESH_EVERY_SEC:
                self.dirty.add(s.id)

    def flush(self) -> None:
        """Enqueue an edit for each changed session not edited in the last few seconds."""
        now = time.monotonic()
        for sid in sorted(self.dirty):
            entry = self.entries.get(sid)
            if entry is None or not entry.message_id:
                if entry is not None and entry.message_id == "":
                    self.dirty.discard(sid)
                continue  # not sent yet: edited once its id is known
            if now - self.last_edit.get(sid, 0.0) < EDIT_EVERY_SEC:
                continue
            self.dirty.discard(sid)
            try:
                s = self.store.load(sid)
            except NotFound:
                entry.final = True
                continue
            except Exception as e:  # noqa: BLE001 - a damaged record: its message stays as it is
                log.warning("session %s: status not edited: %s", sid, getattr(e, "message", e))
                continue
            text = status_text(s, entry.tool)
            if text == self.shown.get(sid):
                if is_final(s) and not entry.final:
                    entry.final = True
                    self._save()
                continue
            self.shown[sid] = text
            self.last_edit[sid] = now
            self.edits += 1
            key = f"{status_key(sid)}{EDIT_MARK}{self.edits}:{time.time_ns()}"
            self.newest[sid] = key
            self.enqueue(Item(key, text, entry.channel, status_of=sid, edit_of=entry.message_id, final=is_final(s)))

    def current(self, item: Item) -> bool:
        """An edit still worth making: no newer edit of the same message was enqueued since."""
        return self.newest.get(item.status_of or "") == item.key

    def edited(self, item: Item, ok: bool) -> None:
        """An edit's outcome: a shown final state is remembered; a failed edit is redone by the next flush."""
        sid = item.status_of or ""
        entry = self.entries.get(sid)
        if entry is None:
            return
        if not ok:
            self.failures[sid] = self.failures.get(sid, 0) + 1
            if self.failures[sid] >= MAX_FAILED_EDITS:
                # Deleted by the user, or a gateway that cannot edit: leave it, and send the news as new messages.
                log.warning("session %s: its status message could not be edited %d times; its news goes out as "
                            "new messages", sid, MAX_FAILED_EDITS)  # fmt: skip
                entry.final = True
                entry.message_id = ""
                self._save()
                return
            with contextlib.suppress(KeyError):
                del self.shown[sid]
            self.dirty.add(sid)
            return
        self.failures.pop(sid, None)
        if item.final and not entry.final:
            entry.final = True
            self._save()
