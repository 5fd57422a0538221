"""The session runner: ``python -m clawunits.runner SESSION_ID`` is the ExecStart of every session unit.

It drives one Claude Code session through ``ClaudeSDKClient`` and prints one JSON record per line on
stdout, which journald keeps. It updates the session's store record as it goes (Claude session id, status,
cost) so listing sessions never has to read the journal.

Multi-turn: after each turn the runner prints ``waiting`` and takes the next messages from the session's
durable inbox (``clawunits respond`` posts there and wakes the runner with SIGWINCH, whose default action is
to do nothing, so an early signal cannot kill a runner that is still starting). The session ends after its
first turn when multi-turn is disabled, after ``idle_timeout_minutes`` without activity, on a fatal result
(budget, API error), or on SIGTERM (``clawunits kill``, ``systemctl --user stop``), which still prints ``exit``.
A SIGTERM nobody asked clawunits for while the user manager shuts down marks the session ``interrupted``;
``clawunits recover`` starts the runner again, which resumes the Claude session (``recovered`` record).

This is the only module that imports claude-agent-sdk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    PermissionResultAllow,
    PermissionResultDeny,
    PermissionUpdate,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from clawunits import plans
from clawunits import records as R
from clawunits.records import RecordWriter, Redactor, shorten, summarize_tool_input, summarize_tool_result, utc_now_iso
from clawunits.state.config import state_dir
from clawunits.state.inbox import Entry, Inbox, inbox_for
from clawunits.state.models import EndCause, SessionRecord, Status, WaitingFor
from clawunits.state.naming import new_id
from clawunits.state.store import Store
from clawunits.systemd.cgroups import cgroup_paths
from clawunits.systemd.limits import format_duration, format_size, oom_kill_counter, read_oom_kills
from clawunits.systemd.units import manager_stopping

T = TypeVar("T")

# The SDK's default 1 MB line limit kills the client on one large tool result; allow far more.
STREAM_BUFFER_BYTES = 64 * 1024 * 1024
STDERR_TAIL = 20
PREVIEW_CHARS = 500
MAIL_POLL_SEC = 1.0
OOM_POLL_SEC = 0.5
# The runner starts a little after its unit does.
RUNTIME_SLACK_SEC = 2.0
INTERRUPT_ATTEMPTS = 5
INTERRUPT_WAIT_SEC = 2.0
CONTINUE_PROMPT = "Continue where you left off."
# After a failure, how long to wait for the SIGTERM that may have caused it; how long to ask the manager why.
STOP_GRACE_SEC = 0.5
STOP_ASK_SEC = 5.0
# Why a turn was cut short: a message with --interrupt, the watchdog's interrupt, the watchdog's CLI restart.
BY_MESSAGE, WATCHDOG, RESTART = "message", "watchdog", "restart"
ASK_TOOL = "AskUserQuestion"
ASK_INSTEAD = (
    "The user answers questions between turns, not through this tool. End your turn by asking the question "
    "in plain text; the answer will come as the user's next message."
)
PLAN_TOOL = "ExitPlanMode"
# A plan's text comes from the plan file Claude Code injects into ExitPlanMode's input; kept whole (the
# record is split into parts past 32 KiB) up to this size.
PLAN_CHARS = 200_000
# An unanswered plan: Claude is told to stop and wait rather than to plan again (which would only time out
# again); the user's later answer arrives as the next turn.
PLAN_TIMEOUT = (
    "The user did not answer this plan within {timeout:g} seconds. Do not call ExitPlanMode again now: end your "
    "turn by saying the plan is waiting for approval. The user's answer will come as the next message."
)
# An interrupted turn ends with one of these: drained, not a failure.
ABORTED = frozenset({"aborted_streaming", "aborted_tools"})
ALLOW_WORDS = frozenset({"allow", "yes", "y", "approve", "ok", "allowed"})
DENY_WORDS = frozenset({"deny", "no", "n", "reject", "denied"})


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


def build_options(record: SessionRecord, stderr: Any, can_use_tool: Any, resume: str | None) -> ClaudeAgentOptions:
    """SDK options for this session: Claude Code's own system prompt and the user's settings."""
    system_prompt: dict[str, str] = {"type": "preset", "preset": "claude_code"}
    if record.system_prompt:
        system_prompt["append"] = record.system_prompt
    remaining = max(0.0, record.budget_usd - record.prior_cost_usd - record.cost_usd)
    return ClaudeAgentOptions(
        cwd=record.workdir,
        model=record.model,
        permission_mode=record.permission_mode,  # type: ignore[arg-type]
        allowed_tools=list(record.allowed_tools),
        # The CLI's budget counts only its own process: pass what the conversation has left.
        max_budget_usd=round(remaining, 6),
        system_prompt=system_prompt,  # type: ignore[arg-type]
        setting_sources=["user", "project", "local"],
        resume=resume,
        fork_session=record.forked and resume == record.resume_claude_session_id,
        max_buffer_size=STREAM_BUFFER_BYTES,
        stderr=stderr,
        can_use_tool=can_use_tool,
        cli_path=os.environ.get("CLAWUNITS_CLAUDE_PATH") or None,
    )


def is_question(text: str) -> bool:
    """Does the turn's final text end by asking the user something?"""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return False
    return lines[-1].rstrip("*_`'\" )]").endswith("?")


