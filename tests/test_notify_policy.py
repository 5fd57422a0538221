"""Notify policies (all, status, quiet) and the live status message, with the real notifier unit and real sessions
on the scripted API. Only the gateway is replaced, by the recording stand-in ``openclaw`` (tests/openclaw_standin.py:
it answers ``message send --json`` with a message id as the real one does); the gateway path is in
tests/test_status_gateway.py."""

from __future__ import annotations

import itertools
import json
import subprocess

from conftest import Claw, wait_until
from notifier_harness import configure, running_notifier, session

from clawunits.testing.directives import ASK_TEXT


def heads(texts: list[str]) -> list[str]:
    return [t.split("\n")[0] for t in texts]


def test_status_policy_one_message_edited_in_place_plus_what_needs_the_user_and_the_end(claw: Claw) -> None:
    rec = configure(claw)
    with running_notifier(claw, rec) as n:
        s = claw.launch("[[ask]] look around", "--channel", "telegram|444", "--name", "st",
                        "--notify", "status")  # fmt: skip
        assert session(claw, s["id"])["notify"] == "status"
        wait_until(lambda: any("Claude asks" in t for t in rec.texts()), timeout=60, what="the question")
        claw.run("respond", s["id"], "A please [[bash: sleep 6]] [[text: Going with A.]]")
        # The current tool shows in the status message while it runs.
        wait_until(lambda: any("🔧 Bash" in e.text for e in rec.edits()), timeout=60, what="the tool in the status")
        wait_until(lambda: any("Completed" in t for t in rec.texts()), timeout=60, what="the finished turn")
        claw.run("kill", s["id"])  # closes it: its task was done
        wait_until(lambda: rec.edits() and rec.edits()[-1].text.startswith("✅ [st] completed\n"), timeout=60,
                   what="the status message's final state")  # fmt: skip
        n.settle(s["unit"])
    status_sends = [c for c in rec.sends() if "--json" in c.argv]
    assert len(status_sends) == 1, [c.argv for c in rec.sends()]
    status_id = str(9000 + next(i for i, c in enumerate(rec.calls()) if "--json" in c.argv))  # the stand-in's id
    # It shows the session as it is when sent (running, or already waiting for the answer).
    assert status_sends[0].text.split("\n")[0].split(" ", 1)[1] in ("[st] running", "[st] waiting (question)")
    # Every edit changes that one message, and no two edits in a row say the same.
    edits = rec.edits()
    assert {e.message_id for e in edits} == {status_id}, [e.argv for e in edits]
    assert all(a.text != b.text for a, b in itertools.pairwise(edits))
    final = session(claw, s["id"])
    last = edits[-1].text.split("\n")
    assert last[0] == "✅ [st] completed" and len(last) == 2, last  # no tool line once it is over
    assert last[1].startswith("⏱️ ") and last[1].endswith(f" · 💰 ${final['costUsd']:.4f}"), last
    # New messages: the status message, the question and the finished turn; no ↩️ Launched or Responded.
    pings = heads([c.text for c in rec.sends() if "--json" not in c.argv])
    assert pings == ["🔔 [st] Claude asks:", "✅ [st] Completed"]
    assert any(e.text.startswith("✅ [st] completed (open for follow-ups)") for e in edits)
    assert ASK_TEXT in rec.texts()[1]
    # Edits are at most one every few seconds per session.
    times = [e.t for e in edits]
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(times)]
    print(f"status message: 1 send, {len(edits)} edits, gaps {gaps} s")
    assert all(b - a >= 2.5 for a, b in itertools.pairwise(times)), times


def test_quiet_the_config_default_per_channel_the_fallback_and_a_change_from_the_cli(claw: Claw) -> None:
    rec = configure(claw, notifyPolicy="all", notifyPolicyByChannel={"telegram|555": "quiet", "discord": "status"})
    with running_notifier(claw, rec) as n:
        quiet = claw.launch("[[ask]] q", "--channel", "telegram|555", "--name", "qu")  # quiet by its channel
        # Discord cannot be edited here: under status it gets the news as new messages, and no status message.
        fallback = claw.launch("[[text: fine]] f", "--channel", "discord|777", "--name", "fb", "--multi-turn-disabled")
        loud = claw.launch("[[text: ok]] l", "--channel", "telegram|666", "--name", "lo", "--multi-turn-disabled")
        wait_until(lambda: any("Claude asks" in t for t in rec.texts("555")), timeout=60, what="the quiet question")
        wait_until(lambda: any("Completed" in t for t in rec.texts("777")), timeout=60, what="the fallback's end")
        wait_until(lambda: any("Completed" in t for t in rec.texts("666")), timeout=60, what="the default's end")
        # From now on the quiet session tells everything (clawunits notify: a change to the session).
        out = subprocess.run([*claw.cli, "notify", quiet["id"], "all", "--json"], env=claw.env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["effective"] == "all"
        claw.run("respond", quiet["id"], "go [[text: went]]")
        wait_until(lambda: any("Completed" in t for t in rec.texts("555")), timeout=60, what="the quiet one's end")
        n.settle(quiet["unit"], fallback["unit"], loud["unit"])
    assert heads(rec.texts("555")) == ["🔔 [qu] Claude asks:", "↩️ [qu] Responded:", "✅ [qu] Completed"]
    assert heads(rec.texts("777")) == ["↩️ [fb] Launched:", "✅ [fb] Completed"]
    assert heads(rec.texts("666")) == ["↩️ [lo] Launched:", "✅ [lo] Completed"]
    assert rec.edits() == [] and not any("--json" in c.argv for c in rec.sends())


def test_notify_refuses_an_unknown_policy_and_a_sender_who_may_not(claw: Claw) -> None:
    configure(claw)
    s = claw.launch("[[text: x]] x", "--name", "np", "--multi-turn-disabled")
    bad = subprocess.run([*claw.cli, "notify", s["id"], "loud"], env=claw.env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "loud" in bad.stderr
    stranger = subprocess.run(
        [*claw.cli, "--via", "command", "--sender", "telegram|default|999", "notify", s["id"], "quiet", "--json"],
        env=claw.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert stranger.returncode != 0
    assert json.loads(stranger.stdout)["code"] == "not-authorized", stranger.stdout
    assert session(claw, s["id"])["notify"] is None  # nothing changed
    ok = subprocess.run([*claw.cli, "notify", s["id"], "quiet", "--json"], env=claw.env, capture_output=True,
                        text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0 and session(claw, s["id"])["notify"] == "quiet"
    # A resumed session keeps its policy unless the resume sets one.
    assert claw.wait(s["id"])["status"] == "completed"
    resumed = claw.json("resume", s["id"], "[[text: again]] again", "--multi-turn-disabled")
    assert resumed["notify"] == "quiet"
