"""Delivery through the ``openclaw`` CLI: chat messages and agent wake events. Argv only, never a shell."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from clawunits import proc
from clawunits.errors import CommandError, CommandFailed, CommandTimedOut
from clawunits.notifier.channels import Channel, split_text

log = logging.getLogger(__name__)

SEND_TIMEOUT_SEC = 15.0
EVENT_TIMEOUT_SEC = 30.0
# Pauses before the second and third attempt of a message.
SEND_BACKOFF_SEC = (1.0, 4.0)
EVENT_RETRY_AFTER_SEC = 5.0


@dataclass(frozen=True)
class OpenClaw:
    """The ``openclaw`` executable (config ``openclawPath``)."""

    binary: str = "openclaw"
    backoff: Sequence[float] = SEND_BACKOFF_SEC
    event_retry_after: float = EVENT_RETRY_AFTER_SEC

    async def send(self, channel: Channel, text: str) -> bool:
        """Send ``text`` to ``channel``, split at the channel's size; each part retried with back-off."""
        for part in split_text(text, channel):
            argv = [self.binary, "message", "send", *channel.send_args(), "-m", part]
            if not await self._attempts(argv, SEND_TIMEOUT_SEC, self.backoff):
                return False
        return True

    async def system_event(self, text: str) -> bool:
        """Wake the orchestrating agent: ``openclaw system event --text TEXT --mode now``, retried once."""
        argv = [self.binary, "system", "event", "--text", text, "--mode", "now"]
        return await self._attempts(argv, EVENT_TIMEOUT_SEC, (self.event_retry_after,))

    async def _attempts(self, argv: list[str], timeout: float, pauses: Sequence[float]) -> bool:
        for attempt in range(len(pauses) + 1):
            if attempt:
                await asyncio.sleep(pauses[attempt - 1])
            error = await _run(argv, timeout)
            if error is None:
                return True
            log.warning("openclaw %s failed (attempt %d): %s", argv[1], attempt + 1, error)
        return False


async def _run(argv: list[str], timeout: float) -> str | None:
    """Run one command; None on success, else what went wrong."""
    try:
        # openclaw message send is known to hang at times: the timeout kills it, never letting it block the notifier.
        await proc.run_async(argv, timeout=timeout)
    except CommandTimedOut:
        return f"timed out after {timeout:g}s"
    except CommandFailed as e:
        return f"exit {e.returncode}: {e.stderr.strip()[:300]}"
    except CommandError as e:
        return f"cannot run {argv[0]}: {e.reason}"
    return None
