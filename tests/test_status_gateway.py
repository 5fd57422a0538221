"""The live status message through the running gateway, as a Telegram user sees it.

A real OpenClaw gateway whose real Telegram channel talks to the loopback fake Bot API (tests/fake_telegram.py:
``editMessageText`` answers as Telegram does, "message is not modified" included, and keeps every edit), the
plugin installed by install.sh, the real notifier in its user unit, sessions on the real Claude Code CLI and the
scripted Messages API. One gateway start for the whole module (a gateway is CPU-heavy to start).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from fake_telegram import Chat, Sent
from notifier_harness import NotifierUnit, Recording
from telegram_harness import ACCOUNT, OWNER, TelegramGateway, delivering_gateway

DM = Chat.private(OWNER)


@pytest.fixture(scope="module")
def tg(
    tmp_path_factory: pytest.TempPathFactory,
    user_manager: dict[str, str],
    scripted_api: Any,
    claude_config_dir: Path,
) -> Iterator[tuple[TelegramGateway, NotifierUnit, Recording]]:
    root = tmp_path_factory.mktemp("status-gateway")
    with delivering_gateway(root, user_manager, scripted_api, claude_config_dir) as running:
        yield running


def shown(m: Sent) -> str:
    return html.unescape(m.text or "")


def status_messages(t: TelegramGateway, after: int, name: str) -> list[Sent]:
    """The messages in the owner's chat that are ``name``'s status message (its icon, name, then ⏱️ and 💰)."""
    tag = f"[{name}] "
    return [m for m in t.bot.sent(DM.id, after=after) if tag in shown(m).split("\n")[0] and "⏱️" in shown(m)]


def heads(t: TelegramGateway, after: int, name: str) -> list[str]:
    """The first lines of the new messages about ``name`` (its status message left out)."""
    status = {m.message_id for m in status_messages(t, after, name)}
    return [shown(m).split("\n")[0] for m in t.bot.sent(DM.id, after=after)
            if m.message_id not in status and f"[{name}]" in shown(m).split("\n")[0]]  # fmt: skip


def _wait_head(t: TelegramGateway, after: int, name: str, head: str, timeout: float = 90) -> None:
    try:
        wait_until(lambda: head in heads(t, after, name), timeout=timeout, what=head)
    except AssertionError as e:
        raise AssertionError(f"{e}; the chat since: {[shown(m) for m in t.bot.sent(DM.id, after=after)]}") from None


def test_one_status_message_edited_in_place_survives_a_notifier_kill_and_policy_changes_from_the_chat(
    tg: tuple[TelegramGateway, NotifierUnit, Recording],
) -> None:
    t, notifier, rec = tg
    after = t.bot.mark()
    reply = t.command(DM, OWNER, "/claude --notify status --name live [[ask]] pick one")
    assert "Session launched" in shown(reply), reply.text
    _wait_head(t, after, "live", "🔔 [live] Claude asks:")
    wait_until(lambda: status_messages(t, after, "live"), timeout=60, what="the status message")
    session = next(s for s in t.claw.json("sessions", "--all")["sessions"] if s["name"] == "live")
    assert session["notify"] == "status"

    # A long tool: the status message shows it; the notifier is SIGKILLed while it runs, and started again.
    t.command(DM, OWNER, "/claude_respond live [[bash: sleep 12]] [[text: went with A]] A")
    wait_until(lambda: any("🔧 Bash" in html.unescape(e) for m in status_messages(t, after, "live") for e in m.edits),
               timeout=90, what="the tool in the status message")  # fmt: skip
    edits_before = sum(len(m.edits) for m in status_messages(t, after, "live"))
    notifier.kill()
    notifier.start()
    _wait_head(t, after, "live", "✅ [live] Completed")
    wait_until(lambda: shown(status_messages(t, after, "live")[0]).startswith("✅ [live] completed (open"),
               timeout=60, what="the status message to show the finished turn")  # fmt: skip
    assert sum(len(m.edits) for m in status_messages(t, after, "live")) > edits_before  # edited after the restart

    # /claude_notify: from now on the session tells everything (a change to the session, by its owner).
    changed = t.command(DM, OWNER, "/claude_notify live all")
    assert "live" in shown(changed) and "all" in shown(changed), changed.text
    t.command(DM, OWNER, "/claude_respond live [[text: more done]] more")
    _wait_head(t, after, "live", "↩️ [live] Responded:")
    wait_until(lambda: heads(t, after, "live").count("✅ [live] Completed") == 2, timeout=90, what="the second ✅")
    # Back to status, then the session is closed: its status message shows the end.
    t.command(DM, OWNER, "/claude_notify live status")
    t.command(DM, OWNER, "/claude_kill live")
    wait_until(lambda: shown(status_messages(t, after, "live")[0]).startswith("✅ [live] completed\n"),
               timeout=60, what="the status message's final state")  # fmt: skip
    time.sleep(4)  # a repeated message would show by now

    statuses = status_messages(t, after, "live")
    assert len(statuses) == 1, [shown(m) for m in statuses]  # sent once, the notifier's kill notwithstanding
    assert statuses[0].method == "sendMessage"
    assert heads(t, after, "live") == [
        "🔔 [live] Claude asks:", "✅ [live] Completed", "↩️ [live] Responded:", "✅ [live] Completed"
    ]  # fmt: skip
    # Every edit went to that one message (edits of another message id would have been refused by the fake).
    edited = [c for c in t.bot.calls if c.method == "editMessageText"]
    assert edited and {str(c.params.get("message_id")) for c in edited} == {str(statuses[0].message_id)}
    assert rec.calls() == []  # delivered and edited inside the gateway: no openclaw process
    kept = json.loads((t.claw.state_dir / "notifier" / "status.json").read_text())
    assert kept[session["id"]]["message_id"] == str(statuses[0].message_id) and kept[session["id"]]["final"]


def _final(t: TelegramGateway, after: int, name: str) -> bool:
    found = status_messages(t, after, name)
    return bool(found) and shown(found[0]).startswith(f"✅ [{name}] completed\n")


def test_a_notifier_killed_as_the_status_message_goes_out_sends_it_once(
    tg: tuple[TelegramGateway, NotifierUnit, Recording],
) -> None:
    t, notifier, _ = tg
    for k, delay in enumerate((0.3, 1.0, 2.0)):
        after = t.bot.mark()
        name = f"early-{k}"
        t.claw.launch(f"[[bash: sleep 3]] [[text: done {k}]] go", "--name", name, "--notify", "status",
                      "--multi-turn-disabled", "--channel", f"telegram|{ACCOUNT}|{OWNER.id}")  # fmt: skip
        time.sleep(delay)  # the record, its hand-over or its receipt: wherever the notifier is at that moment
        notifier.kill()
        notifier.start()
        _wait_head(t, after, name, f"✅ [{name}] Completed")
        wait_until(lambda a=after, n=name: _final(t, a, n), timeout=60, what="the status message's final state")
        time.sleep(3)
        assert len(status_messages(t, after, name)) == 1, [shown(m) for m in t.bot.sent(DM.id, after=after)]
        assert heads(t, after, name) == [f"✅ [{name}] Completed"]
