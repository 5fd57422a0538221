"""Sender authority as chat users meet it (docs/safety.md): a real gateway's real Telegram channel against the
loopback fake Bot API, the plugin as install.sh installs it, the real clawunits CLI and session units.

The gateway admits the OWNER and a GUEST to direct messages and a MEMBER to the GROUP; only the owner is in
``commands.ownerAllowFrom``. Each test checks what the sender sees in the chat and that nothing started.
"""

from __future__ import annotations

import html
import json
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import wait_until
from fake_model import FakeModel
from fake_telegram import Chat, User
from telegram_harness import ACCOUNT, GROUP, GUEST, MEMBER, OWNER, TelegramGateway, telegram_gateway
from test_authority import refusals

from clawunits.testing.scripted_api import ScriptedAPI

REFUSED = "⚠️ only the gateway's owners can {}; ask one to add you to allowedSenders"


def sender(user: User) -> str:
    return f"telegram|{ACCOUNT}|{user.id}"


def refused(user: User, since: float) -> list[dict[str, Any]]:
    """The journal's refusals of ``user`` since ``since`` (time.time(); the journal keeps earlier runs')."""
    return [e for e in refusals(sender(user)) if int(e["__REALTIME_TIMESTAMP"]) >= since * 1_000_000]


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
    root = tmp_path_factory.mktemp("telegram-authority")
    with telegram_gateway(root, user_manager, scripted_api, claude_config_dir, model=model) as t:
        yield t


def says(tg: TelegramGateway, chat: Chat, user: User, text: str, timeout: float = 90) -> str:
    """``user`` types ``text`` in ``chat``; the bot's answer there, as the user reads it."""
    return html.unescape(tg.command(chat, user, text, timeout=timeout).text or "")


def sessions(tg: TelegramGateway) -> list[dict[str, Any]]:
    return tg.claw.json("sessions", "--all")["sessions"]


def ids(tg: TelegramGateway) -> set[str]:
    return {s["id"] for s in sessions(tg)}


def with_config(tg: TelegramGateway, **options: Any) -> dict[str, Any]:
    """Add ``options`` to the clawunits config the plugin synced; returns the config as it was."""
    before = tomllib.loads(tg.claw.config_path.read_text())
    tg.claw.config_path.write_text(tomli_w.dumps({**before, **options}))
    return before


def test_the_owner_launches_from_a_direct_message_and_a_group(tg: TelegramGateway) -> None:
    reply = says(tg, Chat.private(OWNER), OWNER, "/claude --name owners [[text: hi]] hello")
    assert reply.startswith("Session launched.\nName: owners\n"), reply
    (s,) = [s for s in sessions(tg) if s["name"] == "owners"]
    tg.claw.launched.append(s["unit"])
    assert s["launchedBy"] == sender(OWNER)
    # Its notifications go back to the chat it came from, through the bot that was asked.
    assert s["originChannel"] == f"telegram|{ACCOUNT}|{OWNER.id}"
    reply = says(tg, GROUP, OWNER, "/claude --name in-group [[text: hi]] hello")
    assert reply.startswith("Session launched.\nName: in-group\n"), reply
    (g,) = [s for s in sessions(tg) if s["name"] == "in-group"]
    tg.claw.launched.append(g["unit"])
    # A command typed in a group is answered in the group, not in the sender's direct messages.
    assert (g["originChannel"], g["launchedBy"]) == (f"telegram|{ACCOUNT}|{GROUP.id}", sender(OWNER))


@pytest.mark.parametrize(("chat", "user"), [(Chat.private(GUEST), GUEST), (GROUP, MEMBER)], ids=["guest-dm", "member"])
def test_a_guest_or_group_member_launches_nothing(tg: TelegramGateway, chat: Chat, user: User) -> None:
    before, t0 = ids(tg), time.time()
    reply = says(tg, chat, user, f"/claude [[text: hi]] launched by {user.id}")
    assert reply == REFUSED.format("launch Claude Code sessions"), reply
    assert ids(tg) == before
    (entry,) = wait_until(lambda: refused(user, t0), what="the refusal in the journal")
    assert (entry["CLAWUNITS_ACTION"], entry["CLAWUNITS_VIA"]) == ("launch", "command")


