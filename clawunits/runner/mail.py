"""The session's inbox: queued messages taken as the next turn, new mail routed to an open permission
request or turned into an interrupt, and which messages count as delivered after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import time

from clawunits import records as R
from clawunits.records import shorten, utc_now_iso
from clawunits.runner.live import BY_MESSAGE, LiveSession
from clawunits.runner.permissions import Permissions
from clawunits.state.inbox import Entry
from clawunits.systemd import journal

MAIL_POLL_SEC = 1.0


class Mail:
    """Takes messages from the inbox for the turn loop, and watches it for answers and interrupts."""

    def __init__(self, live: LiveSession, permissions: Permissions) -> None:
        self.live = live
        self.permissions = permissions
        # Set on SIGWINCH, which `clawunits respond` sends after posting.
        self.wake = asyncio.Event()
        self.new_messages = asyncio.Event()
        self.interrupted_for: set[str] = set()
        # asyncio keeps only weak references to tasks: hold the fire-and-forget ones until they finish.
        self.background: set[asyncio.Task[bool]] = set()

    async def take(self, wait: bool = True) -> list[str] | None:
        """Deliver every queued message as the next turn's content; None when the idle timeout expired."""
        live = self.live
        deadline = time.monotonic() + live.record.idle_timeout_minutes * 60
        while True:
            # Cleared before looking, so mail that arrives while we look still wakes the wait below.
            self.new_messages.clear()
            taken = [e for e in (live.inbox.take(entry) for entry in live.inbox.pending()) if e is not None]
            if taken:
                return self._delivered(taken)
            if not wait:
                return []
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            waiter = asyncio.create_task(self.new_messages.wait())
            try:
                await live.unless_stopped(asyncio.wait({waiter}, timeout=min(left, MAIL_POLL_SEC)))
            finally:
                waiter.cancel()

    def _delivered(self, taken: list[Entry]) -> list[str]:
        live = self.live
        for entry in taken:
            msg = entry.message
            # Recorded before it is sent: after a crash the journal decides what counts as delivered.
            live.out.emit(
                R.MESSAGE_RECEIVED,
                messageId=msg.id,
                text=shorten(msg.text, 200),
                interrupt=msg.interrupt,
                userInitiated=msg.user_initiated,
            )
        live.update(lambda r: r.with_changes(last_activity_at=utc_now_iso()))
        contents = [e.message.text for e in taken]
        for entry in taken:
            live.inbox.delivered(entry)
        return contents

    async def watch(self) -> None:
        """Route new mail: answers to an open permission request, interrupts; wake the turn loop."""
        live = self.live
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=MAIL_POLL_SEC)
            self.wake.clear()
            pending = live.inbox.pending()
            if not pending:
                continue
            if live.permission is not None:
                self.permissions.answer(pending)
                continue
            for entry in pending:
                if entry.message.interrupt and entry.message.id not in self.interrupted_for and live.turn is not None:
                    self.interrupted_for.add(entry.message.id)
                    self.background.add(task := asyncio.create_task(live.interrupt(live.turn, BY_MESSAGE)))
                    task.add_done_callback(self.background.discard)
            self.new_messages.set()


def delivered_ids(unit: str) -> set[str]:
    """Message ids this session's journal shows as delivered (``message_received``)."""
    try:
        batch = journal.read_after(unit)
    except Exception:  # noqa: BLE001 - without the journal, nothing counts as delivered: requeue
        return set()
    return {str(r.get("messageId")) for r in batch.records if r.type == R.MESSAGE_RECEIVED}
