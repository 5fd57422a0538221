"""How much a session tells its chat (docs/NOTIFICATIONS.md, "Policies"): ``all`` (the whole matrix),
``status`` (one status message edited in place, plus what needs the user and the end) or ``quiet`` (only what
needs the user and the end)."""

from __future__ import annotations

from enum import StrEnum


class NotifyPolicy(StrEnum):
    ALL = "all"
    STATUS = "status"
    QUIET = "quiet"


NOTIFY_POLICIES = tuple(p.value for p in NotifyPolicy)

# Channels whose sent messages clawunits can edit (through the gateway and through `openclaw message edit`).
# Under `status`, any other channel gets today's matrix as new messages instead (the fallback).
EDITABLE_CHANNELS = frozenset({"telegram"})


def effective_policy(
    session_policy: str | None, channel: str | None, default: str, by_channel: dict[str, str]
) -> NotifyPolicy:
    """The session's own policy, else its channel's override (by the channel string, then the channel's
    name), else the configured default."""
    if session_policy:
        return NotifyPolicy(session_policy)
    if channel:
        name = channel.split("|", 1)[0]
        for key in (channel, name):
            if key in by_channel:
                return NotifyPolicy(by_channel[key])
    return NotifyPolicy(default)
