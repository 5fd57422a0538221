"""The session runner: ``python -m clawunits.runner SESSION_ID`` is the ExecStart of every session unit.

It drives one Claude Code session through ``ClaudeSDKClient`` and prints one JSON record per line on
stdout, which journald keeps. It updates the session's store record as it goes (Claude session id, cost,
final status) so listing sessions never has to read the journal. SIGTERM (``clawunits kill``,
``systemctl --user stop``) ends the session gracefully and still prints ``exit``.

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
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from clawunits import records as R
from clawunits.config import state_dir
from clawunits.models import SessionRecord, Status
from clawunits.records import RecordWriter, shorten, summarize_tool_input, summarize_tool_result, utc_now_iso
from clawunits.store import Store

T = TypeVar("T")

# The SDK's default 1 MB line limit kills the client on one large tool result; allow far more.
STREAM_BUFFER_BYTES = 64 * 1024 * 1024
STDERR_TAIL = 20
PREVIEW_CHARS = 500


class Stopped(Exception):
    """SIGTERM (or SIGINT/SIGHUP) arrived: end the session now."""


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str
    cause: str


def build_options(record: SessionRecord, stderr: Any) -> ClaudeAgentOptions:
    """SDK options for this session: Claude Code's own system prompt and the user's settings."""
    system_prompt: dict[str, str] = {"type": "preset", "preset": "claude_code"}
    if record.system_prompt:
        system_prompt["append"] = record.system_prompt
    return ClaudeAgentOptions(
        cwd=record.workdir,
        model=record.model,
        permission_mode=record.permission_mode,  # type: ignore[arg-type]
        allowed_tools=list(record.allowed_tools),
        max_budget_usd=record.budget_usd,
        system_prompt=system_prompt,  # type: ignore[arg-type]
        setting_sources=["user", "project", "local"],
        resume=record.resume_claude_session_id,
        fork_session=record.forked,
        max_buffer_size=STREAM_BUFFER_BYTES,
        stderr=stderr,
        cli_path=os.environ.get("CLAWUNITS_CLAUDE_PATH") or None,
    )


class Runner:
    """One session: connect, send the prompt, turn SDK messages into records, end with ``exit``."""

    def __init__(self, record: SessionRecord, store: Store, out: RecordWriter) -> None:
        self.record = record
        self.store = store
        self.out = out
        self.stop = asyncio.Event()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.tool_names: dict[str, str] = {}
        self.claude_session_id: str | None = None
        self.cost_baseline = self._resumed_cost()
        self.last_total_cost = self.cost_baseline
        self.last_text = ""
        self.turn_done: asyncio.Future[ResultMessage] | None = None

    # -- the session -----------------------------------------------------------------------------------

    async def run(self) -> Outcome:
        client = ClaudeSDKClient(build_options(self.record, self._on_stderr))
        reader: asyncio.Task[None] | None = None
        try:
            await self._unless_stopped(client.connect())
            reader = asyncio.create_task(self._read(client))
            self.turn_done = asyncio.get_running_loop().create_future()
            await client.query(self.record.prompt)
            result = await self._unless_stopped(self._turn_result(reader))
            return self._outcome_of(result)
        except Stopped:
            return Outcome(Status.KILLED, "stopped by SIGTERM", "killed")
        except Exception as e:
            return self._failure(e)
        finally:
            if reader is not None:
                reader.cancel()
            with contextlib.suppress(Exception):
                await client.disconnect()

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

    async def _turn_result(self, reader: asyncio.Task[None]) -> ResultMessage:
        assert self.turn_done is not None
        await asyncio.wait({self.turn_done, reader}, return_when=asyncio.FIRST_COMPLETED)
        if self.turn_done.done():
            return self.turn_done.result()
        reader.result()  # re-raises the reader's error
        raise RuntimeError("Claude Code ended the stream before the turn finished")

    async def _read(self, client: ClaudeSDKClient) -> None:
        async for message in client.receive_messages():
            self._handle(message)

    # -- messages to records ---------------------------------------------------------------------------

    def _handle(self, msg: Any) -> None:
        if isinstance(msg, SystemMessage):
            if msg.subtype == "init":
                self._on_init(msg.data)
        elif isinstance(msg, AssistantMessage):
            for block in msg.content:
                if isinstance(block, TextBlock) and block.text.strip():
                    self.last_text = block.text
                    self.out.emit(R.TEXT, text=block.text)
                elif isinstance(block, ToolUseBlock):
                    self.tool_names[block.id] = block.name
                    self.out.emit(R.TOOL_USE, id=block.id, tool=block.name, summary=summarize_tool_input(block.input))
        elif isinstance(msg, UserMessage) and isinstance(msg.content, list):
            for block in msg.content:
                if isinstance(block, ToolResultBlock):
                    self.out.emit(
                        R.TOOL_RESULT,
                        id=block.tool_use_id,
                        tool=self.tool_names.get(block.tool_use_id, "?"),
                        summary=summarize_tool_result(block.content),
                        isError=bool(block.is_error),
                    )
        elif isinstance(msg, ResultMessage):
            self._on_result(msg)

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
        self.last_total_cost = total
        own_cost = round(max(0.0, total - self.cost_baseline), 6)
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
        self.out.emit(R.TURN_END, **fields)
        preview = self.last_text[-PREVIEW_CHARS:] if self.last_text else None
        self._update(lambda r: r.with_changes(cost_usd=own_cost, num_turns=r.num_turns + 1, result_preview=preview))
        if self.turn_done is not None and not self.turn_done.done():
            self.turn_done.set_result(msg)

    def _on_stderr(self, line: str) -> None:
        self.stderr_tail.append(shorten(line, 200))

    # -- outcomes --------------------------------------------------------------------------------------

    def _outcome_of(self, result: ResultMessage) -> Outcome:
        if result.subtype == "success" and not result.is_error:
            return Outcome(Status.COMPLETED, "task finished", "completed")
        detail = "; ".join(str(e) for e in (getattr(result, "errors", None) or [])) or str(result.result or "")
        if result.subtype == "error_max_budget_usd":
            return Outcome(Status.FAILED, f"budget exhausted: {shorten(detail, 200)}", "budget")
        status = getattr(result, "api_error_status", None)
        if status:
            return Outcome(Status.FAILED, f"API error {status}: {shorten(detail, 300)}", "api-error")
        return Outcome(Status.FAILED, f"{result.subtype}: {shorten(detail, 300)}", "error")

    def _failure(self, e: Exception) -> Outcome:
        message = shorten(f"{type(e).__name__}: {e}", 500)
        fields: dict[str, Any] = {"message": message}
        if self.stderr_tail:
            fields["stderr"] = list(self.stderr_tail)
        self.out.emit(R.ERROR, **fields)
        return Outcome(Status.FAILED, message, "crash")

    def finish(self, outcome: Outcome) -> Outcome:
        """Record the final state (unless ``clawunits kill`` already did) and print ``exit``."""
        final = self._update(
            lambda r: (
                r
                if r.status.is_terminal
                else r.with_changes(status=outcome.status, reason=outcome.reason, completed_at=utc_now_iso())
            )
        )
        if final is not None and final.status.is_terminal:
            # `clawunits kill` records its verdict before stopping the unit; the journal agrees with it.
            outcome = Outcome(final.status, final.reason or outcome.reason, outcome.cause)
        self.out.emit(
            R.EXIT,
            status=outcome.status.value,
            reason=outcome.reason,
            cause=outcome.cause,
            costUsd=self._own_cost(),
        )
        return outcome

    def _own_cost(self) -> float:
        return round(max(0.0, self.last_total_cost - self.cost_baseline), 6)

    # -- store -----------------------------------------------------------------------------------------

    def _update(self, change: Any) -> SessionRecord | None:
        """Write to the session's record; a store failure is reported, never fatal to the session."""
        try:
            return self.store.update(self.record.id, change)
        except Exception as e:
            self.out.emit(R.ERROR, message=shorten(f"could not update the session record: {e}", 300))
            return None

    def _resumed_cost(self) -> float:
        """The Claude CLI restores a resumed session's cumulative cost; count only what this session adds."""
        if not self.record.resumed_from:
            return 0.0
        try:
            return self.store.resolve(self.record.resumed_from).cost_usd
        except Exception:
            return 0.0


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
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    paths = dict(line.split(":", 2)[1:] for line in lines if line.count(":") >= 2)
    candidates = []
    if "" in paths:  # the cgroup2 hierarchy, mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified
        candidates += [
            Path("/sys/fs/cgroup/unified") / paths[""].lstrip("/"),
            Path("/sys/fs/cgroup") / paths[""].lstrip("/"),
        ]
    if "name=systemd" in paths:
        candidates.append(Path("/sys/fs/cgroup/systemd") / paths["name=systemd"].lstrip("/"))
    for base in candidates:
        # Only ever reap inside a session unit's own cgroup, never a shared one.
        if base.name.startswith("clawunits-") and (base / "cgroup.procs").exists():
            return base / "cgroup.procs"
    return None


async def _main(session_id: str) -> int:
    store = Store(state_dir())
    out = RecordWriter()
    try:
        record = store.load(session_id)
    except Exception as e:
        out.emit(R.ERROR, message=shorten(f"cannot load session {session_id}: {e}", 300))
        out.emit(R.EXIT, status=Status.FAILED.value, reason="session record unreadable", cause="crash", costUsd=0.0)
        return 1
    runner = Runner(record, store, out)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, runner.stop.set)
    outcome = runner.finish(await runner.run())
    reap_strays()
    return 1 if outcome.status is Status.FAILED else 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m clawunits.runner SESSION_ID", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(_main(args[0])))


if __name__ == "__main__":
    main()
