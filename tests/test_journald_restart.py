"""journald restarted while sessions print: no session dies, lost lines show as a gap, the notifier follows on.

Real parts: the Claude Code CLI on the scripted API in session units, the notifier unit delivering to the
recording stand-in ``openclaw``, and the host's journald, restarted by ``clawunits.bootstrap`` (the standalone
journald it started here, ``systemd-journald.service`` where systemd is PID 1). A standalone journald has no
fd store, so the restart breaks every stdout stream: the runner must open a new one (runner/journal_stream.py).

This restarts the journald every test on the host writes to: the outage lasts well under a second, and
``restart_journald`` returns only once journald stores lines again.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter

from conftest import Claw, wait_until
from notifier_harness import NotifierUnit, configure, session

from clawunits.bootstrap.journald import restart_journald
from clawunits.systemd.journal import read_after

CHATS = ("alpha", "bravo", "charlie")
TURNS_BEFORE = 2  # finished turns each chat has before the restart
TURNS_AFTER = 3  # and after it


class Chat:
    """Drives one multi-turn session on its own thread: a short tool call per turn, turn after turn."""

    def __init__(self, claw: Claw, name: str, tag: str, restarted: threading.Event) -> None:
        self.claw, self.name, self.tag, self.restarted = claw, name, tag, restarted
        self.turns = 0
        self.turns_after = 0
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._drive, daemon=True)

    def _drive(self) -> None:
        try:
            while self.turns_after < TURNS_AFTER:
                after = self.restarted.is_set()
                self.claw.run(
                    "respond", self.name, f"[[bash: sleep 0.2; echo {self.name} {self.turns}]] turn {self.turns}"
                )
                status = self.claw.wait(self.name, timeout=120)["status"]
                assert status == "completed", f"{self.name} turn {self.turns}: {status}"
                self.turns += 1
                self.turns_after += after
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def seqs(unit: str) -> list[int]:
    return [r.seq for r in read_after(unit).records if r.seq is not None]


def test_sessions_printing_through_a_journald_restart_go_on(claw: Claw) -> None:
    rec = configure(claw)
    tag = secrets.token_hex(3)
    notifier = NotifierUnit(claw, rec).start()
    restarted = threading.Event()
    try:
        channels = {name: f"9{i}" for i, name in enumerate(CHATS)}
        for name in CHATS:
            claw.launch(
                f"[[text: ready {tag}]] {name} {tag}", "--name", name, "--channel", f"telegram|{channels[name]}"
            )
        # A single-turn session whose tool runs across the restart: its next records follow the outage.
        claw.launch("[[bash: touch lone-started; sleep 4; echo done]] lone", "--name", "lone",
                    "--channel", "telegram|99", "--multi-turn-disabled")  # fmt: skip
        for name in CHATS:
            assert claw.wait(name, timeout=120)["status"] == "completed"
        chats = [Chat(claw, name, tag, restarted) for name in CHATS]
        for c in chats:
            c.thread.start()
        wait_until(lambda: all(c.turns >= TURNS_BEFORE or c.error for c in chats), timeout=180, what="turns")
        wait_until(lambda: (claw.workdir / "lone-started").exists(), timeout=60, what="lone's tool")

        started = time.monotonic()
        done = restart_journald()
        outage = time.monotonic() - started
        restarted.set()

        for c in chats:
            c.thread.join(timeout=300)
        errors = {c.name: repr(c.error) for c in chats if c.error}
        assert not errors, errors
        assert claw.json("wait", "lone", "--ended", "--timeout", "90")["status"] == "completed"
        for name in CHATS:
            assert claw.json("kill", name)["status"] == "killed"

        # No session died: each ended as it was ended, with one exit record, after turns past the restart.
        lost: dict[str, int] = {}
        for name in (*CHATS, "lone"):
            s = session(claw, name)
            assert s["status"] == ("completed" if name == "lone" else "killed"), s
            records = [r for r in read_after(s["unit"]).records if r.seq is not None]
            exits = [r for r in records if r.type == "exit"]
            assert len(exits) == 1 and exits[0].get("status") == s["status"], exits
            got = seqs(s["unit"])
            missing = sorted(set(range(1, exits[0].seq + 1)) - set(got))
            lost[name] = len(missing)
            view = claw.json("output", name, "--full")
            # Lines lost to the restart show as a gap, never silently.
            assert view["lostRecords"] == len(missing), (name, missing, view["lostRecords"])
            if missing:
                text = claw.run("output", name, "--full").stdout
                assert "record(s) lost" in text, text
        assert all(c.turns_after >= TURNS_AFTER for c in chats)

        # The notifier followed on by itself: every end notified exactly once, nothing sent twice.
        units = [session(claw, n)["unit"] for n in (*CHATS, "lone")]
        wait_until(lambda: all(any("Killed" in t for t in rec.texts(channels[n])) for n in CHATS), timeout=90,
                   what="the kill notices")  # fmt: skip
        wait_until(lambda: any("Completed" in t for t in rec.texts("99")), timeout=90, what="lone's end")
        notifier.settle(*units)
        assert notifier.active(), "the notifier died"
    finally:
        restarted.set()
        notifier.close()
    texts = rec.texts()
    dupes = {t.split("\n")[0]: n for t, n in Counter(texts).items() if n > 1}
    assert not dupes, dupes
    for name in CHATS:
        heads = [t.split("\n")[0] for t in rec.texts(channels[name])]
        assert heads.count(f"⛔ [{name}] Killed") == 1, heads
    assert [t.split("\n")[0] for t in rec.texts("99")].count("✅ [lone] Completed") == 1
    print(json.dumps({"restart": done, "outageSec": round(outage, 2), "lostRecords": lost}))
