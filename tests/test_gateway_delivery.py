"""Notifications delivered by the running gateway, as a Telegram user sees them.

A real OpenClaw gateway whose real Telegram channel polls the loopback fake Bot API (tests/fake_telegram.py),
the plugin installed by install.sh, the real notifier in its user unit, sessions on the real Claude Code CLI and
the scripted Messages API. The notifier hands each message to the plugin's delivery service inside the gateway
(clawunits/notifier/gateway.py, plugin/lib/delivery.js). ``openclaw`` on the notifier's path is the recording
stand-in, only so that a test can show no process is started per message.
"""

from __future__ import annotations

import html
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import Claw, wait_until
from fake_telegram import Chat
from notifier_harness import NotifierUnit, Recording
from telegram_harness import ACCOUNT, OWNER, TelegramGateway, delivering_gateway

from clawunits.notifier.gateway import gateway_state, handover_dir

DM = Chat.private(OWNER)


@pytest.fixture(scope="module")
def tg(
    tmp_path_factory: pytest.TempPathFactory,
    user_manager: dict[str, str],
    scripted_api: Any,
    claude_config_dir: Path,
) -> Iterator[tuple[TelegramGateway, NotifierUnit, Recording]]:
    root = tmp_path_factory.mktemp("gateway-delivery")
    with delivering_gateway(root, user_manager, scripted_api, claude_config_dir, maxSessions=10) as running:
        yield running


def texts(t: TelegramGateway, chat: Chat, after: int = 0) -> list[str]:
    """What the chat shows (Telegram strips leading spaces and the fake keeps the HTML escapes)."""
    return [html.unescape(m.text or "") for m in t.bot.sent(chat.id, after=after)]


def heads(
    t: TelegramGateway, chat: Chat, after: int, marks: tuple[str, ...] = ("↩️", "✅", "🔔", "⛔", "❌")
) -> list[str]:
    return [x.split("\n")[0] for x in texts(t, chat, after) if x.startswith(marks)]


def test_a_chat_command_session_is_announced_and_completed_in_the_chat_once_without_a_process(
    tg: tuple[TelegramGateway, NotifierUnit, Recording],
) -> None:
    t, _, rec = tg
    after = t.bot.mark()
    began = time.time()  # the fake Bot API stamps messages with the wall clock
    reply = t.command(DM, OWNER, "/claude [[text: hello from the session]] say hello")
    assert "Session launched" in html.unescape(reply.text or ""), reply.text
    done = t.bot.wait_for_message(DM.id, after=after, timeout=60, contains="Completed")
    took = done.at - began
    print(f"/claude -> ✅ in the chat: {took:.2f} s")
    time.sleep(4)  # anything repeated, or an agent's reply to a wake, would show by now
    shown = heads(t, DM, after)
    name = shown[0].split("]")[0].removeprefix("↩️ [")
    assert shown == [f"↩️ [{name}] Launched:", f"✅ [{name}] Completed"], shown
    assert "hello from the session" in texts(t, DM, after)[-1]
    assert rec.calls() == []  # delivered inside the gateway: no openclaw process
    # A person's /claude wakes no agent: nothing but the reply and the two notifications in the chat (before,
    # every ✅ was followed by the main agent's turn, "⚠️ Authentication failed" with no model configured).
    session = next(s for s in t.claw.json("sessions", "--all")["sessions"] if s["name"] == name)
    assert session["wakes"] is None
    assert len(texts(t, DM, after)) == 3, texts(t, DM, after)
    assert took < 30  # generous: the goal (≤ 5 s) is measured in bench/, not here


def doctor_says(claw: Claw, check: str) -> str:
    """``clawunits doctor``'s line for ``check`` (doctor exits 1 when another check fails here, say credentials)."""
    proc = subprocess.run([*claw.cli, "doctor", "--json"], env=claw.env, capture_output=True, text=True, timeout=60)
    found = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == check)
    return f"{found['status']}: {found['detail']}"