class Runner:
    """One session: connect, run turns, turn SDK messages into records, end with ``exit``."""

    def __init__(self, record: SessionRecord, store: Store, out: RecordWriter, inbox: Inbox) -> None:
        self.record = record
        self.store = store
        self.out = out
        self.inbox = inbox
        self.stop = asyncio.Event()
        # Why the runner stops on its own (out of memory); None: a SIGTERM from outside.
        self.stop_outcome: Outcome | None = None
        self.started_mono = time.monotonic()
        self.oom_counter = oom_kill_counter()
        self.oom_seen = read_oom_kills(self.oom_counter) if self.oom_counter else 0
        self.mail = asyncio.Event()
        self.new_messages = asyncio.Event()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.tool_names: dict[str, str] = {}
        # The plan text Claude wrote in each ExitPlanMode call, should the CLI not pass it to the callback.
        self.plan_inputs: dict[str, str] = {}
        self.open_tools: set[str] = set()
        self.claude_session_id: str | None = record.claude_session_id
        self.cost_baseline = record.prior_cost_usd
        self.last_total_cost = record.prior_cost_usd + record.cost_usd
        self.last_text = record.result_preview or ""
        self.turn: Turn | None = None
        self.permission: PendingPermission | None = None
        self.interrupted_for: set[str] = set()
        # asyncio keeps only weak references to tasks: hold the fire-and-forget ones until they finish.
        self.background: set[asyncio.Task[bool]] = set()
        self.last_message_at = time.monotonic()
        self.client: ClaudeSDKClient | None = None
        self.reader: asyncio.Task[None] | None = None

    # -- the session -----------------------------------------------------------------------------------

    async def run(self) -> Outcome:
        helpers = [
            asyncio.create_task(self._watch_mail()),
            asyncio.create_task(self._watchdog()),
            asyncio.create_task(self._watch_memory()),
        ]
        try:
            resume = self.claude_session_id or self.record.resume_claude_session_id
            await self._unless_stopped(self._connect(resume))
            if self.record.recoveries:
                self._announce_recovery()
            return await self._conversation(await self._opening())
        except Stopped:
            return await self._on_stop()
        except Exception as e:  # noqa: BLE001 - any SDK/CLI failure ends the session as failed
            # A shutdown sends SIGTERM to Claude Code too: its death may be noticed before our own signal.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=STOP_GRACE_SEC)
            if self.stop.is_set():
                return await self._on_stop()
            return self._failure(e)
        finally:
            for task in helpers:
                task.cancel()
            await self._disconnect()

    async def _opening(self) -> list[str]:
        """The first turn's content: the prompt; for a session recovered mid-turn, the mail queued for it or
        "continue"; nothing for a session that was waiting for an answer (it waits again)."""
        if not self.record.claude_session_id:
            # It never reached Claude (interrupted before `started`): it starts over with its prompt.
            return [self.record.prompt]
        if self.record.recoveries and self.record.waiting_for is not WaitingFor.QUESTION:
            return await self._take_messages(wait=False) or [CONTINUE_PROMPT]
        return []

    def _announce_recovery(self) -> None:
        r = self.record
        self.out.emit(
            R.RECOVERED,
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
        limited = self._limit_outcome()
        if limited is not None:
            return limited
        try:
            current = self.store.load(self.record.id)
        except Exception:  # noqa: BLE001 - the verdict below is written through _update, which reports
            current = self.record
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
        self._update(lambda r: r.closed(outcome.status, outcome.reason, outcome.cause))
        return outcome

    async def _conversation(self, first: list[str]) -> Outcome:
        content: list[str] | None = first or await self._take_messages()
        while True:
            if content is None:
                minutes = self.record.idle_timeout_minutes
                idle = Outcome(
                    Status.COMPLETED, f"idle-timeout: no activity for {minutes:g} minutes", EndCause.IDLE_TIMEOUT
                )
                if self._close(idle):
                    return idle
                content = await self._take_messages(wait=False)  # a message arrived just in time
            if not content:
                content = await self._take_messages()
                continue
            turn = await self._run_turn(content)
            result = turn.done.result()
            if turn.interrupt_reason and _aborted(result):
                # The interrupted turn's result is drained here; it is not a failure.
                self.out.emit(R.INTERRUPTED, reason=turn.interrupt_reason)
                if turn.interrupt_reason == RESTART:
                    await self._disconnect()
                    await self._unless_stopped(self._connect(self.claude_session_id))
                content = await self._take_messages(wait=False)
                if not content and turn.interrupt_reason in (WATCHDOG, RESTART):
                    content = [CONTINUE_PROMPT]
                if content:
                    continue
            else:
                # A process of this turn ran the session out of memory: that ends it, whatever Claude made of it.
                fatal = self._oom_outcome() or self._fatal_outcome(result)
                if fatal is not None:
                    return fatal
                if not self.record.multi_turn:
                    return Outcome(Status.COMPLETED, "task finished", EndCause.COMPLETED)
            self._announce_waiting(turn)
            content = await self._take_messages(wait=True)

    async def _run_turn(self, content: list[str]) -> Turn:
        assert self.client is not None
        loop = asyncio.get_running_loop()
        self.turn = turn = Turn(done=loop.create_future())
        self.last_message_at = time.monotonic()
        self._update(lambda r: r.turn_started() if r.is_open else r)
        await self.client.query(_user_message(content) if len(content) > 1 else content[0])
        try:
            await self._unless_stopped(self._await_result(turn))
        finally:
            self.turn = None
        return turn

    async def _await_result(self, turn: Turn) -> None:
        reader = self.reader
        assert reader is not None
        await asyncio.wait({turn.done, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not turn.done.done():
            reader.result()  # re-raises the reader's error
            raise RuntimeError("Claude Code ended the stream before the turn finished")

    async def _connect(self, resume: str | None) -> None:
        can_use_tool = None if self.record.permission_mode == "bypassPermissions" else self._can_use_tool
        self.client = ClaudeSDKClient(build_options(self.record, self._on_stderr, can_use_tool, resume))
        await self.client.connect()
        self.reader = asyncio.create_task(self._read(self.client))

    async def _disconnect(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            self.reader = None
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.disconnect()
            self.client = None

    async def _unless_stopped(self, work: Awaitable[T]) -> T:
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

    async def _read(self, client: ClaudeSDKClient) -> None:
        async for message in client.receive_messages():
            self.last_message_at = time.monotonic()
            self._handle(message)

    # -- inbox -----------------------------------------------------------------------------------------

    async def _take_messages(self, wait: bool = True) -> list[str] | None:
        """Deliver every queued message as the next turn's content; None when the idle timeout expired."""
        deadline = time.monotonic() + self.record.idle_timeout_minutes * 60
        while True:
            # Cleared before looking, so mail that arrives while we look still wakes the wait below.
            self.new_messages.clear()
            taken = [e for e in (self.inbox.take(entry) for entry in self.inbox.pending()) if e is not None]
            if taken:
                return self._delivered(taken)
            if not wait:
                return []
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            waiter = asyncio.create_task(self.new_messages.wait())
            try:
                await self._unless_stopped(asyncio.wait({waiter}, timeout=min(left, MAIL_POLL_SEC)))
            finally:
                waiter.cancel()

    def _delivered(self, taken: list[Entry]) -> list[str]:
        for entry in taken:
            msg = entry.message
            # Recorded before it is sent: after a crash the journal decides what counts as delivered.
            self.out.emit(
                R.MESSAGE_RECEIVED,
                messageId=msg.id,
                text=shorten(msg.text, 200),
                interrupt=msg.interrupt,
                userInitiated=msg.user_initiated,
            )
        self._update(lambda r: r.with_changes(last_activity_at=utc_now_iso()))
        contents = [e.message.text for e in taken]
        for entry in taken:
            self.inbox.delivered(entry)
        return contents

    async def _watch_mail(self) -> None:
        """Route new mail: answers to an open permission request, interrupts; wake the turn loop."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.mail.wait(), timeout=MAIL_POLL_SEC)
            self.mail.clear()
            pending = self.inbox.pending()
            if not pending:
                continue
            if self.permission is not None:
                self._answer_permission(pending)
                continue
            for entry in pending:
                if entry.message.interrupt and entry.message.id not in self.interrupted_for and self.turn is not None:
                    self.interrupted_for.add(entry.message.id)
                    self.background.add(task := asyncio.create_task(self._interrupt(self.turn, BY_MESSAGE)))
                    task.add_done_callback(self.background.discard)
            self.new_messages.set()

    async def _interrupt(self, turn: Turn, reason: str) -> bool:
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

    # -- permissions -----------------------------------------------------------------------------------

    async def _can_use_tool(self, tool: str, tool_input: dict[str, Any], _ctx: Any) -> Any:
        if tool == ASK_TOOL:
            # A question, not a tool call to approve: the turn ends with it (waiting for a "question", its
            # questions in the `waiting` record) and the answer comes as the next turn, as in bypassPermissions
            # mode, where Claude Code disables AskUserQuestion.
            return PermissionResultDeny(message=ASK_INSTEAD)
        if tool == PLAN_TOOL:
            return await self._plan_approval(tool_input, getattr(_ctx, "tool_use_id", None))
        request_id = new_id()[:6]
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.permission = PendingPermission(request_id, time.time_ns(), answer)
        self.out.emit(R.PERMISSION_REQUEST, requestId=request_id, tool=tool, summary=summarize_tool_input(tool_input))
        self._update(lambda r: r.awaiting_answer(WaitingFor.PERMISSION, request_id))
        timeout = self.record.permission_timeout_sec
        try:
            text = await asyncio.wait_for(answer, timeout=timeout)
        except TimeoutError:
            text = f"deny no answer within {timeout:g} seconds"
        finally:
            self.permission = None
        allow, reason = _decision(text)
        self.out.emit(R.PERMISSION_ANSWER, requestId=request_id, decision="allow" if allow else "deny", reason=reason)
        self._update(lambda r: r.answer_taken())
        self.last_message_at = time.monotonic()
        if allow:
            return PermissionResultAllow(updated_input=tool_input)
        return PermissionResultDeny(message=reason or "The user denied this tool call.")

    async def _plan_approval(self, tool_input: dict[str, Any], tool_use_id: str | None) -> Any:
        """ExitPlanMode: show the plan (a ``plan`` record), wait for approve/reject, answer Claude.

        Approval allows the call and switches the session to its execution mode (``planApprovalMode``);
        a rejection denies it with the user's feedback, so Claude stays in plan mode and plans again (the
        next ExitPlanMode is the next plan version).
        """
        text = tool_input.get("plan") if isinstance(tool_input.get("plan"), str) else None
        text = text or self.plan_inputs.get(tool_use_id or "") or "(Claude Code passed no plan text)"
        version = self.record.plan_version + 1
        request_id = new_id()[:6]
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.permission = PendingPermission(request_id, time.time_ns(), answer, plan_version=version)
        fields: dict[str, Any] = {"requestId": request_id, "version": version, "plan": text[:PLAN_CHARS]}
        if len(text) > PLAN_CHARS:
            fields["truncated"] = True
        if isinstance(tool_input.get("planFilePath"), str):
            fields["planFile"] = tool_input["planFilePath"]
        self.out.emit(R.PLAN, **fields)
        self._update(lambda r: r.awaiting_answer(WaitingFor.PLAN, request_id, plan_version=version))
        timeout = self.record.permission_timeout_sec
        try:
            reply = await asyncio.wait_for(answer, timeout=timeout)
        except TimeoutError:
            reply = None
        finally:
            self.permission = None
        # `respond` posts answers in their normal form; any other text counts as feedback (a rejection).
        parsed = plans.parse_answer(reply) if reply is not None else None
        approved = parsed is not None and parsed.decision == plans.APPROVE
        new_mode = (parsed.mode or self.record.plan_approval_mode) if parsed and approved else None
        feedback = "" if reply is None or approved else (parsed.feedback if parsed else reply.strip())
        if reply is None:
            self.out.emit(R.PLAN_ANSWER, requestId=request_id, version=version, decision="timeout",
                          reason=f"no answer within {timeout:g} seconds")  # fmt: skip
        elif approved:
            self.out.emit(R.PLAN_ANSWER, requestId=request_id, version=version, decision="approved", mode=new_mode)
        else:
            self.out.emit(R.PLAN_ANSWER, requestId=request_id, version=version, decision="rejected", feedback=feedback)
        # Approved: the session now runs in its execution mode, also after a restart or a resume.
        self._update(lambda r: r.answer_taken(permission_mode=new_mode))
        self.last_message_at = time.monotonic()
        if reply is None:
            return PermissionResultDeny(message=PLAN_TIMEOUT.format(timeout=timeout))
        if new_mode:
            switch = PermissionUpdate(type="setMode", mode=new_mode, destination="session")  # type: ignore[arg-type]
            return PermissionResultAllow(updated_input=tool_input, updated_permissions=[switch])
        return PermissionResultDeny(message=_rejection(version, feedback))

    def _answer_permission(self, pending: list[Entry]) -> None:
        perm = self.permission
        assert perm is not None
        # Only a message posted after the request answers it; older mail is for the next turn.
        for entry in pending:
            if entry.message.posted_ns < perm.since_ns:
                continue
            taken = self.inbox.take(entry)
            if taken is None:
                continue
            self.out.emit(R.MESSAGE_RECEIVED, messageId=entry.message.id, text=shorten(entry.message.text, 200),
                          answers=perm.request_id)  # fmt: skip
            self.inbox.delivered(taken)
            stale = _stale_plan_answer(entry.message.text, perm.plan_version)
            if stale is not None:
                # `respond` refuses these; one can still race a plan replaced in between (after a timeout).
                self.out.emit(R.PLAN_ANSWER, requestId=perm.request_id, version=stale, decision="stale",
                              reason=f"answers plan v{stale}; plan v{perm.plan_version} is waiting")  # fmt: skip
                continue
            if not perm.answer.done():
                perm.answer.set_result(entry.message.text)
            return

    # -- watchdog --------------------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        """Interrupt a turn that went silent while no tool runs; if that fails, restart the CLI with resume."""
        stall = self.record.stall_timeout_sec
        while True:
            await asyncio.sleep(min(5.0, max(0.2, stall / 10)))
            turn = self.turn
            silent = time.monotonic() - self.last_message_at
            if turn is None or turn.done.done() or self.open_tools or self.permission or silent < stall:
                continue
            self.out.emit(R.WATCHDOG, action="interrupt", silentSec=round(silent, 1))
            if await self._interrupt(turn, WATCHDOG):
                continue
            # The CLI does not answer: abandon the turn; the turn loop restarts the CLI with resume.
            self.out.emit(R.WATCHDOG, action="restart", silentSec=round(time.monotonic() - self.last_message_at, 1))
            turn.interrupt_reason = RESTART
            self.open_tools.clear()
            if not turn.done.done():
                turn.done.set_result(_synthetic_abort())

    # -- resource limits -------------------------------------------------------------------------------

    async def _watch_memory(self) -> None:
        """End the session when the kernel OOM-kills a process of its unit (MemoryMax reached).

        On cgroup v2 systemd stops the unit itself (OOMPolicy=stop); cgroup v1 has no such notice, so the
        runner watches its cgroup's ``oom_kill`` counter and stops the session with that reason on both.
        """
        if self.oom_counter is None:
            return
        while True:
            await asyncio.sleep(OOM_POLL_SEC)
            if (oom := self._oom_outcome()) is not None:
                self.stop_outcome = oom
                self.stop.set()
                return

    def _oom_outcome(self) -> Outcome | None:
        """The out-of-memory outcome once the kernel has OOM-killed a process of this unit, else None."""
        if self.oom_counter is None or read_oom_kills(self.oom_counter) <= self.oom_seen:
            return None
        limit = format_size(self.record.memory_max)
        return Outcome(
            Status.FAILED,
            f"out of memory: the session exceeded MemoryMax={limit} and the kernel killed a process",
            EndCause.OOM,
        )

    def _limit_outcome(self) -> Outcome | None:
        """Why the session stops when a resource limit stops it: out of memory, or RuntimeMaxSec reached."""
        if self.stop_outcome is not None:
            return self.stop_outcome
        limit = self.record.runtime_max_sec
        # systemd's RuntimeMaxSec= stops the unit with SIGTERM like a kill; the elapsed time tells them apart.
        if limit is not None and time.monotonic() - self.started_mono >= limit - RUNTIME_SLACK_SEC:
            return Outcome(
                Status.FAILED,
                f"runtime limit: still running after RuntimeMaxSec={format_duration(limit)}",
                EndCause.RUNTIME,
            )
        return None

    # -- messages to records ---------------------------------------------------------------------------

    def _handle(self, msg: Any) -> None:
        if isinstance(msg, SystemMessage):
            if msg.subtype == "init":
                self._on_init(msg.data)
        elif isinstance(msg, AssistantMessage):
            for block in msg.content:
                if isinstance(block, TextBlock) and block.text.strip():
                    self.last_text = block.text
                    if self.turn is not None:
                        self.turn.last_text = block.text
                    self.out.emit(R.TEXT, text=block.text)
                elif isinstance(block, ToolUseBlock):
                    self._on_tool_use(block)
        elif isinstance(msg, UserMessage) and isinstance(msg.content, list):
            for block in msg.content:
                if isinstance(block, ToolResultBlock):
                    self.open_tools.discard(block.tool_use_id)
                    self.out.emit(
                        R.TOOL_RESULT,
                        id=block.tool_use_id,
                        tool=self.tool_names.get(block.tool_use_id, "?"),
                        summary=summarize_tool_result(block.content),
                        isError=bool(block.is_error),
                    )
        elif isinstance(msg, ResultMessage):
            self._on_result(msg)

    def _on_tool_use(self, block: ToolUseBlock) -> None:
        self.tool_names[block.id] = block.name
        self.open_tools.add(block.id)
        self.out.emit(R.TOOL_USE, id=block.id, tool=block.name, summary=summarize_tool_input(block.input))
        if block.name == PLAN_TOOL and isinstance(block.input, dict) and isinstance(block.input.get("plan"), str):
            self.plan_inputs[block.id] = block.input["plan"]
        if block.name == ASK_TOOL and self.turn is not None:
            questions = block.input.get("questions") if isinstance(block.input, dict) else None
            texts = [str(q.get("question", "")) for q in questions or [] if isinstance(q, dict)]
            self.turn.asked.extend(t for t in texts if t) if texts else self.turn.asked.append("(question)")

    def _on_init(self, data: dict[str, Any]) -> None:
        sid = data.get("session_id")
        if not sid or sid == self.claude_session_id:
            return
        self.claude_session_id = sid
        self.out.emit(
            R.STARTED,
            claudeSessionId=sid,
            model=data.get("model"),
            cwd=data.get("cwd"),
            permissionMode=data.get("permissionMode"),
            claudeCodeVersion=data.get("claude_code_version"),
            resumedFrom=self.record.resumed_from,
            forked=self.record.forked,
        )
        self._update(
            lambda r: r.with_changes(
                claude_session_id=sid,
                status=Status.RUNNING if r.status is Status.STARTING else r.status,
                started_at=r.started_at or utc_now_iso(),
            )
        )

    def _on_result(self, msg: ResultMessage) -> None:
        total = float(msg.total_cost_usd or 0.0)
        turn_cost = max(0.0, total - self.last_total_cost)
        self.last_total_cost = max(total, self.last_total_cost)
        own_cost = self._own_cost()
        fields: dict[str, Any] = {
            "subtype": msg.subtype,
            "isError": bool(msg.is_error),
            "costUsd": own_cost,
            "turnCostUsd": round(turn_cost, 6),
            "durationMs": msg.duration_ms,
            "numTurns": msg.num_turns,
        }
        if getattr(msg, "terminal_reason", None):
            fields["terminalReason"] = msg.terminal_reason
        if msg.is_error and msg.result:
            fields["result"] = shorten(str(msg.result), 500)
        if getattr(msg, "errors", None):
            fields["errors"] = [shorten(str(e), 300) for e in msg.errors[:5]]
        if getattr(msg, "api_error_status", None):
            fields["apiErrorStatus"] = msg.api_error_status
        if self.turn is not None and self.turn.interrupt_reason and _aborted(msg):
            fields["interrupted"] = True
        self.out.emit(R.TURN_END, **fields)
        preview = self.last_text[-PREVIEW_CHARS:] if self.last_text else None
        self._update(
            lambda r: r.with_changes(
                cost_usd=own_cost, num_turns=r.num_turns + 1, result_preview=preview, last_activity_at=utc_now_iso()
            )
        )
        if self.turn is not None and not self.turn.done.done():
            self.turn.done.set_result(msg)

    def _announce_waiting(self, turn: Turn) -> None:
        """After a turn: a question to the user (``waiting``), or a finished task (``completed``, still open).

        Either way the runner stays up for follow-up messages until the idle timeout.
        """
        question = bool(turn.asked) or is_question(turn.last_text)
        fields: dict[str, Any] = {"question": question, "text": shorten(turn.last_text, 300) if turn.last_text else ""}
        if turn.asked:
            fields["asked"] = [shorten(q, 200) for q in turn.asked[:5]]
        self.out.emit(R.WAITING, **fields)
        self._update(lambda r: r.turn_finished(question))

    def _on_stderr(self, line: str) -> None:
        self.stderr_tail.append(shorten(line, 200))

    # -- outcomes --------------------------------------------------------------------------------------

    def _fatal_outcome(self, result: ResultMessage) -> Outcome | None:
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

    def _failure(self, e: Exception) -> Outcome:
        if (oom := self._oom_outcome()) is not None:
            return oom  # Claude Code itself was the process the kernel killed
        message = shorten(f"{type(e).__name__}: {e}", 500)
        fields: dict[str, Any] = {"message": message}
        if self.stderr_tail:
            fields["stderr"] = list(self.stderr_tail)
        self.out.emit(R.ERROR, **fields)
        return Outcome(Status.FAILED, message, EndCause.CRASH)

    def _close(self, outcome: Outcome) -> bool:
        """Close the session for messages, unless one is waiting in the inbox (checked under the record's
        lock, which ``clawunits respond`` holds while it posts). Returns whether it closed."""
        closed = False

        def change(r: SessionRecord) -> SessionRecord | None:
            nonlocal closed
            if self.inbox.pending():
                return None
            closed = True
            return r.closed(outcome.status, outcome.reason, outcome.cause)

        self._update(change)
        return closed

    def finish(self, outcome: Outcome) -> Outcome:
        """Record the final state (unless ``clawunits kill`` already did) and print ``exit``."""
        final = self._update(lambda r: r.closed(outcome.status, outcome.reason, outcome.cause))
        if final is not None and final.status.is_terminal:
            # `clawunits kill` records its verdict before stopping the unit; the journal agrees with it.
            cause = outcome.cause if final.status is outcome.status else (final.end_cause or outcome.cause)
            outcome = Outcome(final.status, final.reason or outcome.reason, cause)
        self.out.emit(
            R.EXIT, status=outcome.status.value, reason=outcome.reason, cause=outcome.cause, costUsd=self._own_cost()
        )
        return outcome

    def _own_cost(self) -> float:
        return round(max(0.0, self.last_total_cost - self.cost_baseline), 6)

    # -- store -----------------------------------------------------------------------------------------

    def _update(self, change: Callable[[SessionRecord], SessionRecord]) -> SessionRecord | None:
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


def _user_message(texts: list[str]) -> AsyncIterator[dict[str, Any]]:
    """Several queued messages as one user turn, one text block each, in the order they were posted."""

    async def gen() -> AsyncIterator[dict[str, Any]]:
        yield {
            "type": "user",
            "message": {"role": "user", "content": [{"type": "text", "text": t} for t in texts]},
            "parent_tool_use_id": None,
        }

    return gen()


def _aborted(result: ResultMessage) -> bool:
    return result.terminal_reason in ABORTED or result.subtype == "error_during_execution"


def _decision(text: str) -> tuple[bool, str]:
    """``allow``/``deny`` (and synonyms), or any other text: a denial with that text as the reason."""
    words = text.strip().split(maxsplit=1)
    first = words[0].lower().rstrip(".!,") if words else ""
    rest = words[1] if len(words) > 1 else ""
    if first in ALLOW_WORDS:
        return True, ""
    if first in DENY_WORDS:
        return False, rest
    return False, text.strip()


def _rejection(version: int, feedback: str) -> str:
    """What Claude reads when the user rejects its plan: the feedback, and to plan again."""
    if not feedback:
        return f"The user rejected this plan (v{version}) without saying why. Stay in plan mode and ask what to change."
    return (
        f"The user rejected this plan (v{version}). Their feedback:\n{feedback}\n\n"
        "Stay in plan mode: revise the plan accordingly and call ExitPlanMode again."
    )


def _stale_plan_answer(text: str, waiting: int | None) -> int | None:
    """The older plan version an answer names while plan ``waiting`` is open; None if it answers this one."""
    if waiting is None:
        return None
    answer = plans.parse_answer(text)
    if answer is None or answer.version is None or answer.version == waiting:
        return None
    return answer.version


def _synthetic_abort() -> ResultMessage:
    return ResultMessage(
        subtype="error_during_execution",
        duration_ms=0,
        duration_api_ms=0,
        is_error=True,
        num_turns=0,
        session_id="",
        terminal_reason="aborted_streaming",
    )


def _delivered_ids(unit: str) -> set[str]:
    """Message ids this session's journal shows as delivered (``message_received``)."""
    from clawunits.systemd import journal

    try:
        batch = journal.read_after(unit)
    except Exception:  # noqa: BLE001 - without the journal, nothing counts as delivered: requeue
        return set()
    return {str(r.get("messageId")) for r in batch.records if r.type == R.MESSAGE_RECEIVED}


def reap_strays(grace: float = 2.0) -> int:
    """Terminate processes the session left in this unit's cgroup (e.g. ``sleep 600 &``); returns their count.

    A finished unit stays loaded (RemainAfterExit) so its result can be read, and systemd would let its
    leftover processes live on; the session is over, so they go.
    """
    procs = _cgroup_procs_file()
    if procs is None:
        return 0
    me = os.getpid()

    def others() -> list[int]:
        try:
            return [int(p) for p in procs.read_text().split() if int(p) != me]
        except OSError:
            return []

    strays = others()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in others():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while others() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not others():
            break
    return len(strays)


def _cgroup_procs_file() -> Path | None:
    paths = cgroup_paths()
    candidates = []
    if "" in paths:  # the cgroup2 hierarchy, mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified
        rel = paths[""].lstrip("/")
        candidates += [Path("/sys/fs/cgroup/unified") / rel, Path("/sys/fs/cgroup") / rel]
    if "name=systemd" in paths:
        candidates.append(Path("/sys/fs/cgroup/systemd") / paths["name=systemd"].lstrip("/"))
    for base in candidates:
        # Only ever reap inside a session unit's own cgroup, never a shared one.
        if base.name.startswith("clawunits-") and (base / "cgroup.procs").exists():
            return base / "cgroup.procs"
    return None


async def _main(session_id: str) -> int:
    store = Store(state_dir())
    # The session's own secrets (its API key above all) never reach the journal or the store.
    out = RecordWriter(redactor=Redactor.from_environ(os.environ))
    try:
        record = store.load(session_id)
    except Exception as e:  # noqa: BLE001 - no record, no session: say why in the journal and fail
        out.emit(R.ERROR, message=shorten(f"cannot load session {session_id}: {e}", 300))
        out.emit(R.EXIT, status=Status.FAILED.value, reason="session record unreadable", cause="crash", costUsd=0.0)
        return 1
    inbox = inbox_for(store.root, session_id)
    if inbox.in_flight():
        inbox.recover(_delivered_ids(record.unit))
    runner = Runner(record, store, out, inbox)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, runner.stop.set)
    loop.add_signal_handler(signal.SIGWINCH, runner.mail.set)
    outcome = runner.finish(await runner.run())
    reap_strays()
    return 1 if outcome.status is Status.FAILED else 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m clawunits.runner SESSION_ID", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(_main(args[0])))
