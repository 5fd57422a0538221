"""Watching the session from the side: the stall watchdog, and the resource limits (out of memory,
RuntimeMaxSec) that end it."""

from __future__ import annotations

import asyncio
import time

from claude_agent_sdk import ResultMessage

from clawunits import records as R
from clawunits.runner.live import RESTART, WATCHDOG, LiveSession, Outcome
from clawunits.state.models import EndCause, Status
from clawunits.systemd.limits import format_duration, format_size, oom_kill_counter, read_oom_kills

OOM_POLL_SEC = 0.5
# The runner starts a little after its unit does.
RUNTIME_SLACK_SEC = 2.0


async def watchdog(live: LiveSession) -> None:
    """Interrupt a turn that went silent while no tool runs; if that fails, restart the CLI with resume."""
    stall = live.record.stall_timeout_sec
    while True:
        await asyncio.sleep(min(5.0, max(0.2, stall / 10)))
        turn = live.turn
        silent = time.monotonic() - live.last_message_at
        if turn is None or turn.done.done() or live.open_tools or live.permission or silent < stall:
            continue
        live.out.emit(R.WATCHDOG, action="interrupt", silentSec=round(silent, 1))
        if await live.interrupt(turn, WATCHDOG):
            continue
        # The CLI does not answer: abandon the turn; the turn loop restarts the CLI with resume.
        live.out.emit(R.WATCHDOG, action="restart", silentSec=round(time.monotonic() - live.last_message_at, 1))
        turn.interrupt_reason = RESTART
        live.open_tools.clear()
        if not turn.done.done():
            turn.done.set_result(_synthetic_abort())


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


class Limits:
    """The session's resource limits: the kernel's OOM kills in its unit, and systemd's RuntimeMaxSec."""

    def __init__(self, live: LiveSession) -> None:
        self.live = live
        # Why the runner stops on its own (out of memory); None: a SIGTERM from outside.
        self.stop_outcome: Outcome | None = None
        self.started_mono = time.monotonic()
        self.oom_counter = oom_kill_counter()
        self.oom_seen = read_oom_kills(self.oom_counter) if self.oom_counter else 0

    async def watch_memory(self) -> None:
        """End the session when the kernel OOM-kills a process of its unit (MemoryMax reached).

        On cgroup v2 systemd stops the unit itself (OOMPolicy=stop); cgroup v1 has no such notice, so the
        runner watches its cgroup's ``oom_kill`` counter and stops the session with that reason on both.
        """
        if self.oom_counter is None:
            return
        while True:
            await asyncio.sleep(OOM_POLL_SEC)
            if (oom := self.oom_outcome()) is not None:
                self.stop_outcome = oom
                self.live.stop.set()
                return

    def oom_outcome(self) -> Outcome | None:
        """The out-of-memory outcome once the kernel has OOM-killed a process of this unit, else None."""
        if self.oom_counter is None or read_oom_kills(self.oom_counter) <= self.oom_seen:
            return None
        limit = format_size(self.live.record.memory_max)
        return Outcome(
            Status.FAILED,
            f"out of memory: the session exceeded MemoryMax={limit} and the kernel killed a process",
            EndCause.OOM,
        )

    def limit_outcome(self) -> Outcome | None:
        """Why the session stops when a resource limit stops it: out of memory, or RuntimeMaxSec reached."""
        if self.stop_outcome is not None:
            return self.stop_outcome
        limit = self.live.record.runtime_max_sec
        # systemd's RuntimeMaxSec= stops the unit with SIGTERM like a kill; the elapsed time tells them apart.
        if limit is not None and time.monotonic() - self.started_mono >= limit - RUNTIME_SLACK_SEC:
            return Outcome(
                Status.FAILED,
                f"runtime limit: still running after RuntimeMaxSec={format_duration(limit)}",
                EndCause.RUNTIME,
            )
        return None
