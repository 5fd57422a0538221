"""Foreground streaming to chat channels: ``clawunits fg/bg --channel`` and the notifier, end to end."""

from __future__ import annotations

from typing import Any

from conftest import Claw, wait_until
from notifier_harness import Emitter, configure, running_notifier, session

FG_HEAD = "Streaming new output... Use claude_bg to detach."


def fg(claw: Claw, ref: str, channel: str, *args: str) -> dict[str, Any]:
    data = claw.json("fg", ref, "--channel", channel, *args)
    assert data["foreground"] is True and data["channel"] == channel
    return data


def test_fg_streams_then_bg_stops_and_the_next_fg_catches_up_exactly(claw: Claw) -> None:
    rec = configure(claw)
    with running_notifier(claw, rec) as n:
        s = claw.launch("[[text: first answer]]", "--name", "watch", "--channel", "telegram|100")
        claw.wait(s["id"])
        first = fg(claw, "watch", "telegram|200", "--lines", "5")
        assert first["catchup"] is None and first["lines"][-1] == "first answer"
        assert first["message"].startswith(f"Session watch [{s['id']}] now in foreground.")
        assert first["message"].endswith(FG_HEAD)

        claw.run("respond", "watch", "[[text: Looking.]] [[bash: echo streamed]]")
        wait_until(lambda: len(rec.texts("200")) >= 4, what="the streamed turn")
        n.settle(s["unit"], wakes=False)
        streamed = rec.texts("200")
        assert streamed[:3] == ["Looking.", "🔧 Bash — echo streamed", "Tool result: streamed"]
        assert streamed[3].startswith(f"✅ Claude Code [{s['id']}] completed (")
        assert streamed[3].endswith(f'   📁 {claw.workdir}\n   📝 "[[text: first answer]]"')
        assert len(streamed) == 4

        assert claw.run("bg", "watch", "--channel", "telegram|200").stdout.strip() == (
            f"Session watch [{s['id']}] moved to background."
        )
        claw.run("respond", "watch", "[[text: missed one]]")
        wait_until(lambda: len(rec.texts("100")) >= 5, what="the second turn's ✅ on the origin channel")
        n.settle(s["unit"], wakes=False)
        assert len(rec.texts("200")) == 4, "output was streamed after bg"

        again = fg(claw, "watch", "telegram|200")
        # Exactly what the channel missed: the message and the reply, nothing it saw already.
        assert again["catchup"] == ["↩️ message: [[text: missed one]]", "missed one"]
        assert again["lines"] == []
        assert "📋 Catchup (2 missed outputs):\n↩️ message: [[text: missed one]]\nmissed one\n" in again["message"]

        claw.run("respond", "watch", "[[text: live again]]")
        wait_until(lambda: len(rec.texts("200")) >= 6, what="streaming to resume")
        n.settle(s["unit"], wakes=False)
    assert rec.texts("200")[4] == "live again" and len(rec.texts("200")) == 6
    third = fg(claw, "watch", "telegram|200")
    assert third["catchup"] is None, "what was streamed must not come back as catch-up"


def test_two_channels_stream_and_foreground_survives_a_notifier_restart(claw: Claw) -> None:
    rec = configure(claw)
    n = running_notifier(claw, rec)
    with n as notifier:
        s = claw.launch("[[text: ready]]", "--name", "shared", "--channel", "telegram|100")
        claw.wait(s["id"])
        other = Emitter.create(claw, "other")  # a second session watched in the same chat
        fg(claw, "shared", "telegram|201")
        fg(claw, "other", "telegram|201")
        fg(claw, "shared", "discord|room|202")
        notifier.stop()
        notifier.start()
        claw.run("respond", "shared", "[[text: to both]]")
        wait_until(lambda: len(rec.texts("201")) >= 2 and len(rec.texts("202")) >= 2, what="both channels")
        notifier.settle(s["unit"], wakes=False)
        for target in ("201", "202"):
            texts = rec.texts(target)
            assert len(texts) == 2 and texts[0] == "to both"
            assert texts[1].startswith(f"✅ Claude Code [{s['id']}] completed")
        assert {(c.channel, c.account) for c in rec.sends("202")} == {("discord", "room")}

        out = claw.run("bg", "--channel", "telegram|201").stdout.strip()
        assert out == f"Moved to background: shared [{s['id']}], other [{other.record.id}]"
        assert claw.run("bg", "--channel", "telegram|201").stdout.strip() == "No session is currently in foreground."
        claw.run("respond", "shared", "[[text: only discord]]")
        wait_until(lambda: len(rec.texts("202")) >= 4, what="discord to stream")
        notifier.settle(s["unit"], wakes=False)
    assert len(rec.texts("201")) == 2
    assert rec.texts("202")[2] == "only discord"


def test_fg_first_shows_the_last_lines_then_coalesces_text_blocks(claw: Claw) -> None:
    rec = configure(claw)
    em = Emitter.create(claw, "blocks", origin_channel="telegram|1")
    go = claw.state_dir.parent / "go"
    em.run(
        [
            *({"type": "text", "text": f"old-{i}"} for i in range(1, 6)),
            {"wait_for": str(go)},
            # Three blocks within 100 ms: one message. Then a pause, a tool call, and one more block.
            {"type": "text", "text": "alpha"},
            {"sleep": 0.05},
            {"type": "text", "text": "bravo"},
            {"sleep": 0.05},
            {"type": "text", "text": "charlie"},
            {"sleep": 1.5},
            {"type": "tool_use", "id": "t1", "tool": "Read", "summary": "/etc/hosts"},
            {"type": "text", "text": "delta"},
            {"sleep": 1.5},
            {"type": "text", "text": "echo"},
        ]
    )
    wait_until(lambda: "old-5" in claw.run("output", "blocks").stdout, what="the old lines")
    with running_notifier(claw, rec) as n:
        first = fg(claw, "blocks", "telegram|300", "--lines", "2")
        assert first["catchup"] is None and first["lines"] == ["old-4", "old-5"]
        go.touch()
        wait_until(lambda: len(rec.texts("300")) >= 4, what="the stream")
        n.settle(em.unit, wakes=False)
    assert rec.texts("300") == ["alpha\nbravo\ncharlie", "🔧 Read — /etc/hosts", "delta", "echo"]


def test_fg_and_bg_errors(claw: Claw) -> None:
    configure(claw)
    missing = claw.run("fg", "no-such-session", "--channel", "telegram|1", check=False)
    assert missing.returncode == 3 and "unknown session" in missing.stderr
    s = claw.launch("[[text: hi]]", "--name", "tty", "--multi-turn-disabled")
    claw.wait(s["id"])
    # Not a terminal (captured output) and no channel: nothing to follow in, a usage error.
    no_channel = claw.run("fg", "tty", check=False)
    assert no_channel.returncode == 2 and "--channel" in no_channel.stderr
    bad = claw.run("fg", "tty", "--channel", "unknown", check=False)
    assert bad.returncode == 2 and "invalid channel" in bad.stderr
    assert claw.run("bg", "--channel", "telegram|1").stdout.strip() == "No session is currently in foreground."
    done = fg(claw, "tty", "telegram|1")
    assert done["message"].endswith("Session is completed. No more output expected.")
    assert session(claw, "tty")["status"] == "completed"
