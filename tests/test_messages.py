"""Every notification and wake text against the seed's formats (docs/NOTIFICATIONS.md, seed §2.2)."""

from __future__ import annotations

from clawunits.notifier import messages as m
from clawunits.state.models import SessionRecord

PROMPT = "Fix the failing test in parser.py and explain why it failed, then run the whole suite again please"
QUOTED = '"Fix the failing test in parser.py and explain why it failed,..."'  # 60 characters + "..."


def record(**changes: object) -> SessionRecord:
    base = SessionRecord(
        id="abcd1234",
        name="fix-bug",
        prompt=PROMPT,
        workdir="/srv/work/proj",
        unit="clawunits-fix-bug-abcd1234.service",
        created_at="2026-01-01T00:00:00.000Z",
        started_at="2026-01-01T00:00:00.000Z",
        completed_at="2026-01-01T00:02:15.000Z",  # 2m15s
        budget_usd=0.5,
    )
    return base.with_changes(**changes)


def test_launched_cuts_the_prompt_at_80() -> None:
    assert m.launched(record()) == f"↩️ [fix-bug] Launched:\n{PROMPT[:80]}..."
    assert m.launched(record(prompt="  short task  ")) == "↩️ [fix-bug] Launched:\nshort task"
    exact = "p" * 80
    assert m.launched(record(prompt=exact)) == f"↩️ [fix-bug] Launched:\n{exact}"


def test_asks_shows_the_last_200_characters() -> None:
    assert m.asks(record(), "Which option?") == "🔔 [fix-bug] Claude asks:\nWhich option?"
    long = "".join(f"{i:03d} " for i in range(200)) + "Which option do you prefer?"
    body = m.asks(record(), long).split("\n", 1)[1]
    assert body.endswith(long[-200:]) and len(body) <= 203


def test_permission_request_names_the_tool_and_the_request() -> None:
    text = m.permission_asks(record(), "Bash", "touch file.txt", "p1")
    assert text == (
        "🔔 [fix-bug] Claude asks:\nPermission to use Bash — touch file.txt\n"
        "Reply allow, deny, or a reason to deny (request p1)."
    )
    assert "Permission to use Write\n" in m.permission_asks(record(), "Write", "", "p2")


def test_responded_cuts_the_message_at_200() -> None:
    assert m.responded(record(), "Option A") == "↩️ [fix-bug] Responded:\nOption A"
    long = "m" * 250
    assert m.responded(record(), long) == f"↩️ [fix-bug] Responded:\n{'m' * 200}..."


def test_completed_has_workdir_cost_and_a_stripped_preview() -> None:
    text = m.completed(record(), "All **done**: `parse_args` ~fixed~ _now_", 0.123456)
    assert text == "✅ [fix-bug] Completed\n   📁 /srv/work/proj\n   💰 $0.1235\n\nAll done: parseargs fixed now"
    # No preview: no blank lines after the cost.
    assert m.completed(record(), "", 0.0) == "✅ [fix-bug] Completed\n   📁 /srv/work/proj\n   💰 $0.0000"
    long = "x" * 450 + "y" * 100
    body = m.completed(record(), long, 1).split("\n\n", 1)[1]
    assert body.endswith("y" * 100) and body.endswith(long[-500:]) and len(body) <= 503


def test_failed_with_and_without_a_reason() -> None:
    head = f"❌ [fix-bug] Failed\n   📁 /srv/work/proj\n   📝 {QUOTED}"
    assert m.failed(record(), "API error 400: bad request") == head + "\n   ⚠️ API error 400: bad request"
    assert m.failed(record(), "") == head


def test_budget_exhausted_and_killed() -> None:
    assert m.budget_exhausted(record(), "budget exhausted: over", 0.51234) == (
        f"⛔ [fix-bug] Budget exhausted\n   📁 /srv/work/proj\n   📝 {QUOTED}\n   💰 $0.5123 of $0.5\n"
        "   ⚠️ budget exhausted: over"
    )
    assert m.killed(record()) == f"⛔ [fix-bug] Killed\n   📁 /srv/work/proj\n   📝 {QUOTED}"


def test_reminder() -> None:
    assert m.reminder(record()) == (
        "⏱️ Session fix-bug [abcd1234] running for 2m15s\n   📁 /srv/work/proj\n"
        "   Use claude_fg to check on it, or claude_kill to stop it."
    )


def test_foreground_texts() -> None:
    r = record()
    assert m.fg_tool("Bash", "ls -la") == "🔧 Bash — ls -la"
    assert m.fg_tool("TodoWrite", "") == "🔧 TodoWrite"
    assert m.fg_waiting(r) == (
        "💬 Session fix-bug [abcd1234] is waiting for input (2m15s)\n   Use claude_respond to reply."
    )
    assert m.fg_completed(r) == f"✅ Claude Code [abcd1234] completed (2m15s)\n   📁 /srv/work/proj\n   📝 {QUOTED}"
    assert m.fg_failed(r, "boom") == (
        f"❌ Claude Code [abcd1234] failed (2m15s)\n   📁 /srv/work/proj\n   📝 {QUOTED}\n   ⚠️ boom"
    )
    assert m.fg_limit(r) == "⛔ Session limit reached — fix-bug [abcd1234] (2m15s)\n   📁 /srv/work/proj"
    assert m.fg_killed(r) == f"⛔ Claude Code [abcd1234] killed (2m15s)\n   📁 /srv/work/proj\n   📝 {QUOTED}"
    assert '📝 "short"' in m.fg_completed(record(prompt="short"))


def test_wake_texts_are_the_seeds() -> None:
    assert m.wake_waiting(record(), "Which one?") == (
        "Multi-turn session is waiting for input.\nName: fix-bug | ID: abcd1234\n\nLast output:\nWhich one?\n\n"
        "Use claude_respond(session='abcd1234', message='...') to send a reply, "
        "or claude_output(session='abcd1234') to see full context."
    )
    assert m.wake_waiting(record(multi_turn=False), "p").startswith("Session is waiting for input.\n")
    assert m.wake_completed(record(), "Done.") == (
        "Claude Code session completed.\nName: fix-bug | ID: abcd1234\nStatus: completed\n\nOutput preview:\n"
        "Done.\n\nUse claude_output(session='abcd1234', full=true) to get the full result and transmit the "
        "analysis to the user."
    )
    long = "z" * 600
    assert "\n" + "..." + "z" * 500 + "\n" in m.wake_completed(record(), long)


def test_strip_markdown() -> None:
    assert m.strip_markdown("*a* **b** `c` _d_ ~e~ #f [g](h)") == "a b c d e #f [g](h)"
