"""The launch queue as a chat sees it: a real gateway's real Telegram channel against the loopback fake Bot API,
the plugin as install.sh installs it, the notifier unit delivering through the gateway, real session units.

A ``/claude`` beyond maxSessions is answered ``🕒 [NAME] queued (N ahead)``; when the slot frees it starts by
itself and the chat is told ``↩️ [NAME] Launched:`` once, by the notifier (no command answers anybody then).
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_telegram import Chat, Sent
from telegram_harness import OWNER, TelegramGateway, delivering_gateway

DM = Chat.private(OWNER)


@pytest.fixture(scope="module")
def tg(
    tmp_path_factory: pytest.TempPathFactory,
    user_manager: dict[str, str],
    scripted_api: Any,
    claude_config_dir: Path,
) -> Iterator[TelegramGateway]:
    root = tmp_path_factory.mktemp("queue-chat")
    with delivering_gateway(root, user_manager, scripted_api, claude_config_dir, maxSessions=1) as (t, _, _):
        yield t


def ask(t: TelegramGateway, text: str, contains: str) -> Sent:
    """The owner types ``text``; the bot's reply, the first message after it that holds ``contains``
    (notifications of the sessions may come in between)."""
    after = t.bot.mark()
    t.bot.user_says(DM, OWNER, text)
    return t.bot.wait_for_message(DM.id, after=after, timeout=60, contains=contains)


def texts(t: TelegramGateway, after: int) -> list[str]:
    return [html.unescape(m.text or "") for m in t.bot.sent(DM.id, after=after)]


def test_a_queued_chat_launch_is_answered_with_its_place_and_announced_once_when_it_starts(
    tg: TelegramGateway,
) -> None:
    t = tg
    after = t.bot.mark()
    ask(t, "/claude --name busy [[slow: 90]] keep the slot", "Session launched")
    reply = ask(t, "/claude --name later [[text: later done]] wait your turn", "[later]")
    assert html.unescape(reply.text or "").splitlines()[0] == "🕒 [later] queued (0 ahead)", reply.text
    listed = html.unescape(ask(t, "/claude_sessions", "later [").text or "")
    assert "🕒 later [" in listed and "QUEUED #1" in listed, listed

    killed = ask(t, "/claude_kill busy", "terminated")
    t.bot.wait_for_message(DM.id, after=after, timeout=90, contains="[later] Completed")
    time.sleep(3)  # a repeated announcement would show by now
    shown = [x.split("\n")[0] for x in texts(t, after) if x.startswith(("↩️", "✅"))]
    assert shown.count("↩️ [later] Launched:") == 1, shown
    assert shown.count("✅ [later] Completed") == 1, shown
    # Announced when it started, after the slot freed: nobody typed anything since the kill.
    launched = next(m for m in t.bot.sent(DM.id, after=after) if (m.text or "").startswith("↩️ [later] Launched:"))
    assert launched.index > killed.index
