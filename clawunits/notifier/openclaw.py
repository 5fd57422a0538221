"""Delivery through the ``openclaw`` CLI: chat messages and agent wake events. Argv only, never a shell."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from clawunits import proc
from clawunits.errors import CommandError, CommandFailed, CommandTimedOut
from clawunits.notifier.channels import Channel, split_text
from clawunits.state.config import Settings

log = logging.getLogger(__name__)

SEND_TIMEOUT_SEC = 15.0
EVENT_TIMEOUT_SEC = 30.0
# Pauses before the second and third attempt of a message.
SEND_BACKOFF_SEC = (1.0, 4.0)
EVENT_RETRY_AFTER_SEC = 5.0


@dataclass(frozen=True)
class OpenClaw:
    """The ``openclaw`` executable (config ``openclawPath``), pointed at the gateway's state and config."""

    binary: str = "openclaw"
    backoff: Sequence[float] = SEND_BACKOFF_SEC
    event_retry_after: float = EVENT_RETRY_AFTER_SEC
    state_dir: str | None = None
    config_path: str | None = None
    profile: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenClaw:
        return cls(
            settings.openclawPath,
            state_dir=settings.openclawStateDir,
            config_path=settings.openclawConfigPath,
            profile=settings.openclawProfile,
        )

    async def send(self, channel: Channel, text: str) -> bool:
        """Send ``text`` to ``channel``, split at the channel's size; each part retried with back-off."""
        for part in split_text(text, channel):
            if not await self._attempts(["message", "send", *channel.send_args(), "-m", part], SEND_TIMEOUT_SEC,
                                        self.backoff):  # fmt: skip
                return False
        return True

    async def send_for_id(self, channel: Channel, text: str) -> tuple[bool, str | None]:
        """Send one message (a status message: short, never split) and learn its id from ``--json``'s
        ``messageId``; ``(True, None)`` when it went out but the answer named no id."""
        argv = [*self._argv(), "message", "send", *channel.send_args(), "-m", text, "--json"]
        for attempt in range(len(self.backoff) + 1):
            if attempt:
                await asyncio.sleep(self.backoff[attempt - 1])
            try:
                done = await proc.run_async(argv, timeout=SEND_TIMEOUT_SEC, env=self._env())
            except CommandError as e:
                log.warning("openclaw message send failed (attempt %d): %s", attempt + 1, e)
                continue
            return True, _message_id(done.stdout)
        return False, None

    async def edit(self, channel: Channel, message_id: str, text: str) -> bool:
        """``openclaw message edit``: one attempt (the next edit supersedes a failed one)."""
        args = ["message", "edit", *channel.send_args(), "--message-id", message_id, "-m", text]
        return await self._attempts(args, SEND_TIMEOUT_SEC, ())

    async def system_event(self, text: str, session_key: str | None = None) -> bool:
        """Wake the orchestrating agent: ``openclaw system event --text TEXT --mode now`` (``--session-key`` for
        one agent session; else the main one), retried once."""
        args = ["system", "event", "--text", text, "--mode", "now"]
        if session_key:
            args += ["--session-key", session_key]
        return await self._attempts(args, EVENT_TIMEOUT_SEC, (self.event_retry_after,))

    def _argv(self) -> list[str]:
        return [self.binary, *(["--profile", self.profile] if self.profile else [])]

    async def _attempts(self, args: list[str], timeout: float, pauses: Sequence[float]) -> bool:
        argv = [*self._argv(), *args]
        for attempt in range(len(pauses) + 1):
            if attempt:
                await asyncio.sleep(pauses[attempt - 1])
            error = await _run(argv, timeout, self._env())
            if error is None:
                return True
            log.warning("openclaw %s failed (attempt %d): %s", args[0], attempt + 1, error)
        return False

    def _env(self) -> dict[str, str] | None:
        extra = {"OPENCLAW_STATE_DIR": self.state_dir, "OPENCLAW_CONFIG_PATH": self.config_path}
        given = {k: v for k, v in extra.items() if v}
        return {**os.environ, **given} if given else None


def _message_id(stdout: str) -> str | None:
    """``messageId`` of ``openclaw message send --json``'s answer (its last JSON line)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("messageId") is not None:
            return str(data["messageId"])
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    return str(data["messageId"]) if isinstance(data, dict) and data.get("messageId") is not None else None


async def _run(argv: list[str], timeout: float, env: dict[str, str] | None) -> str | None:
    """Run one command; None on success, else what went wrong."""
    try:
        # openclaw message send is known to hang at times: the timeout kills it, never letting it block the notifier.
        await proc.run_async(argv, timeout=timeout, env=env)
    except CommandTimedOut:
        return f"timed out after {timeout:g}s"
    except CommandFailed as e:
        return f"exit {e.returncode}: {e.stderr.strip()[:300]}"
    except CommandError as e:
        return f"cannot run {argv[0]}: {e.reason}"
    return None
