"""Crash safety: SIGKILL of Claude Code mid-turn, of the runner, and of the CLI in the middle of writing state.

Each leaves no corrupt file, the session is reported as it really ended, and resume carries on the
conversation. (SIGKILL of the notifier: tests/test_notifier.py.) Everything here is real: the Claude Code CLI
on the scripted API, the user manager, journald.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

from conftest import FAKE_CLAUDE, Claw, unit_pids, unit_property, wait_until

# Runs the CLI frozen before its N-th write step: a kill there lands mid-write for sure.
WRITE_STEPS = Path(__file__).with_name("write_steps.py")


def _claude_cli_pid(claw: Claw, unit: str) -> int | None:
    for pid in unit_pids(claw, unit):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        # The CLI by its program's name: its path may well contain "clawunits" (a checkout of that name).
        program = cmdline.split(b"\0", 1)[0]
        if program.rsplit(b"/", 1)[-1] == b"claude" or b"@anthropic-ai/claude-code" in program:
            return pid
    return None


def _requests_with(claw: Claw, text: str) -> list[dict[str, Any]]:
    """Bodies of the Messages API requests that mention ``text``."""
    return [r["json"] for r in claw.api.messages_requests() if r.get("json") and text in json.dumps(r["json"])]


def _state_is_sound(claw: Claw) -> list[Path]:
    """Every record is whole and private, every message whole; returns the leftover temp files (never read)."""
    for path in (claw.state_dir / "sessions").glob("*.toml"):
        # (An empty file parses as TOML too: a record is whole when it names its session.)
        assert tomllib.loads(path.read_text()).get("id") == path.stem, path
        assert path.stat().st_mode & 0o777 == 0o600, path
    for path in (claw.state_dir / "inbox").glob("*/*/*"):
        if path.parent.name in ("queue", "taken", "done"):
            json.loads(path.read_text())
    # A message's temp file in an inbox's tmp/ matches both patterns: listed once.
    return sorted({*claw.state_dir.rglob(".*.tmp"), *claw.state_dir.glob("inbox/*/tmp/*")})


def _resume_remembers(claw: Claw, ref: str, word: str) -> None:
    tag = uuid.uuid4().hex[:8]
    resumed = claw.launch(f"[[text: back {tag}]] which word was it?", "--resume", ref, "--multi-turn-disabled")
    final = claw.wait(resumed["id"])
    assert final["status"] == "completed", final
    body = _requests_with(claw, "which word was it?")[-1]
    users = json.dumps([m for m in body["messages"] if m["role"] == "user"])
    assert word in users, "the resumed conversation lost its history"


def test_sigkill_of_claude_code_mid_turn_fails_the_session_and_resume_carries_on(claw: Claw) -> None:
    word = f"otter-{uuid.uuid4().hex[:8]}"
    s = claw.launch(f"[[slow: 30]] remember the word {word}", "--name", "cli-crash")
    wait_until(lambda: _requests_with(claw, word), timeout=60, what="the turn to reach the API")
    # Claude Code saves its transcript a moment after the request leaves: killed before that, there is no
    # conversation to resume (docs/RELIABILITY.md). The crash this test is about comes mid-turn, after it.
    transcripts = Path(claw.env["CLAUDE_CONFIG_DIR"]) / "projects"
    wait_until(lambda: any(word in p.read_text() for p in transcripts.rglob("*.jsonl")), what="the transcript")
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
    main = unit_property(claw, s["unit"], "MainPID")
    os.kill(int(main), signal.SIGKILL)
    final = wait_until(
        lambda: (r := claw.json("sessions", "--all")["sessions"][0])["waitingFor"] is None and r, what="the death"
    )
    assert final["status"] == "completed"  # its task was done; the session is closed, not failed
    assert _state_is_sound(claw) == []
    _resume_remembers(claw, "runner-crash", word)


def _respond_frozen_at(claw: Claw, session_id: str, step: int, text: str) -> str | None:
    """Run ``clawunits respond`` frozen before its ``step``-th write step and SIGKILL it there.

    Returns what it was doing when killed, or None if it had fewer steps and ran to its end (then it must
    have succeeded)."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITE_STEPS), str(step), "respond", session_id, text, "--user-initiated", "--json"],
        env=claw.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait (without reaping) until it stops itself or exits.
    info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WSTOPPED | os.WNOWAIT)
    if info.si_code == os.CLD_STOPPED:
        proc.kill()
    _, err = proc.communicate(timeout=60)
    if info.si_code == os.CLD_STOPPED:
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, err)
        return err.strip().splitlines()[-1]
    assert proc.returncode == 0, err
    return None


def test_sigkill_of_clawunits_mid_write_leaves_no_corrupt_state(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    s = claw.launch("[[fake: sleep 600]] a long turn", "--name", "target")
    # One respond per write step, each killed just before that step (the last runs to its end): every point
    # between two file operations of a respond is hit once.
    kills: list[str] = []
    for step in range(1, 200):
        where = _respond_frozen_at(claw, s["id"], step, f"message {step:03d}")
        if where is None:
            break
        kills.append(where)
        try:
            _state_is_sound(claw)  # every record and queued message is whole after each kill
        except (AssertionError, ValueError) as e:  # (a torn TOML or JSON file raises a ValueError)
            e.add_note(f"after the kill at {where}")
            raise
    else:
        raise AssertionError(f"respond did not finish within {step} write steps")
    completed = f"message {len(kills) + 1:03d}"
    # The kills really landed mid-write: inside the atomic write of the message and of the record, between
    # the message's staging and its move into the queue, and they left partial files behind.
    assert len(kills) >= 20, kills
    assert any("write in write_atomically < stage" in k for k in kills), kills
    assert any("write in write_atomically < save" in k for k in kills), kills
    assert any("rename in enqueue" in k for k in kills), kills
    leftovers = _state_is_sound(claw)
    assert any(p.name.endswith(".tmp") for p in leftovers), leftovers
    assert any(p.parent.name == "tmp" and p.suffix == ".json" for p in leftovers), leftovers
    # The record is intact and the session still works.
    record = claw.json("sessions")["sessions"][0]
    assert record["name"] == "target" and record["status"] == "running"
    claw.json("respond", "target", "one more, after the crashes", "--user-initiated")
    # The respond that reported success is queued exactly once, like the one after the crashes; a killed one
    # is queued at most once (if it was killed after the move into the queue) and never half-exists.
    queued = [json.loads(p.read_text())["text"] for p in (claw.state_dir / "inbox" / s["id"] / "queue").iterdir()]
    assert queued.count(completed) == 1 and queued.count("one more, after the crashes") == 1, queued
    assert len(queued) == len(set(queued)), queued
    assert set(queued) <= {f"message {i:03d}" for i in range(1, len(kills) + 2)} | {"one more, after the crashes"}
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
