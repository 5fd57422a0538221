"""Kill takes the whole process tree; crashes and deaths without an exit record are reported as failed.

The stand-in CLI (tests/fake_claude.py) speaks the SDK's stream-json protocol and injects faults the
real CLI cannot be made to produce on demand (crash mid-turn, a 2 MB line); everything else is real.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from conftest import FAKE_CLAUDE, Claw, alive, unit_pids, wait_until


def _cmdline(pid: int) -> bytes:
    """A process's command line; empty once it has exited (a tool's short-lived children come and go)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_kill_leaves_no_process_behind(claw: Claw) -> None:
    # Claude Code refuses a bare `sleep 600`; a script started by the Bash tool backgrounds it all the same.
    (claw.workdir / "hold.sh").write_text("sleep 600 &\necho started\nexec tail -f /dev/null\n")
    launched = claw.launch("[[bash: sh hold.sh]]", "--name", "holder")

    def tree_is_up() -> set[int] | None:
        pids = set(unit_pids(claw, launched["unit"]))
        cmdlines = [_cmdline(p) for p in pids]
        return pids if any(b"sleep\x00600" in c for c in cmdlines) else None

    pids = wait_until(tree_is_up, timeout=60, what="the session's Bash tool to start sleep 600")
    assert len(pids) >= 4  # runner, claude, the shell, sleep, tail

    result = claw.json("kill", launched["id"])
    assert result["status"] == "killed" and result["alreadyFinished"] is False
    assert not [p for p in pids if alive(p)], "processes of the killed session survived"
    record = claw.json("sessions")["sessions"][0]
    assert record["status"] == "killed" and record["completedAt"]
    # The runner got SIGTERM and still printed its exit record.
    last = claw.journal(launched["unit"])[-1]
    assert last["type"] == "exit" and last["status"] == "killed"

    again = claw.run("kill", launched["id"])
    assert "already killed" in again.stdout and again.returncode == 0


def test_sigterm_lets_claude_code_flush_its_transcript(claw: Claw) -> None:
    launched = claw.launch("[[slow: 20]] take your time", "--name", "slow-one")
    wait_until(lambda: any(r["type"] == "started" for r in claw.journal(launched["unit"])), what="started record")
    claude_id = claw.json("sessions")["sessions"][0]["claudeSessionId"]
    claw.run("kill", "slow-one")
    transcripts = list(Path(claw.env["CLAUDE_CONFIG_DIR"]).glob(f"projects/*/{claude_id}.jsonl"))
    assert transcripts and "take your time" in transcripts[0].read_text()


def test_completed_session_leaves_no_stray_process(claw: Claw) -> None:
    (claw.workdir / "spawn.sh").write_text("nohup sleep 600 >/dev/null 2>&1 &\necho spawned $!\n")
    launched = claw.launch("[[bash: sh spawn.sh]]", "--name", "spawner", "--multi-turn-disabled")
    final = claw.wait(launched["id"])
    assert final["status"] == "completed"
    result = next(r for r in claw.journal(launched["unit"]) if r["type"] == "tool_result")
    pid = int(result["summary"].split("spawned ")[1].split()[0])
    wait_until(lambda: not alive(pid), timeout=10, what=f"stray sleep {pid} to be reaped")


def test_crash_mid_turn_is_a_failure_with_its_reason(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    launched = claw.launch("[[fake: crash]] go", "--name", "crasher")
    final = claw.wait(launched["id"])
    assert final["status"] == "failed"
    records = claw.journal(launched["unit"])
    error = next(r for r in records if r["type"] == "error")
    assert error["message"].startswith("ProcessError: Command failed with exit code 3 "), error
    assert records[-1]["type"] == "exit" and records[-1]["cause"] == "crash"


def test_huge_line_is_split_and_joined(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    launched = claw.launch("[[fake: huge 2000000]] big", "--name", "huge")
    assert claw.wait(launched["id"])["status"] == "completed"
    raw = subprocess.run(
        ["journalctl", "--no-pager", "-q", f"_SYSTEMD_USER_UNIT={launched['unit']}", "-o", "cat"],
        env=claw.env,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert max(len(line.encode()) for line in raw) < 32 * 1024
    assert sum(1 for line in raw if '"type":"part"' in line) > 60
    texts = [line for line in claw.json("output", launched["id"], "--full")["lines"] if len(line) > 1_000_000]
    assert len(texts) == 1 and len(texts[0]) >= 2_000_000 - 100


def test_runner_killed_without_exit_record_is_failed(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    launched = claw.launch("[[fake: hang]] hang", "--name", "victim")
    wait_until(lambda: any(r["type"] == "started" for r in claw.journal(launched["unit"])), what="started record")
    subprocess.run(
        ["systemctl", "--user", "kill", "--signal", str(int(signal.SIGKILL)), launched["unit"]],
        env=claw.env,
        check=True,
    )
    final = wait_until(
        lambda: (s := claw.json("sessions")["sessions"][0])["status"] == "failed" and s, what="failed status"
    )
    assert "SIGKILL" in final["reason"], final["reason"]
    assert not any(r["type"] == "exit" for r in claw.journal(launched["unit"]))
