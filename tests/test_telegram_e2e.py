"""The plugin's chat commands through a real gateway's real Telegram channel, against the fake Bot API.

The test acts as Telegram users (fake_telegram): an owner and a guest in direct messages, a member and the
owner in a group. Each command goes the whole way: getUpdates → the gateway's Telegram channel → the
plugin's command → the clawunits CLI → the reply the bot sends with sendMessage to the same chat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_telegram import Chat, User
from telegram_harness import GROUP, GUEST, MEMBER, OWNER, TelegramGateway, telegram_gateway

from clawunits.testing.scripted_api import ScriptedAPI

PLUGIN_COMMANDS = {"claude", "claude_sessions", "claude_fg", "claude_bg", "claude_kill", "claude_respond"}


@pytest.fixture(scope="module")
def tg(
    tmp_path_factory: pytest.TempPathFactory,
    user_manager: dict[str, str],
    scripted_api: ScriptedAPI,
    claude_config_dir: Path,
) -> Iterator[TelegramGateway]:
    with telegram_gateway(tmp_path_factory.mktemp("telegram-e2e"), user_manager, scripted_api, claude_config_dir) as t:
        yield t


def test_the_channel_starts_against_the_fake_bot_api(tg: TelegramGateway) -> None:
    called = set(tg.bot.methods_called())
    assert {"getMe", "deleteWebhook", "getUpdates", "setMyCommands"} <= called, called
    assert not tg.bot.unknown_methods, tg.bot.unknown_methods
    # The plugin's commands are in the bot's menu (Telegram command names: no dashes, lower case).
    menu = {c["command"] for commands in tg.bot.commands.values() for c in commands or []}
    assert menu >= PLUGIN_COMMANDS, menu


@pytest.mark.parametrize(
    ("chat", "user"),
    [(Chat.private(OWNER), OWNER), (Chat.private(GUEST), GUEST), (GROUP, MEMBER), (GROUP, OWNER)],
    ids=["owner-dm", "guest-dm", "group-member", "group-owner"],
)
def test_claude_sessions_is_answered_in_the_chat_it_came_from(tg: TelegramGateway, chat: Chat, user: User) -> None:
    reply = tg.command(chat, user, "/claude_sessions")
    assert reply.method == "sendMessage"
    assert str(reply.chat_id) == str(chat.id)
    assert reply.text == "No sessions found."
    # Nothing else went anywhere: no second reply, nothing to another chat.
    assert [m.index for m in tg.bot.sent(after=reply.index)] == [reply.index]
