"""Who may do what: the one authority rule for every operation that changes a session (docs/SAFETY.md).

Chat access is code execution on the host: a session runs any command as the gateway's user. So whatever
changes a session asks who wants it. The shell user and the gateway's RPC clients (operator scopes, which
OpenClaw checks before the plugin runs) are the host's own; a chat sender, or the person an agent acts for,
must be an owner of the gateway, listed in ``allowedSenders``, or (with ``launchersAnswerOwnSessions``) the
person who launched the session. Reads are open to every sender the channel admits unless ``restrictReads``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from clawunits.errors import NotAuthorized

if TYPE_CHECKING:
    from clawunits.state.config import Settings
    from clawunits.state.models import SessionRecord

JOURNAL_SOCKET = "/run/systemd/journal/socket"
# The journal identifier of refusals: `journalctl -t clawunits-authority` lists who tried what.
JOURNAL_IDENTIFIER = "clawunits-authority"


class Via(StrEnum):
    """How a call reaches clawunits."""

    SHELL = "shell"  # a person at the host (or a script they run): the host's user
    RPC = "rpc"  # a gateway client with the operator scope OpenClaw checked
    COMMAND = "command"  # a chat command: the sender OpenClaw admitted
    TOOL = "tool"  # an agent's tool call: the person the agent acts for (its requester), if any


class Action(StrEnum):
    """What a caller wants; the value completes "only the gateway's owners can ..."."""

    LAUNCH = "launch Claude Code sessions"
    RESUME = "resume Claude Code sessions"
    FORK = "fork Claude Code sessions"
    RESPOND = "send messages to Claude Code sessions"
    INTERRUPT = "interrupt Claude Code sessions"
    PERMISSION = "answer Claude Code's permission requests"
    PLAN = "approve or reject Claude Code's plans"
    KILL = "kill Claude Code sessions"
    RECOVER = "recover Claude Code sessions"
    FOREGROUND = "stream Claude Code sessions to a chat"
    MERGE = "merge Claude Code sessions' branches"
    PULL_REQUEST = "push Claude Code sessions' branches and open pull requests"
    READ = "read Claude Code sessions"
    NOTIFY = "change what Claude Code sessions tell their chat"


# What a launcher may do to a session of their own, with launchersAnswerOwnSessions.
OWN_SESSION = frozenset({Action.RESPOND, Action.INTERRUPT, Action.PERMISSION, Action.PLAN, Action.KILL, Action.NOTIFY})


@dataclass(frozen=True)
class Caller:
    """Who asks. ``sender`` is ``channel|account|id`` as OpenClaw names the person; ``owner`` is OpenClaw's
    word that they own the gateway (``senderIsOwner``, or an ``operator.admin`` gateway client); ``owners`` are
    the gateway's ``commands.ownerAllowFrom`` entries, for a context that does not say (a plugin's command)."""

    via: Via = Via.SHELL
    sender: str | None = None
    owner: bool = False
    owners: tuple[str, ...] = ()
    # The OpenClaw agent and session the call comes from (a tool's agent run, a command's chat session).
    agent_id: str | None = None
    session_key: str | None = None

    @property
    def is_owner(self) -> bool:
        return self.owner or (self.sender is not None and any(_owns(e, self.sender) for e in self.owners))

    def __str__(self) -> str:
        who = self.sender or "an agent run with no requester"
        return f"{who} via {self.via}{' (owner)' if self.is_owner else ''}"


def _owns(entry: str, sender: str) -> bool:
    """OpenClaw's ``commands.ownerAllowFrom`` entry forms: ``channel:id`` (that channel's id) or a bare ``id``;
    wildcards (``*``, ``channel:*``) make nobody an owner, as in OpenClaw."""
    entry = entry.strip()
    channel, _account, sid = sender.split("|")
    prefix, colon, rest = entry.partition(":")
    if not entry or entry == "*" or rest.strip() == "*":
        return False
    if not colon:
        return entry == sid
    return prefix.strip().lower() == channel.lower() and rest.strip() == sid


def may(settings: Settings, caller: Caller, action: Action, session: SessionRecord | None = None) -> bool:
    """The rule (docs/SAFETY.md, "The rule")."""
    if caller.via in (Via.SHELL, Via.RPC):
        return True
    if action is Action.READ and not settings.restrictReads:
        return True
    if caller.is_owner:
        return True
    if caller.sender is None:
        # An agent run nobody asked for (cron, heartbeat, a wake event): the owner set it up.
        if caller.via is Via.TOOL:
            return settings.agentRunsWithoutRequester == "allow" or action is Action.READ
        return False
    if caller.sender in settings.allowedSenders:
        return True
    return (
        settings.launchersAnswerOwnSessions
        and action in OWN_SESSION
        and session is not None
        and session.launched_by == caller.sender
    )


def require(settings: Settings, caller: Caller, action: Action, session: SessionRecord | None = None) -> None:
    """Raise :class:`NotAuthorized` (and record who tried what in the journal) unless ``caller`` may."""
    if may(settings, caller, action, session):
        return
    what = action.name.lower() + (f" of session {session.name} [{session.id}]" if session else "")
    record_refusal(
        f"refused {what} for {caller}",
        SENDER=caller.sender or "",
        VIA=caller.via.value,
        ACTION=action.name.lower(),
        SESSION=session.id if session else "",
    )
    why = (
        "ask one to add you to allowedSenders"
        if caller.sender
        else "this agent run acts for nobody, and agentRunsWithoutRequester is read-only"
    )
    raise NotAuthorized(f"only the gateway's owners can {action.value}; {why}")


def record_refusal(message: str, **fields: str) -> None:
    """One journal entry (``journalctl -t clawunits-authority``; fields ``CLAWUNITS_SENDER``, ``_VIA``,
    ``_ACTION``, ``_SESSION``), in journald's native protocol. Without a journal the refusal still stands: the
    caller gets its error either way."""
    lines = [f"MESSAGE={message}", "PRIORITY=4", f"SYSLOG_IDENTIFIER={JOURNAL_IDENTIFIER}"]
    lines += [f"CLAWUNITS_{k}={v}" for k, v in fields.items() if v and "\n" not in v]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(("\n".join(lines) + "\n").encode(), JOURNAL_SOCKET)
    except OSError:
        pass