def test_a_hanging_chat_and_a_refusing_chat_hold_up_no_other(
    tg: tuple[TelegramGateway, NotifierUnit, Recording],
) -> None:
    t, notifier, _ = tg
    hanging, blocked = 7001, 7002
    after = t.bot.mark()
    t.bot.fail_chat(hanging, "hang")
    t.bot.fail_chat(blocked, "blocked")
    try:
        for name, chat in (("to-hanging", hanging), ("to-blocked", blocked), ("to-owner", OWNER.id)):
            t.claw.launch(f"[[text: {name} done]] {name}", "--name", name, "--multi-turn-disabled", "--channel",
                          f"telegram|{ACCOUNT}|{chat}")  # fmt: skip
        # The owner's chat gets its messages while one chat hangs and another refuses every send.
        t.bot.wait_for_message(OWNER.id, after=after, timeout=60, contains="[to-owner] Completed")
        assert t.bot.sent(hanging, after=after) == [] and t.bot.sent(blocked, after=after) == []
        # The refused one is tried three times per message, then given up (in the notifier's log).
        wait_until(lambda: "gateway delivery of" in notifier.log() and "giving up on" in notifier.log(),
                   timeout=60, what="the notifier to give up on the blocked chat")  # fmt: skip
        assert "Forbidden: bot was blocked by the user" in notifier.log()
        assert "message(s) waiting" in doctor_says(t.claw, "gateway delivery")  # the hanging chat's, at least
    finally:
        t.bot.release()
    # Answered at last, the hanging chat gets its messages, in order, once.
    wait_until(lambda: len(t.bot.sent(hanging, after=after)) >= 2, timeout=60, what="the hanging chat's messages")
    time.sleep(2)
    assert [html.unescape(m.text or "").split("\n")[0] for m in t.bot.sent(hanging, after=after)] == [
        "↩️ [to-hanging] Launched:", "✅ [to-hanging] Completed"]  # fmt: skip


# -- the chat flows, as the owner types them ----------------------------------------------------------------


def _wait_head(t: TelegramGateway, after: int, head: str, timeout: float = 90) -> str:
    """The text of the first message in the owner's chat since ``after`` that starts with ``head``."""
    try:
        m = wait_until(
            lambda: next((x for x in texts(t, DM, after) if x.startswith(head)), None), timeout=timeout, what=head
        )
    except AssertionError as e:
        raise AssertionError(f"{e}; the chat since: {[x.split(chr(10))[0] for x in texts(t, DM, after)]}") from None
    return str(m)


def test_a_question_is_answered_with_claude_respond_from_the_chat(
    tg: tuple[TelegramGateway, NotifierUnit, Recording],
) -> None:
    t, _, _ = tg
    after = t.bot.mark()
    t.command(DM, OWNER, "/claude --name db-pick [[ask]] which database")
    assert "Claude asks" in _wait_head(t, after, "🔔 [db-pick] Claude asks:")
    reply = t.command(DM, OWNER, "/claude_respond db-pick [[text: postgres it is]] postgres")
    assert "db-pick" in html.unescape(reply.text or ""), reply.text
    assert "postgres it is" in _wait_head(t, after, "✅ [db-pick] Completed")
    assert heads(t, DM, after) == ["↩️ [db-pick] Launched:", "🔔 [db-pick] Claude asks:",
                                   "↩️ [db-pick] Responded:", "✅ [db-pick] Completed"]  # fmt: skip


def test_a_permission_request_is_allowed_from_the_chat(tg: tuple[TelegramGateway, NotifierUnit, Recording]) -> None:
    t, _, _ = tg
    after = t.bot.mark()
    t.claw.launch("[[bash: touch allowed.txt]] ask first", "--name", "perm", "--permission-mode", "default",
                  "--channel", f"telegram|{ACCOUNT}|{OWNER.id}")  # fmt: skip
    assert "Permission to use Bash" in _wait_head(t, after, "🔔 [perm] Claude asks:")
    t.command(DM, OWNER, "/claude_respond perm allow")
    _wait_head(t, after, "✅ [perm] Completed")
    assert (t.claw.workdir / "allowed.txt").exists()


def test_a_plan_is_approved_from_the_chat(tg: tuple[TelegramGateway, NotifierUnit, Recording]) -> None:
    t, _, _ = tg
    after = t.bot.mark()
    t.claw.launch("[[plan: Touch planned.txt.]] [[bash: touch planned.txt]] plan it", "--name", "planner",
                  "--permission-mode", "plan", "--channel", f"telegram|{ACCOUNT}|{OWNER.id}")  # fmt: skip
    assert "Touch planned.txt." in _wait_head(t, after, "📋 [planner] Plan ready:")
    t.command(DM, OWNER, "/claude_respond planner approve")
    _wait_head(t, after, "✅ [planner] Completed")
    assert (t.claw.workdir / "planned.txt").exists()