def test_a_sender_in_allowed_senders_launches(tg: TelegramGateway) -> None:
    before = with_config(tg, allowedSenders=[sender(GUEST)])
    try:
        reply = says(tg, Chat.private(GUEST), GUEST, "/claude --name guests [[text: hi]] allowed")
    finally:
        tg.claw.config_path.write_text(tomli_w.dumps(before))
    assert reply.startswith("Session launched.\nName: guests\n"), reply
    (s,) = [s for s in sessions(tg) if s["name"] == "guests"]
    tg.claw.launched.append(s["unit"])
    assert s["launchedBy"] == sender(GUEST)


def test_an_agent_run_for_a_guest_cannot_launch(tg: TelegramGateway, model: FakeModel) -> None:
    """The guest asks the agent, which calls claude_launch for them: the tool refuses (the owner's same call
    gets past the rule to the pre-launch guards, which this agent's workspace does not satisfy)."""
    before, t0 = ids(tg), time.time()
    call = '[[tool: claude_launch {"prompt": "[[text: hi]] via the agent", "name": "agent-launched"}]]'
    first = len(model.requests)
    says(tg, Chat.private(GUEST), GUEST, call)
    assert "only the gateway's owners can launch Claude Code sessions" in tool_results(model, first)
    assert ids(tg) == before
    (entry,) = wait_until(
        lambda: [e for e in refused(GUEST, t0) if e.get("CLAWUNITS_VIA") == "tool"], what="the tool's refusal"
    )
    assert entry["CLAWUNITS_ACTION"] == "launch"
    first = len(model.requests)
    says(tg, Chat.private(OWNER), OWNER, call)
    owner = tool_results(model, first)
    assert "only the gateway's owners" not in owner and "Launch blocked" in owner, owner
    assert ids(tg) == before


def tool_results(model: FakeModel, first: int) -> str:
    """What the plugin's tool answered in the newest agent turn since request ``first`` (the owner's and the
    guest's direct messages share one agent session, so earlier turns' results are in the history too)."""
    newest = [q for q in model.requests[first:] if any(m.get("role") == "tool" for m in q.get("messages", []))]
    assert newest, "no tool result reached the model"
    last = [m for m in newest[-1]["messages"] if m.get("role") == "tool"][-1]
    return json.dumps(last.get("content"), ensure_ascii=False)


def test_a_guest_cannot_allow_the_owners_permission_request(tg: TelegramGateway) -> None:
    claw, t0 = tg.claw, time.time()
    s = claw.launch("[[bash: touch perm.txt]] ask first", "--name", "perm", "--permission-mode", "default",
                    "--channel", f"telegram|{ACCOUNT}|{OWNER.id}")  # fmt: skip
    waiting = lambda: [x["waitingFor"] for x in sessions(tg) if x["name"] == "perm"]  # noqa: E731
    wait_until(lambda: waiting() == ["permission"], timeout=90, what="the permission request")
    reply = says(tg, Chat.private(GUEST), GUEST, "/claude_respond perm allow")
    assert reply == REFUSED.format("answer Claude Code's permission requests"), reply
    assert waiting() == ["permission"]
    assert not (claw.workdir / "perm.txt").exists()
    assert any(e.get("CLAWUNITS_SESSION") == s["id"] for e in refused(GUEST, t0))
    # The owner answers it.
    assert says(tg, Chat.private(OWNER), OWNER, "/claude_respond perm allow").startswith("Message sent to perm [")
    wait_until(lambda: (claw.workdir / "perm.txt").exists(), timeout=90, what="the allowed Bash call")
    assert refused(OWNER, t0) == []
