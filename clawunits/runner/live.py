"""The live session: what the runner's parts share (record, channels, the turn in flight, the open request),
and what they all do with it: update the store record, wait unless stopped, interrupt a turn."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from claude_agent_sdk import ClaudeSDKClient, ResultMessage

from clawunits import records as R
from clawunits.records import RecordWriter, shorten
from clawunits.state.inbox import Inbox
from clawunits.state.models import EndCause, SessionRecord, Status
from clawunits.state.store import Store

T = TypeVar("T")

INTERRUPT_ATTEMPTS = 5
INTERRUPT_WAIT_SEC = 2.0
# Why a turn was cut short: a message with --interrupt, the watchdog's interrupt, the watchdog's CLI restart.
BY_MESSAGE, WATCHDOG, RESTART = "message", "watchdog", "restart"
# An interrupted turn ends with one of these: drained, not a failure.
ABORTED = frozenset({"aborted_streaming", "aborted_tools"})


class Stopped(Exception):
    """SIGTERM (or SIGINT/SIGHUP) arrived: end the session now."""


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str
    cause: EndCause


@dataclass
class Turn:
    """One turn in flight: its result arrives in ``done``; ``interrupted`` says why it may end early."""

    done: asyncio.Future[ResultMessage]
    last_text: str = ""
    asked: list[str] = field(default_factory=list)
    interrupt_reason: str | None = None


@dataclass
class PendingPermission:
    """An open permission request, or (``plan_version`` set) a plan waiting for approval."""

    request_id: str
    since_ns: int
    answer: asyncio.Future[str]
    plan_version: int | None = None


@dataclass(eq=False)
class LiveSession:
    """One session's state while its runner runs, shared by the turn loop, the mail watcher, the permission
    callback, the watchdog and the message handler."""

    record: SessionRecord
    store: Store
    out: RecordWriter
    inbox: Inbox
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    client: ClaudeSDKClient | None = None
    claude_session_id: str | None = field(init=False, default=None)
    turn: Turn | None = None
    permission: PendingPermission | None = None
    open_tools: set[str] = field(default_factory=set)
    # The plan text Claude wrote in each ExitPlanMode call, should the CLI not pass it to the callback.
    plan_inputs: dict[str, str] = field(default_factory=dict)
    last_message_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.claude_session_id = self.record.claude_session_id

    def update(self, change: Callable[[SessionRecord], SessionRecord | None]) -> SessionRecord | None:
        """Write to the session's record; a store failure is reported, never fatal to the session."""
        redact = self.out.redactor

        def redacted(r: SessionRecord) -> SessionRecord | None:
            new = change(r)
            if new is None or not redact.secrets:
                return new
            return new.with_changes(
                result_preview=redact.text(new.result_preview) if new.result_preview else new.result_preview,
                reason=redact.text(new.reason) if new.reason else new.reason,
            )

        try:
            self.record = self.store.update(self.record.id, redacted)
            return self.record
        except Exception as e:  # noqa: BLE001
            self.out.emit(R.ERROR, message=shorten(f"could not update the session record: {e}", 300))
            return None

    async def unless_stopped(self, work: Awaitable[T]) -> T:
        """Await ``work`` unless a stop signal comes first (then raise :class:`Stopped`)."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.create_task(self.stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise Stopped

    async def interrupt(self, turn: Turn, reason: str) -> bool:
        """Interrupt the turn and wait for its result; repeat when the interrupt landed too early."""
        turn.interrupt_reason = turn.interrupt_reason or reason
        for _ in range(INTERRUPT_ATTEMPTS):
            if turn.done.done() or self.client is None:
                return True
            with contextlib.suppress(Exception):
                await self.client.interrupt()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(turn.done), timeout=INTERRUPT_WAIT_SEC)
                return True
        return turn.done.done()


def aborted(result: ResultMessage) -> bool:
    """Did the turn end because it was interrupted?"""
    return result.terminal_reason in ABORTED or result.subtype == "error_during_execution"