def test_fg_streams_into_the_chat_until_bg_and_kill_is_reported(
    tg: tuple[TelegramGateway, NotifierUnit, Recording],
) -> None:
    t, _, _ = tg
    after = t.bot.mark()
    t.command(DM, OWNER, "/claude --name streamer [[ask]] first question")
    _wait_head(t, after, "🔔 [streamer] Claude asks:")
    t.command(DM, OWNER, "/claude_fg streamer")
    t.command(DM, OWNER, "/claude_respond streamer [[bash: echo streamed-line]] run it")
    # In the foreground the chat gets the tool call as it happens, not only the level-1 messages.
    wait_until(lambda: any(x.startswith("🔧 Bash") for x in texts(t, DM, after)), timeout=90, what="the 🔧 line")
    _wait_head(t, after, "✅ [streamer] Completed")
    t.command(DM, OWNER, "/claude_bg streamer")
    mark = t.bot.mark()
    t.command(DM, OWNER, "/claude_respond streamer [[bash: echo quiet-line]] again")
    _wait_head(t, mark, "✅ [streamer] Completed")
    assert not any(x.startswith("🔧") for x in texts(t, DM, mark)), texts(t, DM, mark)  # in the background
    # Killed while it waits for an answer (a finished turn's session is "completed": kill leaves it be).
    t.command(DM, OWNER, "/claude_respond streamer [[ask]] one more")
    _wait_head(t, mark, "🔔 [streamer] Claude asks:")
    t.command(DM, OWNER, "/claude_kill streamer")
    _wait_head(t, mark, "⛔ [streamer] Killed")


# -- faults: the notifier and the gateway killed at random points ------------------------------------------
# Last in the module: OpenClaw stops starting the Telegram channel's polling after a series of unclean restarts
# ("channel autostart suppressed"), so chat commands are typed before these, never after.


def _completions(t: TelegramGateway, chat: Chat, after: int) -> Counter[str]:
    return Counter(x for x in texts(t, chat, after) if x.startswith(("↩️", "✅")))


def _conversation(t: TelegramGateway, tag: str, turns: int) -> None:
    """One session, ``turns`` answered turns: 2 + 2 * turns notifications (launched, the first turn's ✅, then
    each answer's ↩️ and ✅), each text unique."""
    s = t.claw.launch(f"[[text: turn 0 {tag}]] start {tag}", "--name", f"run-{tag}", "--channel",
                      f"telegram|{ACCOUNT}|{OWNER.id}")  # fmt: skip
    for i in range(1, turns + 1):
        assert t.claw.wait(s["id"])["status"] == "completed", f"turn {i - 1}"  # a finished turn; still open
        t.claw.run("respond", s["id"], f"[[text: turn {i} {tag}]] go on {i} {tag}", "--user-initiated")
    assert t.claw.wait(s["id"])["status"] == "completed", "the last turn"
    t.claw.run("kill", s["id"])


def _run_with_a_fault(t: TelegramGateway, tag: str, fault: Callable[[], None]) -> None:
    """32 notifications from two conversations at once, ``fault`` striking at a random moment of the run; then
    every one of them is in the chat exactly once."""
    after = t.bot.mark()
    turns, sessions = 7, 2
    with ThreadPoolExecutor(max_workers=sessions + 1) as pool:
        runs = [pool.submit(_conversation, t, f"{tag}-{k}", turns) for k in range(sessions)]
        struck = pool.submit(lambda: (time.sleep(random.uniform(0.5, 10.0)), fault()))
        for future in [*runs, struck]:
            future.result()
    expected = sessions * (2 + 2 * turns)
    wait_until(lambda: sum(_completions(t, DM, after).values()) >= expected, timeout=180,
               what=f"{expected} notifications")  # fmt: skip
    time.sleep(3)  # a repeat would show by now
    got = _completions(t, DM, after)
    assert max(got.values()) == 1, [k.split("\n")[0] for k, n in got.items() if n > 1]
    assert sum(got.values()) == expected, sorted(k.split("\n")[0] for k in got)


@pytest.mark.parametrize("trial", range(10))
def test_a_notifier_killed_at_a_random_point_loses_and_repeats_nothing(
    tg: tuple[TelegramGateway, NotifierUnit, Recording], trial: int
) -> None:
    t, notifier, _ = tg

    def kill_notifier() -> None:
        notifier.kill()
        notifier.start()

    _run_with_a_fault(t, f"n{trial}-{random.randrange(10**6)}", kill_notifier)


@pytest.mark.parametrize("trial", range(10))
def test_a_gateway_killed_at_a_random_point_loses_and_repeats_nothing(
    tg: tuple[TelegramGateway, NotifierUnit, Recording], trial: int
) -> None:
    t, _, _ = tg
    state = handover_dir(t.claw.state_dir)

    def kill_gateway() -> None:
        process = t.gw.process
        assert process is not None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        assert gateway_state(state).status == "down"  # items handed over now wait for it
        if trial == 0:
            assert "is not running" in doctor_says(t.claw, "gateway delivery")
        t.gw.start()
        wait_until(lambda: gateway_state(state).status == "up", timeout=120, what="the gateway's delivery again")

    _run_with_a_fault(t, f"g{trial}-{random.randrange(10**6)}", kill_gateway)
