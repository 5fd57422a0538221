"""Channel strings, routing of a session's notifications, and splitting text to a channel's size limit.

A channel string is ``channel|target`` or ``channel|account|target`` (``|`` because OpenClaw splits on ``:``);
a bare number is a Telegram chat id, as in the seed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from clawunits.errors import InvalidInput

# Words the seed stored as an origin when it had none.
NO_CHANNEL = frozenset({"", "unknown", "gateway", "command"})
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
# Safe sizes per message; Telegram counts UTF-16 code units.
MAX_TEXT = {"telegram": 4096, "discord": 2000, "slack": 4000, "whatsapp": 4096, "signal": 4000}
DEFAULT_MAX_TEXT = 4000


@dataclass(frozen=True)
class Channel:
    """Where a notification goes: ``openclaw message send --channel C [--account A] --target T``."""

    channel: str
    target: str
    account: str | None = None

    def __str__(self) -> str:
        return "|".join(p for p in (self.channel, self.account, self.target) if p is not None)

    def send_args(self) -> list[str]:
        args = ["--channel", self.channel]
        if self.account:
            args += ["--account", self.account]
        return [*args, "--target", self.target]

    @property
    def max_text(self) -> int:
        return MAX_TEXT.get(self.channel, DEFAULT_MAX_TEXT)


def parse_channel(text: str | None) -> Channel | None:
    """A channel string as a :class:`Channel`, or None when it names no deliverable channel."""
    text = (text or "").strip()
    # Control characters have no place in a channel or target (and would garble the logs they end up in).
    if text in NO_CHANNEL or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    parts = [p.strip() for p in text.split("|")]
    if len(parts) >= 3:
        channel, account, target = parts[0], parts[1], "|".join(parts[2:])
    elif len(parts) == 2:
        channel, account, target = parts[0], None, parts[1]
    elif re.fullmatch(r"-?\d+", text):
        channel, account, target = "telegram", None, text
    else:
        return None
    if not CHANNEL_NAME_RE.match(channel) or not target or (account is not None and not account):
        return None
    return Channel(channel=channel, target=target, account=account)


def check_channel(text: str) -> str:
    """Validate a channel string given by a user (``--channel``); returns it normalized."""
    channel = parse_channel(text)
    if channel is None:
        raise InvalidInput(
            f"invalid channel {text!r}", hint="use channel|target or channel|account|target, e.g. telegram|123456"
        )
    return str(channel)


def agent_channel(workdir: str, agent_channels: Mapping[str, str]) -> str | None:
    """The agentChannels entry for ``workdir``: the longest (most specific) matching path prefix wins."""
    path = workdir.rstrip("/") or "/"
    for prefix in sorted(agent_channels, key=lambda p: len(p.rstrip("/")), reverse=True):
        key = prefix.rstrip("/") or "/"
        if path == key or path.startswith(key if key == "/" else key + "/"):
            return agent_channels[prefix]
    return None


@dataclass(frozen=True)
class Route:
    channel: Channel | None
    why: str


def route(origin: str | None, workdir: str, agent_channels: Mapping[str, str], fallback: str | None) -> Route:
    """Where a session's notifications go: its origin channel, else agentChannels, else fallbackChannel."""
    for source, text in (
        ("origin channel", origin),
        ("agentChannels", agent_channel(workdir, agent_channels)),
        ("fallbackChannel", fallback),
    ):
        channel = parse_channel(text)
        if channel is not None:
            return Route(channel, source)
    return Route(None, f"no origin channel, no agentChannels entry for {workdir}, no fallbackChannel")


def text_units(text: str, channel: Channel) -> int:
    """Length as the channel counts it (UTF-16 code units for Telegram, characters elsewhere)."""
    if channel.channel == "telegram":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


def split_text(text: str, channel: Channel) -> list[str]:
    """Cut ``text`` into messages within the channel's limit: at paragraph, then line, then word breaks."""
    limit = channel.max_text
    if text_units(text, channel) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, limit, channel):
        candidate = current + piece
        if current and text_units(candidate, channel) > limit:
            chunks.append(current.rstrip("\n"))
            current = piece
        else:
            current = candidate
    if current.strip():
        chunks.append(current.rstrip("\n"))
    return [c for c in chunks if c]


def _pieces(text: str, limit: int, channel: Channel) -> list[str]:
    """Lines (with their newline), each cut further when a single line is over the limit."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        while text_units(line, channel) > limit:
            cut = _cut_point(line, limit, channel)
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out


def _cut_point(line: str, limit: int, channel: Channel) -> int:
    lo, hi = 1, len(line)
    while lo < hi:  # the longest prefix within the limit
        mid = (lo + hi + 1) // 2
        if text_units(line[:mid], channel) <= limit:
            lo = mid
        else:
            hi = mid - 1
    space = line.rfind(" ", 0, lo)
    return space + 1 if space > lo // 2 else lo
