"""Deciding notifications: a session's records, and what systemd says of its end, become chat messages,
wake events and foreground lines, each with a deterministic key (see :mod:`clawunits.notifier.notifier`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from clawunits import records as R
from clawunits.errors import NotFound
from clawunits.notifier import messages
from clawunits.notifier.channels import route
from clawunits.notifier.deliver import Wakes
from clawunits.notifier.outbox import Item, Outbox
from clawunits.notifier.status import StatusBoard, policy_of
from clawunits.notifier.streaming import ForegroundStream
from clawunits.notify_policy import NotifyPolicy
from clawunits.state.config import Settings
from clawunits.state.models import EndCause, SessionRecord, Status, parse_ts
from clawunits.state.store import Store

log = logging.getLogger(__name__)

REMINDER_AFTER_SEC = 600.0
# End causes the store gets from systemd, not from an `exit` record the notifier would have seen.
UNRECORDED_ENDS = frozenset({EndCause.LOST, EndCause.OOM})
# What a notification is to the notify policies: what needs the user (🔔 📋), the end (✅ ❌ ⛔), or news the
# `status` and `quiet` policies hold back (↩️ launched and responded, ⚠️ resumed, ⏱️ reminder).
PING, END, NEWS = "ping", "end", "news"
# Records that change what a status message shows.
STATUS_RECORDS = frozenset({R.STARTED, R.TOOL_USE, R.MESSAGE_RECEIVED, R.PERMISSION_REQUEST, R.PLAN, R.WAITING,
                            R.RECOVERED, R.EXIT, R.LIMITED, R.RESUMED})  # fmt: skip


class Decider:
    """Turns records into notifications in the outbox (and hands them to delivery)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        outbox: Outbox,
        stream: ForegroundStream,
        wakes: Wakes,
        enqueue: Callable[[Item], None],
        since: str,
        board: StatusBoard | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.outbox = outbox
        self.stream = stream
        self.wakes = wakes
        self.enqueue = enqueue
        self.since = since  # the notifier's first start: ends before it are not reported
        self.board = board
        self.last_question: dict[str, bool] = {}
        self.damaged: set[str] = set()  # sessions whose damaged record file was already named in the log
        # The journal cursor before the record being handled (where a restart would read it again).
        self.before: str | None = None

    def on_record(self, sid: str, rec: R.Record, before: str | None) -> None:
        handler = self._handlers().get(rec.type)
        if handler is None:
            return
        try:
            session = self.store.load(sid)
        except NotFound:  # a record of a session gone from the store: nothing to say
            return
        except Exception as e:  # noqa: BLE001 - a damaged file: named once, then its records are skipped
            if sid not in self.damaged:
                self.damaged.add(sid)
                log.warning("skipping the records of session %s: %s", sid, getattr(e, "message", e))
            return
        self.before = before
        handler(session, rec)
        if rec.type in STATUS_RECORDS:
            tool = None
            if rec.type == R.TOOL_USE:
                summary = str(rec.get("summary") or "")
                tool = str(rec.get("tool", "?")) + (f" — {summary[:80]}" if summary else "")
            self._show_status(session, tool)

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
            R.LIMIT_WARNING: self._on_limit_warning,
            R.LIMITED: self._on_limited,
            R.RESUMED: self._on_resumed,
            R.EXIT: self._on_exit,
        }

    def _on_started(self, s: SessionRecord, rec: R.Record) -> None:
        self.notify(s, f"{rec.cursor}:launched", messages.launched(s), NEWS)

    def _on_recovered(self, s: SessionRecord, rec: R.Record) -> None:
        self.notify(s, f"{rec.cursor}:recovered", messages.recovered(s), NEWS)

    # Usage limits: chat messages only, no wake (like a recovery): nothing needs the agent, it goes on by itself.
    # News to the notify policies (the status message shows a parked session; `quiet` holds them back).
    def _on_limit_warning(self, s: SessionRecord, rec: R.Record) -> None:
        window, util, resets = str(rec.get("window") or "?"), rec.get("utilization"), rec.get("resetsAt")
        text = messages.limit_warning(s, window, float(util) if util is not None else None, resets and str(resets))
        self.notify(s, f"{rec.cursor}:limit-warning", text, NEWS)

    def _on_limited(self, s: SessionRecord, rec: R.Record) -> None:
        window, resets = str(rec.get("window") or "?"), str(rec.get("resetsAt") or "")
        self.notify(s, f"{rec.cursor}:limited", messages.limited(s, window, resets), NEWS)

    def _on_resumed(self, s: SessionRecord, rec: R.Record) -> None:
        self.notify(s, f"{rec.cursor}:resumed", messages.limit_resumed(s), NEWS)

    def _on_message(self, s: SessionRecord, rec: R.Record) -> None:
        self.notify(s, f"{rec.cursor}:responded", messages.responded(s, str(rec.get("text", ""))), NEWS)

    def _on_permission(self, s: SessionRecord, rec: R.Record) -> None:
        text = messages.permission_asks(
            s, str(rec.get("tool")), str(rec.get("summary") or ""), str(rec.get("requestId"))
        )
        self.notify(s, f"{rec.cursor}:asks", text, PING)
        self._wake(s, f"{rec.cursor}:wake", messages.wake_waiting(s, text))
        self.stream.event(s, rec, messages.fg_waiting(s))

    def _on_plan(self, s: SessionRecord, rec: R.Record) -> None:
        plan, version = str(rec.get("plan") or ""), int(rec.get("version") or 0)
        self.notify(s, f"{rec.cursor}:plan", messages.plan_ready(s, plan, version), PING)
        self._wake(s, f"{rec.cursor}:wake", messages.wake_plan(s, plan, version))
        self.stream.event(s, rec, messages.fg_waiting(s))

    def _on_waiting(self, s: SessionRecord, rec: R.Record) -> None:
        question = bool(rec.get("question"))
        self.last_question[s.id] = question
        # What this turn said, from its own record: the store's result_preview may already be a later turn's
        # (a notifier catching up). Runners before the record had `preview` leave only the store's.
        preview = str(rec.get("preview") or "") or s.result_preview or str(rec.get("text") or "")
        if question:
            asked = rec.get("asked") or []
            text = "\n".join(str(q) for q in asked) if asked else preview
            self.notify(s, f"{rec.cursor}:asks", messages.asks(s, text), PING)
            self._wake(s, f"{rec.cursor}:wake", messages.wake_waiting(s, text))
            self.stream.event(s, rec, messages.fg_waiting(s))
        else:
            self.notify(s, f"{rec.cursor}:completed", messages.completed(s, preview, s.cost_usd), END)
            self._wake(s, f"{rec.cursor}:wake", messages.wake_completed(s, preview))
            self.stream.event(s, rec, messages.fg_completed(s))

    def _on_exit(self, s: SessionRecord, rec: R.Record) -> None:
        status, cause = rec.get("status"), rec.get("cause")
        reason = str(rec.get("reason") or s.reason or "")
        cost = float(rec.get("costUsd") or s.cost_usd)
        key = end_key(s)
        # An interrupted session (status "interrupted") is neither killed nor failed: `recover` resumes it, and
        # its resumption is what gets announced.
        if status == Status.KILLED.value:
            self.notify(s, key, messages.killed(s))
            self.stream.event(s, rec, messages.fg_killed(s))
        elif status == Status.FAILED.value and cause == "budget":
            self.notify(s, key, messages.budget_exhausted(s, reason, cost))
            self.stream.event(s, rec, messages.fg_limit(s))
        elif status == Status.FAILED.value:
            self.notify(s, key, messages.failed(s, reason))
            self.stream.event(s, rec, messages.fg_failed(s, reason))
        elif cause == "completed" and not s.multi_turn:
            preview = s.result_preview or ""
            self.notify(s, key, messages.completed(s, preview, cost))
            self._wake(s, f"{rec.cursor}:wake", messages.wake_completed(s, preview))
            self.stream.event(s, rec, messages.fg_completed(s))
        elif cause == "idle-timeout" and self.last_question.get(s.id):
            # It waited for an answer that never came; the idle timeout closed it.
            self.notify(s, key, messages.completed(s, f"(closed: {reason})", cost))

    def _on_text(self, s: SessionRecord, rec: R.Record) -> None:
        """Text for foreground channels is coalesced: sent 500 ms after the last block."""
        self.stream.text(s, rec, self.before)

    def _on_tool_use(self, s: SessionRecord, rec: R.Record) -> None:
        text = messages.fg_tool(str(rec.get("tool", "?")), str(rec.get("summary") or ""))
        self.stream.event(s, rec, text)

    def _wake(self, s: SessionRecord, key: str, text: str) -> None:
        """A wake event for the agent session the session wakes, if any (see docs/NOTIFICATIONS.md)."""
        if s.wakes_agent:
            self.wakes.add(s.id, key, text, s.wake_agent_id, s.wake_session_key)

    def notify(self, s: SessionRecord, key: str, text: str, kind: str = END) -> None:
        """A level-1 notification to the session's chat (as routed), or logged when it has none; news the
        session's notify policy holds back is recorded as such (a record read again stays held back)."""
        r = route(s.origin_channel, s.launch_dir, self.settings.agentChannels, self.settings.fallbackChannel)
        if r.channel is None:
            if not self.outbox.known(key):
                log.warning("session %s [%s]: notification not routed (%s): %s", s.name, s.id, r.why, text[:80])
                self.outbox.mark_sent(key, ok=False)
            return
        if kind == NEWS and self._holds_news(s, str(r.channel)):
            if not self.outbox.known(key):
                self.outbox.mark_sent(key, superseded=True)
            return
        item = Item(key, text, str(r.channel))
        if self.outbox.add(item):
            self.enqueue(item)

    def _holds_news(self, s: SessionRecord, channel: str) -> bool:
        """``quiet`` holds back news; so does ``status`` where the status message shows it (a channel that
        cannot edit gets the news as new messages instead: its fallback)."""
        policy = policy_of(s, self.settings, channel)
        if policy is NotifyPolicy.QUIET:
            return True
        return policy is NotifyPolicy.STATUS and self.board is not None and self.board.editable(s.id, channel)

    def _show_status(self, s: SessionRecord, tool: str | None) -> None:
        """Under ``status``, on a channel that can edit: the session's status message, sent or edited."""
        if self.board is None:
            return
        r = route(s.origin_channel, s.launch_dir, self.settings.agentChannels, self.settings.fallbackChannel)
        if r.channel is None:
            return
        channel = str(r.channel)
        if policy_of(s, self.settings, channel) is NotifyPolicy.STATUS and self.board.editable(s.id, channel):
            self.board.touch(s, channel, tool)

    # -- what systemd says (the notifier's periodic checks) ---------------------------------------------

    def report_deaths(self, records: list[SessionRecord]) -> None:
        """Sessions whose unit died without an exit record (OOM, SIGKILL) still get their ❌."""
        for s in records:
            if (
                s.end_cause in UNRECORDED_ENDS
                and (s.completed_at or "") >= self.since
                and not self.outbox.known(end_key(s))
            ):
                self.notify(s, end_key(s), messages.failed(s, s.reason or "the session's process died"))
                self.stream.event_now(s, end_key(s), messages.fg_failed(s, s.reason or ""))

    def remind(self, records: list[SessionRecord]) -> None:
        """Once per session: it has run for 10 minutes and nobody has it in the foreground."""
        foreground = self.stream.foreground
        state = foreground.load()
        for s in records:
            if s.status is not Status.RUNNING or foreground.channels_of(s.id, state):
                continue
            started = parse_ts(s.started_at or s.created_at)
            if (datetime.now(UTC) - started).total_seconds() >= REMINDER_AFTER_SEC:
                self.notify(s, f"{s.id}:reminder", messages.reminder(s), NEWS)


def end_key(s: SessionRecord) -> str:
    """The key of a session's end notification: one per runner life (a recovered session ends again)."""
    return f"{s.id}:end" if not s.recoveries else f"{s.id}:end:{s.recoveries}"
