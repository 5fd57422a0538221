"""The runner's core: connect to Claude Code, run the conversation turn by turn, end with ``exit``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from claude_agent_sdk import ClaudeSDKClient, ResultMessage

from clawunits import records as R
from clawunits.records import RecordWriter, shorten
from clawunits.runner.events import Events
from clawunits.runner.live import RESTART, WATCHDOG, LiveSession, Outcome, Stopped, Turn, aborted
from clawunits.runner.mail import Mail
from clawunits.runner.options import build_options
from clawunits.runner.permissions import Permissions
from clawunits.runner.queueing import free_slot
from clawunits.runner.watchdog import Limits, watchdog
from clawunits.state.inbox import Inbox
from clawunits.state.models import EndCause, SessionRecord, Status, WaitingFor
from clawunits.state.store import Store
from clawunits.systemd.units import manager_stopping

CONTINUE_PROMPT = "Continue where you left off."
# After a failure, how long to wait for the SIGTERM that may have caused it; how long to ask the manager why.
STOP_GRACE_SEC = 0.5
STOP_ASK_SEC = 5.0


class Runner:
    """One session: connect, run turns, turn SDK messages into records, end with ``exit``."""

    def __init__(self, record: SessionRecord, store: Store, out: RecordWriter, inbox: Inbox) -> None:
        self.live = LiveSession(record, store, out, inbox)
        self.limits = Limits(self.live)
        self.events = Events(self.live)
        self.permissions = Permissions(self.live)
        self.mail = Mail(self.live, self.permissions)
        self.reader: asyncio.Task[None] | None = None

    async def run(self) -> Outcome:
        helpers = [
            asyncio.create_task(self.mail.watch()),
            asyncio.create_task(watchdog(self.live)),
            asyncio.create_task(self.limits.watch_memory()),
        ]
        live = self.live
        try:
            resume = live.claude_session_id or live.record.resume_claude_session_id
            await live.unless_stopped(self._connect(resume))
            if live.record.resumed_from_limit:
                self._announce_resumed()
            elif live.record.recoveries:
                self._announce_recovery()
            return await self._conversation(await self._opening())
        except Stopped:
            return await self._on_stop()
        except Exception as e:  # noqa: BLE001 - any SDK/CLI failure ends the session as failed
            # A shutdown sends SIGTERM to Claude Code too: its death may be noticed before our own signal.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.stop.wait(), timeout=STOP_GRACE_SEC)
            if live.stop.is_set():
                return await self._on_stop()
            return self._failure(e)
        finally:
            for task in helpers:
                task.cancel()
            await self._disconnect()

    async def _opening(self) -> list[str]:
        """The first turn's content: the prompt; for a session recovered mid-turn, the mail queued for it or
        "continue"; nothing for a session that was waiting for an answer (it waits again)."""
        record = self.live.record
        if not record.claude_session_id:
            # It never reached Claude (interrupted before `started`): it starts over with its prompt.
            return [record.prompt]
        if record.resumed_from_limit or (record.recoveries and record.waiting_for is not WaitingFor.QUESTION):
            return await self.mail.take(wait=False) or [CONTINUE_PROMPT]
        return []

    def _announce_resumed(self) -> None:
        r = self.live.record
        self.live.out.emit(
            R.RESUMED,
            window=r.limit_window,
            resumes=r.limit_resumes,
            limitedAt=r.limited_at,
            claudeSessionId=r.claude_session_id,
        )

    def _announce_recovery(self) -> None:
        r = self.live.record
        self.live.out.emit(
            R.RECOVERED,
            v=R.STREAM_VERSION,
            recoveries=r.recoveries,
            interruptedAt=r.interrupted_at,
            claudeSessionId=r.claude_session_id,
            waitingFor=r.waiting_for,
        )

    async def _on_stop(self) -> Outcome:
        """SIGTERM. ``clawunits kill`` records its verdict before stopping the unit; without one, a user manager
        that is shutting down interrupts the session (``clawunits recover`` resumes it), and anything else
        (``systemctl --user stop``) stopped it on purpose. Recorded at once: a shutdown may SIGKILL us soon.
        The runner's own reasons to stop (out of memory) and systemd's RuntimeMaxSec come first."""
        live = self.live
        limited = self.limits.limit_outcome()
        if limited is not None:
            return limited
        try:
            current = live.store.load(live.record.id)
        except Exception:  # noqa: BLE001 - the verdict below is written through update, which reports
            current = live.record
        if current.status.is_terminal:
            return Outcome(Status.KILLED, "stopped by SIGTERM", EndCause.KILLED)
        try:
            stopping = await asyncio.wait_for(asyncio.to_thread(manager_stopping), timeout=STOP_ASK_SEC)
        except TimeoutError:
            stopping = None
        if stopping is False:
            outcome = Outcome(Status.KILLED, "stopped by SIGTERM from outside clawunits", EndCause.KILLED)
        elif stopping:
            outcome = Outcome(Status.INTERRUPTED, "interrupted: the user manager shut down", EndCause.SHUTDOWN)
        else:
            why = "interrupted by SIGTERM (the user manager did not say why)"
            outcome = Outcome(Status.INTERRUPTED, why, EndCause.SHUTDOWN)
        live.update(lambda r: r.closed(outcome.status, outcome.reason, outcome.cause))
        return outcome

    async def _conversation(self, first: list[str]) -> Outcome:
        live = self.live
        content: list[str] | None = first or await self.mail.take()
        while True:
            if content is None:
                minutes = live.record.idle_timeout_minutes
                idle = Outcome(
                    Status.COMPLETED, f"idle-timeout: no activity for {minutes:g} minutes", EndCause.IDLE_TIMEOUT
                )
                if self._close(idle):
                    return idle
                content = await self.mail.take(wait=False)  # a message arrived just in time
            if not content:
                content = await self.mail.take()
                continue
            turn = await self._run_turn(content)
            result = turn.done.result()
            if turn.interrupt_reason and aborted(result):
                # The interrupted turn's result is drained here; it is not a failure.
                live.out.emit(R.INTERRUPTED, reason=turn.interrupt_reason)
                if turn.interrupt_reason == RESTART:
                    await self._disconnect()
                    await live.unless_stopped(self._connect(live.claude_session_id))
                content = await self.mail.take(wait=False)
                if not content and turn.interrupt_reason in (WATCHDOG, RESTART):
                    content = [CONTINUE_PROMPT]
                if content:
                    continue
            else:
                # A usage limit parks the session until its window resets (a timer resumes it).
                refusal = self.events.usage.refusal(result)
                if refusal is not None and self.limits.oom_outcome() is None:
                    return self.events.usage.park(*refusal)
                # A process of this turn ran the session out of memory: that ends it, whatever Claude made of it.
                fatal = self.limits.oom_outcome() or _fatal_outcome(result)
                if fatal is not None:
                    return fatal
                if not live.record.multi_turn:
                    return Outcome(Status.COMPLETED, "task finished", EndCause.COMPLETED)
            self.events.announce_waiting(turn)
            if live.record.status is Status.COMPLETED:
                # Its task is done: it holds no slot of maxSessions while it waits for follow-ups.
                await asyncio.to_thread(free_slot, live.store)
            content = await self.mail.take(wait=True)

    async def _run_turn(self, content: list[str]) -> Turn:
        live = self.live
        assert live.client is not None
        loop = asyncio.get_running_loop()
        live.turn = turn = Turn(done=loop.create_future())
        live.last_message_at = time.monotonic()
        live.update(lambda r: r.turn_started() if r.is_open else r)
        await live.client.query(_user_message(content) if len(content) > 1 else content[0])
        try:
            await live.unless_stopped(self._await_result(turn))
        finally:
            live.turn = None
        return turn

    async def _await_result(self, turn: Turn) -> None:
        reader = self.reader
        assert reader is not None
        waiting: set[asyncio.Future[Any]] = {turn.done, reader}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not turn.done.done():
            reader.result()  # re-raises the reader's error
            raise RuntimeError("Claude Code ended the stream before the turn finished")

    async def _connect(self, resume: str | None) -> None:
        record = self.live.record
        can_use_tool = None if record.permission_mode == "bypassPermissions" else self.permissions.can_use_tool
        client = ClaudeSDKClient(build_options(record, self.events.on_stderr, can_use_tool, resume))
        self.live.client = client
        await client.connect()
        self.reader = asyncio.create_task(self.events.read(client))

    async def _disconnect(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            self.reader = None
        if self.live.client is not None:
            with contextlib.suppress(Exception):
                await self.live.client.disconnect()
            self.live.client = None

    def _failure(self, e: Exception) -> Outcome:
        if (oom := self.limits.oom_outcome()) is not None:
            return oom  # Claude Code itself was the process the kernel killed
        message = shorten(f"{type(e).__name__}: {e}", 500)
        fields: dict[str, Any] = {"message": message}
        if self.events.stderr_tail:
            fields["stderr"] = list(self.events.stderr_tail)
        self.live.out.emit(R.ERROR, **fields)
        return Outcome(Status.FAILED, message, EndCause.CRASH)

    def _close(self, outcome: Outcome) -> bool:
        """Close the session for messages, unless one is waiting in the inbox (checked under the record's
        lock, which ``clawunits respond`` holds while it posts). Returns whether it closed."""
        closed = False

        def change(r: SessionRecord) -> SessionRecord | None:
            nonlocal closed
            if self.live.inbox.pending():
                return None
            closed = True
            return r.closed(outcome.status, outcome.reason, outcome.cause)

        self.live.update(change)
        return closed

    def finish(self, outcome: Outcome) -> Outcome:
        """Record the final state (unless ``clawunits kill`` already did) and print ``exit``."""
        final = self.live.update(lambda r: r.closed(outcome.status, outcome.reason, outcome.cause))
        if final is not None and final.status.is_terminal:
            # `clawunits kill` records its verdict before stopping the unit; the journal agrees with it.
            cause = outcome.cause if final.status is outcome.status else (final.end_cause or outcome.cause)
            outcome = Outcome(final.status, final.reason or outcome.reason, cause)
        self.live.out.emit(
            R.EXIT,
            status=outcome.status.value,
            reason=outcome.reason,
            cause=outcome.cause,
            costUsd=self.events.own_cost(),
        )
        return outcome


def _fatal_outcome(result: ResultMessage) -> Outcome | None:
    """A result that ends the session, or None when the conversation can go on."""
    if result.subtype == "success" and not result.is_error:
        return None
    detail = "; ".join(str(e) for e in (getattr(result, "errors", None) or [])) or str(result.result or "")
    if result.subtype == "error_max_budget_usd":
        return Outcome(Status.FAILED, f"budget exhausted: {shorten(detail, 200)}", EndCause.BUDGET)
    status = getattr(result, "api_error_status", None)
    if status:
        return Outcome(Status.FAILED, f"API error {status}: {shorten(detail, 300)}", EndCause.API_ERROR)
    return Outcome(Status.FAILED, f"{result.subtype}: {shorten(detail, 300)}", EndCause.ERROR)


def _user_message(texts: list[str]) -> AsyncIterator[dict[str, Any]]:
    """Several queued messages as one user turn, one text block each, in the order they were posted."""

    async def gen() -> AsyncIterator[dict[str, Any]]:
        yield {
            "type": "user",
            "message": {"role": "user", "content": [{"type": "text", "text": t} for t in texts]},
            "parent_tool_use_id": None,
        }

    return gen()
