"""The notifier: follows every session's records in the journal and turns them into notifications.

``clawunits notifier`` runs as the user service ``clawunits-notifier.service``. Sessions do not depend on it:
it only reads the journal and the store. Stopped, it misses nothing; started again, it continues from its
journal cursor and delivers what happened meanwhile.

Exactly once: every notification gets a deterministic key (the journal cursor of the record that caused it,
or ``<session>:end`` for a session's end, ``<session>:end:<n>`` after its n-th recovery) and goes through a
durable outbox (``notifier/outbox.jsonl``): ``add`` is written before the journal cursor moves past its
record, ``sent`` right after delivery. After a crash, records after the saved cursor are read again and their
notifications deduplicated by key; added but unsent ones are sent. Only a crash in the instant between
delivery and writing ``sent`` can repeat one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clawunits import records as R
from clawunits.notifier import messages
from clawunits.notifier.channels import parse_channel, route
from clawunits.notifier.openclaw import OpenClaw
from clawunits.records import GapDetector, Joiner, parse_line, utc_now_iso
from clawunits.service.api import Service
from clawunits.service.foreground import Foreground, View, cursor_seqnum
from clawunits.state.models import EndCause, SessionRecord, Status, parse_ts
from clawunits.state.naming import ID_ALPHABET, ID_LENGTH, UNIT_PREFIX
from clawunits.state.store import ensure_private_dir, write_atomically
from clawunits.systemd.journal import JOURNALCTL

log = logging.getLogger(__name__)

FG_COALESCE_SEC = 0.5
WAKE_DEBOUNCE_SEC = 5.0
REMINDER_AFTER_SEC = 600.0
REMINDER_CHECK_SEC = 60.0
DEATH_CHECK_SEC = 5.0
# A launch writes the record, then starts the unit (its start job may take up to 10 s).
CURSOR_SAVE_SEC = 0.5
FOLLOW_RESTART_SEC = 1.0
OUTBOX_COMPACT_BYTES = 4 * 1024 * 1024
READ_LIMIT = 4 * 1024 * 1024
WAKE_QUEUE = "wake"


@dataclass
class Item:
    """One notification in the outbox: a chat message (``channel`` set) or a wake event."""

    key: str
    text: str
    channel: str | None = None

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
                self.pending[entry["add"]] = Item(entry["add"], entry.get("text", ""), entry.get("channel"))
            elif "sent" in entry:
                self.sent[entry["sent"]] = None
                self.pending.pop(entry["sent"], None)
        if self.path.stat().st_size > OUTBOX_COMPACT_BYTES:
            self._compact()

    def _compact(self) -> None:
        keep = [{"sent": k} for k in list(self.sent)[-20_000:]]
        keep += [{"add": i.key, "text": i.text, "channel": i.channel} for i in self.pending.values()]
        write_atomically(self.path, "".join(json.dumps(e) + "\n" for e in keep).encode())

    def known(self, key: str) -> bool:
        return key in self.sent or key in self.pending

    def add(self, item: Item) -> bool:
        """Record a notification to send; False if it was recorded before (a record read again)."""
        if self.known(item.key):
            return False
        self.pending[item.key] = item
        self._write({"add": item.key, "text": item.text, "channel": item.channel})
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


@dataclass
class FgBuffer:
    texts: list[str] = field(default_factory=list)
    first_cursor: str = ""
    last_cursor: str = ""
    due: float = 0.0
    # The journal cursor before the first text: until the buffer is in the outbox, a restart reads from here.
    resume_cursor: str | None = None


@dataclass
class PendingWake:
    key: str
    text: str
    due: float


class Notifier:
    """Follows the journal, decides notifications, delivers them once."""

    def __init__(self, service: Service, openclaw: OpenClaw | None = None) -> None:
        self.svc = service
        self.store = service.store
        self.settings = service.settings
        self.openclaw = openclaw or OpenClaw(self.settings.openclawPath)
        self.dir = ensure_private_dir(self.store.root / "notifier")
        self.outbox = Outbox(self.dir / "outbox.jsonl")
        self.foreground = Foreground(self.store)
        self.queues: dict[str, asyncio.Queue[Item]] = {}
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.streams: dict[str, tuple[Joiner, GapDetector]] = {}
        self.buffers: dict[tuple[str, str], FgBuffer] = {}
        self.wakes: dict[str, PendingWake] = {}
        self.last_wake_at: dict[str, float] = {}
        self.last_question: dict[str, bool] = {}
        self.cursor: str | None = _read(self.dir / "cursor")
        self.cursor_dirty = False
        self.since = _read(self.dir / "since") or self._first_start()

    def _first_start(self) -> str:
        now = utc_now_iso()
        write_atomically(self.dir / "since", now.encode())
        return now

    # -- main loop -------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        for item in list(self.outbox.pending.values()):
            self._enqueue(item)
        tasks = [
            asyncio.create_task(self._follow()),
            asyncio.create_task(self._tick()),
            asyncio.create_task(self._periodic()),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._flush_buffers(force=True)
            self._save_cursor()
            await self._drain(timeout=10.0)
            self.outbox.close()

    async def _follow(self) -> None:
        """Follow the journal for the daemon's life: should ``journalctl`` end (killed, out of memory, a bad
        line), start it again after the last entry read, so the notifier never sits deaf but alive."""
        while True:
            try:
                await self._follow_journal()
                log.warning("journalctl ended; following again after the last entry read")
            except Exception:  # logged with traceback; following goes on
                log.exception("following the journal failed; following again after the last entry read")
            await asyncio.sleep(FOLLOW_RESTART_SEC)

    async def _follow_journal(self) -> None:
        """``journalctl -f`` over the user's stdout entries; session records are picked by identifier."""
        argv = [
            JOURNALCTL, "-f", "-q", "-a", "--no-pager", "-o", "json",
            "--output-fields=MESSAGE,SYSLOG_IDENTIFIER", f"_UID={os.getuid()}", "_TRANSPORT=stdout",
        ]  # fmt: skip
        argv += [f"--after-cursor={self.cursor}"] if self.cursor else [f"--since={_journal_time(self.since)}"]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, limit=READ_LIMIT
        )
        assert proc.stdout is not None
        try:
            while line := await proc.stdout.readline():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                self._on_entry(entry)
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()

    def _on_entry(self, entry: dict[str, Any]) -> None:
        ident = str(entry.get("SYSLOG_IDENTIFIER") or "")
        cursor = str(entry.get("__CURSOR") or "")
        session_id = _session_of(ident)
        if session_id is not None:
            joiner, gaps = self.streams.setdefault(ident, (Joiner(), GapDetector()))
            rec = joiner.feed(parse_line(_message(entry), cursor))
            if rec is not None:
                gap = gaps.check(rec)
                if gap is not None:
                    log.warning("session %s: %s record(s) lost in the journal", session_id, gap.get("missing"))
                try:
                    self._on_record(session_id, rec)
                except Exception:  # one bad record must not stop the notifier (logged with traceback)
                    log.exception("session %s: could not handle a %s record", session_id, rec.type)
        if cursor:
            self.cursor, self.cursor_dirty = cursor, True

    # -- records to notifications ----------------------------------------------------------------------

    def _on_record(self, sid: str, rec: R.Record) -> None:
        handler = self._handlers().get(rec.type)
        if handler is None:
            return
        try:
            session = self.store.load(sid)
        except Exception:  # noqa: BLE001 - a record of a session gone from the store: nothing to say
            return
        handler(session, rec)

    def _handlers(self) -> dict[str, Callable[[SessionRecord, R.Record], None]]:
        return {
            R.STARTED: self._on_started,
            R.TEXT: self._on_text,
            R.TOOL_USE: self._on_tool_use,
            R.MESSAGE_RECEIVED: self._on_message,
            R.PERMISSION_REQUEST: self._on_permission,
            R.PLAN: self._on_plan,
            R.WAITING: self._on_waiting,
            R.RECOVERED: self._on_recovered,
            R.EXIT: self._on_exit,
        }

    def _on_started(self, s: SessionRecord, rec: R.Record) -> None:
        self._notify(s, f"{rec.cursor}:launched", messages.launched(s))

    def _on_recovered(self, s: SessionRecord, rec: R.Record) -> None:
        self._notify(s, f"{rec.cursor}:recovered", messages.recovered(s))

    def _on_message(self, s: SessionRecord, rec: R.Record) -> None:
        self._notify(s, f"{rec.cursor}:responded", messages.responded(s, str(rec.get("text", ""))))

    def _on_permission(self, s: SessionRecord, rec: R.Record) -> None:
        text = messages.permission_asks(
            s, str(rec.get("tool")), str(rec.get("summary") or ""), str(rec.get("requestId"))
        )
        self._notify(s, f"{rec.cursor}:asks", text)
        self._wake(s, f"{rec.cursor}:wake", messages.wake_waiting(s, text))
        self._to_foreground(s, rec, messages.fg_waiting(s))

    def _on_plan(self, s: SessionRecord, rec: R.Record) -> None:
        plan, version = str(rec.get("plan") or ""), int(rec.get("version") or 0)
        self._notify(s, f"{rec.cursor}:plan", messages.plan_ready(s, plan, version))
        self._wake(s, f"{rec.cursor}:wake", messages.wake_plan(s, plan, version))
        self._to_foreground(s, rec, messages.fg_waiting(s))

    def _on_waiting(self, s: SessionRecord, rec: R.Record) -> None:
        question = bool(rec.get("question"))
        self.last_question[s.id] = question
        preview = s.result_preview or str(rec.get("text") or "")
        if question:
            asked = rec.get("asked") or []
            text = "\n".join(str(q) for q in asked) if asked else preview
            self._notify(s, f"{rec.cursor}:asks", messages.asks(s, text))
            self._wake(s, f"{rec.cursor}:wake", messages.wake_waiting(s, text))
            self._to_foreground(s, rec, messages.fg_waiting(s))
        else:
            self._notify(s, f"{rec.cursor}:completed", messages.completed(s, preview, s.cost_usd))
            self._wake(s, f"{rec.cursor}:wake", messages.wake_completed(s, preview))
            self._to_foreground(s, rec, messages.fg_completed(s))

    def _on_exit(self, s: SessionRecord, rec: R.Record) -> None:
        status, cause = rec.get("status"), rec.get("cause")
        reason = str(rec.get("reason") or s.reason or "")
        cost = float(rec.get("costUsd") or s.cost_usd)
        key = _end_key(s)
        # An interrupted session (status "interrupted") is neither killed nor failed: `recover` resumes it, and
        # its resumption is what gets announced.
        if status == Status.KILLED.value:
            self._notify(s, key, messages.killed(s))
            self._to_foreground(s, rec, messages.fg_killed(s))
        elif status == Status.FAILED.value and cause == "budget":
            self._notify(s, key, messages.budget_exhausted(s, reason, cost))
            self._to_foreground(s, rec, messages.fg_limit(s))
        elif status == Status.FAILED.value:
            self._notify(s, key, messages.failed(s, reason))
            self._to_foreground(s, rec, messages.fg_failed(s, reason))
        elif cause == "completed" and not s.multi_turn:
            preview = s.result_preview or ""
            self._notify(s, key, messages.completed(s, preview, cost))
            self._wake(s, f"{rec.cursor}:wake", messages.wake_completed(s, preview))
            self._to_foreground(s, rec, messages.fg_completed(s))
        elif cause == "idle-timeout" and self.last_question.get(s.id):
            # It waited for an answer that never came; the idle timeout closed it.
            self._notify(s, key, messages.completed(s, f"(closed: {reason})", cost))
        self.streams.pop(s.unit.removesuffix(".service"), None)

    def _on_text(self, s: SessionRecord, rec: R.Record) -> None:
        """Text for foreground channels is coalesced: sent 500 ms after the last block."""
        for channel in self._fg_views(s, rec):
            # self.cursor is still the entry before this record's (it moves once the record is handled).
            buf = self.buffers.setdefault(
                (s.id, channel), FgBuffer(first_cursor=rec.cursor or "", resume_cursor=self.cursor)
            )
            buf.texts.append(str(rec.get("text", "")))
            buf.last_cursor = rec.cursor or buf.last_cursor
            buf.due = time.monotonic() + FG_COALESCE_SEC

    def _on_tool_use(self, s: SessionRecord, rec: R.Record) -> None:
        text = messages.fg_tool(str(rec.get("tool", "?")), str(rec.get("summary") or ""))
        self._to_foreground(s, rec, text)

    # -- foreground streaming --------------------------------------------------------------------------

    def _fg_views(self, s: SessionRecord, rec: R.Record) -> dict[str, View]:
        """Foreground channels of the session that have not seen this record yet."""
        here = cursor_seqnum(rec.cursor)
        return {
            ch: v for ch, v in self.foreground.channels_of(s.id).items() if cursor_seqnum(v.seen) < here or here < 0
        }

    def _to_foreground(self, s: SessionRecord, rec: R.Record, text: str) -> None:
        for channel in self._fg_views(s, rec):
            self._flush_buffer((s.id, channel))
            if self.outbox.add(Item(f"{rec.cursor}:fg:{channel}", text, channel)):
                self._enqueue(self.outbox.pending[f"{rec.cursor}:fg:{channel}"])
            if rec.cursor:
                self.foreground.mark_seen(s.id, channel, rec.cursor)

    def _flush_buffers(self, force: bool = False) -> None:
        now = time.monotonic()
        for key, buf in list(self.buffers.items()):
            if force or buf.due <= now:
                self._flush_buffer(key)

    def _flush_buffer(self, key: tuple[str, str]) -> None:
        buf = self.buffers.pop(key, None)
        if buf is None or not buf.texts:
            return
        sid, channel = key
        item = Item(f"{buf.first_cursor}:fgtext:{channel}", "\n".join(buf.texts), channel)
        if self.outbox.add(item):
            self._enqueue(item)
        if buf.last_cursor:
            self.foreground.mark_seen(sid, channel, buf.last_cursor)

    # -- level 1 and wake events -----------------------------------------------------------------------

    def _notify(self, s: SessionRecord, key: str, text: str) -> None:
        r = route(s.origin_channel, s.launch_dir, self.settings.agentChannels, self.settings.fallbackChannel)
        if r.channel is None:
            if not self.outbox.known(key):
                log.warning("session %s [%s]: notification not routed (%s): %s", s.name, s.id, r.why, text[:80])
                self.outbox.mark_sent(key, ok=False)
            return
        item = Item(key, text, str(r.channel))
        if self.outbox.add(item):
            self._enqueue(item)

    def _wake(self, s: SessionRecord, key: str, text: str) -> None:
        """Debounced per session: at most one wake each 5 s, carrying the newest text."""
        if self.outbox.known(key):
            return
        previous = self.wakes.get(s.id)
        if previous is not None:
            # Superseded by a newer state of the same session before it went out.
            self.outbox.mark_sent(previous.key, superseded=True)
        due = max(time.monotonic(), self.last_wake_at.get(s.id, 0.0) + WAKE_DEBOUNCE_SEC)
        self.wakes[s.id] = PendingWake(key, text, due)
        self.outbox.add(Item(key, text))

    def _release_wakes(self) -> None:
        now = time.monotonic()
        for sid, wake in list(self.wakes.items()):
            if wake.due <= now:
                del self.wakes[sid]
                self.last_wake_at[sid] = now
                item = self.outbox.pending.get(wake.key)
                if item is not None:
                    self._enqueue(item)

    # -- delivery --------------------------------------------------------------------------------------

    def _enqueue(self, item: Item) -> None:
        """Per-channel FIFO: messages to one chat keep their order; a slow chat does not hold up others."""
        name = item.queue
        if name not in self.queues:
            self.queues[name] = asyncio.Queue()
            self.workers[name] = asyncio.create_task(self._deliver(name, self.queues[name]))
        self.queues[name].put_nowait(item)

    async def _deliver(self, name: str, queue: asyncio.Queue[Item]) -> None:
        while True:
            item = await queue.get()
            try:
                if item.key not in self.outbox.pending:
                    continue  # already sent (queued twice) or superseded
                if item.channel is None:
                    ok = await self.openclaw.system_event(item.text)
                else:
                    channel = parse_channel(item.channel)
                    ok = channel is not None and await self.openclaw.send(channel, item.text)
                self.outbox.mark_sent(item.key, ok)
                if not ok:
                    log.error("giving up on %s to %s after retries", item.key, name)
            finally:
                queue.task_done()

    async def _drain(self, timeout: float) -> None:
        with_items = [q.join() for q in self.queues.values()]
        if with_items:
            try:
                await asyncio.wait_for(asyncio.gather(*with_items), timeout)
            except TimeoutError:
                log.warning("stopping with undelivered notifications; they go out on the next start")
        for task in self.workers.values():
            task.cancel()

    # -- timers ----------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        last_save = time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            self._flush_buffers()
            self._release_wakes()
            if self.cursor_dirty and time.monotonic() - last_save >= CURSOR_SAVE_SEC:
                self._save_cursor()
                last_save = time.monotonic()

    def _save_cursor(self) -> None:
        # Only once everything its records produced is in the outbox: it is written synchronously above,
        # except foreground text still being coalesced in memory, which holds the cursor back before it.
        if not (self.cursor_dirty and self.cursor):
            return
        held = [buf.resume_cursor for buf in self.buffers.values()]
        if None in held:
            return  # nothing before that text to resume from yet: keep the saved position
        cursor = min(held, key=cursor_seqnum) if held else self.cursor
        write_atomically(self.dir / "cursor", cursor.encode())
        self.cursor_dirty = bool(held)  # saved again once the buffers are flushed

    async def _periodic(self) -> None:
        """Checks that need systemd and the store, one at a time (the bus connection is not thread-safe)."""
        last_reminder = time.monotonic()
        while True:
            await asyncio.sleep(DEATH_CHECK_SEC)
            try:
                records = await asyncio.to_thread(self.svc.sessions)
            except Exception:  # the user manager may be briefly unreachable (logged)
                log.exception("could not check sessions")
                continue
            self._report_deaths(records)
            if time.monotonic() - last_reminder >= REMINDER_CHECK_SEC:
                last_reminder = time.monotonic()
                self._remind(records)

    def _report_deaths(self, records: list[SessionRecord]) -> None:
        """Sessions whose unit died without an exit record (OOM, SIGKILL) still get their ❌."""
        for s in records:
            if (
                s.end_cause in UNRECORDED_ENDS
                and (s.completed_at or "") >= self.since
                and not self.outbox.known(_end_key(s))
            ):
                self._notify(s, _end_key(s), messages.failed(s, s.reason or "the session's process died"))
                self._to_foreground_now(s, messages.fg_failed(s, s.reason or ""))

    def _to_foreground_now(self, s: SessionRecord, text: str) -> None:
        for channel in self.foreground.channels_of(s.id):
            item = Item(f"{_end_key(s)}:fg:{channel}", text, channel)
            if self.outbox.add(item):
                self._enqueue(item)

    def _remind(self, records: list[SessionRecord]) -> None:
        """Once per session: it has run for 10 minutes and nobody has it in the foreground."""
        state = self.foreground.load()
        for s in records:
            if s.status is not Status.RUNNING or self.foreground.channels_of(s.id, state):
                continue
            started = parse_ts(s.started_at or s.created_at)
            if (datetime.now(UTC) - started).total_seconds() >= REMINDER_AFTER_SEC:
                self._notify(s, f"{s.id}:reminder", messages.reminder(s))


# End causes the store gets from systemd, not from an `exit` record the notifier would have seen.
UNRECORDED_ENDS = frozenset({EndCause.LOST, EndCause.OOM})


def _end_key(s: SessionRecord) -> str:
    """The key of a session's end notification: one per runner life (a recovered session ends again)."""
    return f"{s.id}:end" if not s.recoveries else f"{s.id}:end:{s.recoveries}"


def _session_of(ident: str) -> str | None:
    """The session id in a unit's syslog identifier ``clawunits-<name>-<id>``; None for anything else."""
    if not ident.startswith(UNIT_PREFIX):
        return None
    sid = ident.rsplit("-", 1)[-1]
    return sid if len(sid) == ID_LENGTH and all(c in ID_ALPHABET for c in sid) else None


def _message(entry: dict[str, Any]) -> str:
    msg = entry.get("MESSAGE", "")
    if isinstance(msg, list):
        return bytes(int(b) for b in msg).decode(errors="replace")
    return "" if msg is None else str(msg)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _journal_time(iso: str) -> str:
    """``2026-11-22T00:27:10.123Z`` as journalctl's ``--since`` wants it (local time)."""
    return parse_ts(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
