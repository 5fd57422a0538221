"""Chat senders as clawunits names them: ``channel|account|id`` (``telegram|main-bot|12345``), the form of
``allowedSenders`` entries, of ``--sender`` and of a session's ``launchedBy``."""

from __future__ import annotations

from clawunits.errors import InvalidInput

SENDER_HINT = "channel|account|id, e.g. telegram|default|12345"
# What an agent run with no requester (cron, heartbeat, a wake event) may do: config agentRunsWithoutRequester.
AGENT_RUN_POLICIES = ("allow", "read-only")


def check_sender(sender: object) -> str:
    """``sender`` if it is ``channel|account|id`` with each part non-empty; else InvalidInput."""
    parts = sender.split("|") if isinstance(sender, str) else []
    if len(parts) != 3 or not all(p.strip() for p in parts) or any(c in str(sender) for c in "\n\0"):
        raise InvalidInput(f"invalid sender {sender!r}", hint=SENDER_HINT)
    return str(sender)


MAX_SESSION_KEY = 512


def check_session_key(key: str) -> str:
    """An OpenClaw session key (``agent:main:main``, ``agent:main:telegram:group:-100…``): printable, one line."""
    if not key.strip() or len(key) > MAX_SESSION_KEY or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidInput(f"invalid session key {key[:80]!r}", hint="an OpenClaw session key such as agent:main:main")
    return key
