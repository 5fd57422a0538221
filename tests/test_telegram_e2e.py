"""The plugin's chat commands and tools through a real gateway's real Telegram channel, against fakes.

The test acts as Telegram users (fake_telegram): an owner and a guest in direct messages, a member and the
owner in a group, and a stranger. A command goes the whole way: getUpdates → the gateway's Telegram channel
→ the plugin's command → the clawunits CLI → the reply the bot sends with sendMessage to the same chat. A
plain message starts an agent turn on the fake model (fake_model), which calls the plugin's tool.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_model import FakeModel
from fake_telegram import Chat, User
from telegram_harness import ACCOUNT, GROUP, GUEST, MEMBER, OWNER, STRANGER, TelegramGateway, telegram_gateway
from test_worktree import git, make_repo

from clawunits.testing.scripted_api import ScriptedAPI

PLUGIN_COMMANDS = {
    "claude", "claude_sessions", "claude_fg", "claude_bg", "claude_kill", "claude_respond", "claude_merge", "claude_pr"
}  # fmt: skip
PLUGIN_TOOLS = {"claude_launch", "claude_sessions", "claude_respond", "claude_kill", "claude_fg", "claude_bg"}
SENDERS = pytest.mark.parametrize(
    ("chat", "user"),
    [(Chat.private(OWNER), OWNER), (Chat.private(GUEST), GUEST), (GROUP, MEMBER), (GROUP, OWNER)],
    ids=["owner-dm", "guest-dm", "group-member", "group-owner"],
)


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModel]:
    fake = FakeModel().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def tg(
    tmp_path_factory: pytest.TempPathFactory,
    user_manager: dict[str, str],
    scripted_api: ScriptedAPI,
    claude_config_dir: Path,
    model: FakeModel,
) -> Iterator[TelegramGateway]:
    root = tmp_path_factory.mktemp("telegram-e2e")
    with telegram_gateway(root, user_manager, scripted_api, claude_config_dir, model=model) as t:
        yield t


def test_the_channel_starts_against_the_fake_bot_api(tg: TelegramGateway) -> None:
    called = set(tg.bot.methods_called())
    assert {"getMe", "deleteWebhook", "getUpdates", "setMyCommands"} <= called, called
    assert not tg.bot.unknown_methods, tg.bot.unknown_methods
    # The plugin's commands are in the bot's menu.
    menu = {c["command"] for commands in tg.bot.commands.values() for c in commands or []}
    assert menu >= PLUGIN_COMMANDS, menu


@SENDERS
def test_claude_sessions_is_answered_in_the_chat_it_came_from(tg: TelegramGateway, chat: Chat, user: User) -> None:
    reply = tg.command(chat, user, "/claude_sessions")
    assert reply.method == "sendMessage"
    assert str(reply.chat_id) == str(chat.id)
    assert reply.text == "No sessions found."
    # Nothing else went anywhere: no second reply, nothing to another chat.
    assert [m.index for m in tg.bot.sent(after=reply.index)] == [reply.index]


def test_a_stranger_is_refused_by_openclaw_not_by_the_plugin(tg: TelegramGateway) -> None:
    # In no allowlist: OpenClaw answers the command itself; the plugin's handler does not run.
    reply = tg.command(Chat.private(STRANGER), STRANGER, "/claude_sessions")
    assert reply.text == "You are not authorized to use this command."


def test_a_plain_message_gets_the_models_reply(tg: TelegramGateway) -> None:
    reply = tg.command(Chat.private(OWNER), OWNER, "hello there", timeout=90)
    assert reply.text == "Model reply: hello there", reply


@SENDERS
def test_an_agent_turn_calls_the_plugin_tool_and_answers_in_the_same_chat(
    tg: TelegramGateway, model: FakeModel, chat: Chat, user: User
) -> None:
    first = len(model.requests)
    reply = tg.command(chat, user, "[[tool: claude_sessions {}]]", timeout=90)
    assert str(reply.chat_id) == str(chat.id)
    assert reply.text == "Here is what the tool said: No sessions found."
    # The tool ran: its result came back to the model in the next request.
    results = [m for q in model.requests[first:] for m in q.get("messages", []) if m.get("role") == "tool"]
    assert any("No sessions found." in str(m.get("content")) for m in results), results
    # The plugin's tools are offered to every admitted sender: owner checks are the plugin's own.
    offered = set(model.tool_names(model.requests[first]))
    assert offered >= PLUGIN_TOOLS, offered


@pytest.mark.parametrize("chat", [Chat.private(OWNER), GROUP], ids=["owner-dm", "group"])
def test_openclaw_message_send_reaches_the_fake_bot_api(tg: TelegramGateway, chat: Chat) -> None:
    # How clawunits' notifier delivers: `openclaw message send --channel telegram --account A --target T`.
    after = tg.bot.mark()
    tg.gw.openclaw(
        "message", "send", "--channel", "telegram", "--account", ACCOUNT, "--target", str(chat.id), "-m", "hi"
    )
    sent = tg.bot.wait_for_message(chat.id, after=after, timeout=30)
    assert sent.text == "hi"


def test_a_finished_worktree_session_is_merged_from_the_chat_by_the_owner_only(tg: TelegramGateway) -> None:
    repo = make_repo(tg.claw.workdir)
    prompt = "[[bash: echo chat > chat.txt]] write it"
    tg.claw.launch(prompt, "--worktree", "--name", "chatty", "--multi-turn-disabled")
    assert tg.claw.json("wait", "chatty", "--ended", "--timeout", "90")["status"] == "completed"

    refused = tg.command(Chat.private(GUEST), GUEST, "/claude_merge chatty")
    refusal = (
        "⚠️ only the gateway's owners can merge Claude Code sessions' branches; ask one to add you to allowedSenders"
    )
    assert refused.text == refusal
    assert not (repo / "chat.txt").exists()
    usage = tg.command(Chat.private(OWNER), OWNER, "/claude_merge --into")
    # Telegram shows the HTML the bot sends: the fake keeps it as sent.
    assert html.unescape(usage.text or "") == "Usage: /claude_merge [--squash] [--into <branch>] [--resolve] <session>"

    reply = tg.command(Chat.private(OWNER), OWNER, "/claude_merge chatty")
    assert reply.text.startswith("🔀 [chatty] merged clawunits/chatty into main (commit "), reply.text
    assert "Worktree removed:" in reply.text
    assert (repo / "chat.txt").read_text() == "chat\n" and git(repo, "status", "--porcelain") == ""
    # Merged: nothing is left to open a pull request for, and the chat is told so in one line.
    no_pr = tg.command(Chat.private(OWNER), OWNER, "/claude_pr chatty")
    assert no_pr.text.startswith("⚠️ ") and "was removed (its branch was merged)" in no_pr.text, no_pr.text
