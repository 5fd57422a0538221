"""Crash safety: SIGKILL of Claude Code mid-turn, of the runner, and of the CLI in the middle of writing state.

Each leaves no corrupt file, the session is reported as it really ended, and resume carries on the
conversation. (SIGKILL of the notifier: tests/test_notifier.py.) Everything here is real: the Claude Code CLI
on the scripted API, the user manager, journald.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

from conftest import FAKE_CLAUDE, Claw, unit_pids, wait_until


def _claude_cli_pid(claw: Claw, unit: str) -> int | None:
    for pid in unit_pids(claw, unit):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"claude" in cmdline and b"clawunits" not in cmdline:
            return pid
    return None


def _requests_with(claw: Claw, text: str) -> list[dict[str, Any]]:
    """Bodies of the Messages API requests that mention ``text``."""
    return [r["json"] for r in claw.api.messages_requests() if r.get("json") and text in json.dumps(r["json"])]


def _state_is_sound(claw: Claw) -> list[Path]:
    """Every record parses and is private; returns the leftover temp files (never read by anyone)."""
    for path in (claw.state_dir / "sessions").glob("*.toml"):
        tomllib.loads(path.read_text())
        assert path.stat().st_mode & 0o777 == 0o600, path
    for path in (claw.state_dir / "inbox").glob("*/*/*"):
        if path.parent.name in ("queue", "taken", "done"):
            json.loads(path.read_text())
    # A message's temp file in an inbox's tmp/ matches both patterns: listed once.
    return sorted({*claw.state_dir.rglob(".*.tmp"), *claw.state_dir.glob("inbox/*/tmp/*")})


def _resume_remembers(claw: Claw, ref: str, word: str) -> None:
    tag = uuid.uuid4().hex[:8]
    resumed = claw.launch(f"[[text: back {tag}]] which word was it?", "--resume", ref, "--multi-turn-disabled")
    assert claw.wait(resumed["id"])["status"] == "completed"
    body = _requests_with(claw, "which word was it?")[-1]
    users = json.dumps([m for m in body["messages"] if m["role"] == "user"])
    assert word in users, "the resumed conversation lost its history"


def test_sigkill_of_claude_code_mid_turn_fails_the_session_and_resume_carries_on(claw: Claw) -> None:
    word = f"otter-{uuid.uuid4().hex[:8]}"
    s = claw.launch(f"[[slow: 30]] remember the word {word}", "--name", "cli-crash")
    wait_until(lambda: _requests_with(claw, word), timeout=60, what="the turn to reach the API")
    pid = wait_until(lambda: _claude_cli_pid(claw, s["unit"]), what="the Claude Code process")
    os.kill(pid, signal.SIGKILL)
    final = claw.wait(s["id"], timeout=60)
    assert final["status"] == "failed" and final["endCause"] == "crash", final
    assert final["reason"]
    last = claw.journal(s["unit"])[-1]
    assert last["type"] == "exit" and last["status"] == "failed"
    assert _state_is_sound(claw) == []
    _resume_remembers(claw, "cli-crash", word)


def test_sigkill_of_the_runner_is_reported_and_resume_carries_on(claw: Claw) -> None:
    word = f"heron-{uuid.uuid4().hex[:8]}"
    s = claw.launch(f"[[text: noted]] remember the word {word}", "--name", "runner-crash")
    assert claw.wait(s["id"])["status"] == "completed"  # the turn is done; the runner waits for input
    main = subprocess.run(
        ["systemctl", "--user", "show", "-p", "MainPID", "--value", s["unit"]],
        env=claw.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    os.kill(int(main), signal.SIGKILL)
    final = wait_until(
        lambda: (r := claw.json("sessions", "--all")["sessions"][0])["waitingFor"] is None and r, what="the death"
    )
    assert final["status"] == "completed"  # its task was done; the session is closed, not failed
    assert _state_is_sound(claw) == []
    _resume_remembers(claw, "runner-crash", word)


def test_sigkill_of_clawunits_mid_write_leaves_no_corrupt_state(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    s = claw.launch("[[fake: sleep 600]] a long turn", "--name", "target")
    rng = random.Random(11)
    posted: list[str] = []
    for i in range(40):
        text = f"message {i:02d}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "clawunits", "respond", s["id"], text, "--user-initiated", "--json"],
            env=claw.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        # From the interpreter's start to past the write: a kill lands anywhere along the way.
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if proc.returncode == 0:
            posted.append(text)
    leftovers = _state_is_sound(claw)
    # The record is intact and the session still works.
    record = claw.json("sessions")["sessions"][0]
    assert record["name"] == "target" and record["status"] == "running"
    claw.json("respond", "target", "one more, after the crashes", "--user-initiated")
    # Every message whose respond reported success is queued exactly once; a killed one never half-exists.
    queued = [json.loads(p.read_text())["text"] for p in (claw.state_dir / "inbox" / s["id"] / "queue").iterdir()]
    assert all(queued.count(t) == 1 for t in posted), (posted, queued)
    assert set(queued) <= {f"message {i:02d}" for i in range(40)} | {"one more, after the crashes"}
    # The garbage collector reclaims what killed writers left (only once nobody can be writing it).
    for tmp in leftovers:
        os.utime(tmp, (time.time() - 3600, time.time() - 3600))
    report = claw.json("gc")
    assert sorted(report["tempFilesRemoved"]) == sorted(map(str, leftovers))
    assert _state_is_sound(claw) == []


def test_concurrent_responds_to_one_session_are_serialized(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    s = claw.launch("[[fake: sleep 600]] a long turn", "--name", "crowded")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "clawunits", "respond", s["id"], f"note {i}", "--user-initiated", "--json"],
            env=claw.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(12)
    ]
    ids = [json.loads(p.communicate(timeout=60)[0])["messageId"] for p in procs]
    assert len(set(ids)) == 12
    queued = sorted(json.loads(p.read_text())["text"] for p in (claw.state_dir / "inbox" / s["id"] / "queue").iterdir())
    assert queued == sorted(f"note {i}" for i in range(12))
    assert _state_is_sound(claw) == []
