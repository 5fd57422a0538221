"""Sender authority through the real CLI (docs/SAFETY.md): who the OpenClaw plugin says calls (``--via``,
``--sender``, ``--sender-is-owner``, ``--gateway-owner``) decides what may change; a refusal is one line, exit
12, a journal entry naming who tried what, and nothing started, queued or written.

Real units on the shared user manager, the real Claude Code CLI on the scripted API. The same rule seen through
the real gateway and a Telegram chat: test_telegram_authority.py.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest
from conftest import Claw, systemctl, wait_until

OWNER, GUEST, TEAMMATE = "telegram|default|111", "telegram|default|222", "telegram|default|333"
OWNERS = ("--gateway-owner", "telegram:111")
MESSAGES = "send messages to Claude Code sessions"


def as_sender(sender: str | None, via: str = "command", owner: bool = False) -> list[str]:
    args = ["--via", via, *OWNERS]
    if sender:
        args += ["--sender", sender]
    return args + (["--sender-is-owner"] if owner else [])


def run_as(claw: Claw, who: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*claw.cli, *who, *args], env=claw.env, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL
    )


def launch_as(claw: Claw, who: list[str], prompt: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_as(claw, who, "launch", prompt, "--workdir", str(claw.workdir), "--json", *args)
    if proc.returncode == 0:
        claw.launched.append(json.loads(proc.stdout)["unit"])
    return proc


def state_files(claw: Claw) -> dict[str, bytes]:
    """Every file of the state directory and its content (a refusal changes none)."""
    root = claw.state_dir
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refusals(marker: str) -> list[dict[str, Any]]:
    """The journal's refusal entries that mention ``marker`` (a sender or a session id)."""
    out = subprocess.run(
        ["journalctl", "--no-pager", "-q", "-o", "json", "-t", "clawunits-authority"],
        capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [e for e in entries if marker in json.dumps(e)]


def assert_refused(proc: subprocess.CompletedProcess[str], verb: str, hint: str = "allowedSenders") -> None:
    assert proc.returncode == 12, (proc.returncode, proc.stdout, proc.stderr)
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"clawunits: error: only the gateway's owners can {verb}; "), line
    assert hint in line, line


def clawunits_units(claw: Claw) -> set[str]:
    out = systemctl(claw, "list-units", "--all", "--plain", "--no-legend", "clawunits-*").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_a_guest_launches_nothing_and_the_refusal_is_journaled(claw: Claw) -> None:
    tag = uuid.uuid4().hex[:8]
    guest = f"telegram|default|{tag}"
    units, files = clawunits_units(claw), state_files(claw)
    proc = launch_as(claw, as_sender(guest), f"[[text: hi]] from a guest {tag}")
    assert_refused(proc, "launch Claude Code sessions")
    assert json.loads(proc.stdout)["code"] == "not-authorized"
    assert clawunits_units(claw) == units and state_files(claw) == files
    assert claw.json("sessions", "--all")["count"] == 0
    (entry,) = wait_until(lambda: refusals(guest), what="the refusal in the journal")
    assert entry["CLAWUNITS_ACTION"] == "launch" and entry["CLAWUNITS_VIA"] == "command"
    assert entry["MESSAGE"] == f"refused launch for {guest} via command"
    # The same sender, named by the gateway's owner list, launches.
    owner = launch_as(
        claw, ["--via", "command", "--gateway-owner", f"telegram:{tag}", "--sender", guest], "[[text: hi]] x"
    )
    assert owner.returncode == 0, owner.stderr
    assert json.loads(owner.stdout)["launchedBy"] == guest


def test_owners_by_openclaw_word_or_config_and_allowed_senders_drive_sessions(claw: Claw) -> None:
    claw.write_config(allowedSenders=[TEAMMATE])
    by_flag = launch_as(claw, as_sender("telegram|default|999", owner=True), "[[text: a]] flagged owner")
    by_list = launch_as(claw, as_sender(OWNER), "[[text: b]] listed owner")
    teammate = launch_as(claw, as_sender(TEAMMATE), "[[text: c]] teammate", "--multi-turn-disabled")
    assert [p.returncode for p in (by_flag, by_list, teammate)] == [0, 0, 0], [p.stderr for p in (by_flag, teammate)]
    # Another account of the same channel is another sender: the teammate's id there is not allowed.
    other_account = launch_as(claw, as_sender("telegram|other-bot|333"), "[[text: d]] elsewhere")
    assert_refused(other_account, "launch Claude Code sessions")
    # The shell (the host's user) and gateway RPC clients (operator scopes, checked by OpenClaw) are not asked.
    assert run_as(claw, ["--via", "rpc"], "sessions", "--json").returncode == 0
    assert claw.wait(json.loads(teammate.stdout)["id"])["status"] == "completed"


def test_a_guest_cannot_answer_a_permission_request_or_kill_but_may_read(claw: Claw) -> None:
    s = claw.launch("[[bash: touch perm.txt]] ask first", "--permission-mode", "default", "--name", "perm")
    wait_until(lambda: claw.json("sessions")["sessions"][0]["waitingFor"] == "permission", timeout=90,
               what="the permission request")  # fmt: skip
    files = state_files(claw)
    assert_refused(
        run_as(claw, as_sender(GUEST), "respond", "perm", "allow"), "answer Claude Code's permission requests"
    )
    assert_refused(
        run_as(claw, as_sender(GUEST), "respond", "--interrupt", "perm", "stop"), "interrupt Claude Code sessions"
    )
    assert_refused(run_as(claw, as_sender(GUEST), "kill", "perm"), "kill Claude Code sessions")
    assert_refused(run_as(claw, as_sender(GUEST), "fg", "perm", "--channel", "telegram|222"),
                   "stream Claude Code sessions to a chat")  # fmt: skip
    assert state_files(claw) == files, "a refusal queued or wrote something"
    assert claw.json("sessions")["sessions"][0]["waitingFor"] == "permission"
    assert not (claw.workdir / "perm.txt").exists()
    assert len(refusals(s["id"])) == 4
    # Reading is open to every sender the channel admits.
    for args in (["sessions"], ["output", "perm"], ["stats"], ["resume", "--list"]):
        assert run_as(claw, as_sender(GUEST), *args).returncode == 0, args
    # The owner answers.
    assert run_as(claw, as_sender(OWNER), "respond", "perm", "allow").returncode == 0
    wait_until(lambda: (claw.workdir / "perm.txt").exists(), timeout=90, what="the allowed Bash call")


def test_restrict_reads_and_unattended_agent_runs(claw: Claw) -> None:
    claw.write_config(restrictReads=True, agentRunsWithoutRequester="read-only")
    assert_refused(run_as(claw, as_sender(GUEST), "sessions"), "read Claude Code sessions")
    assert run_as(claw, as_sender(OWNER), "sessions").returncode == 0
    # An agent run nobody asked for may read, not launch.
    nobody = ["--via", "tool"]
    assert run_as(claw, nobody, "sessions").returncode == 0
    assert_refused(launch_as(claw, nobody, "[[text: x]] unattended"), "launch Claude Code sessions",
                   hint="agentRunsWithoutRequester is read-only")  # fmt: skip
    # By default it may (cron and heartbeat runs answer waiting sessions).
    claw.write_config()
    assert launch_as(claw, nobody, "[[text: x]] unattended", "--multi-turn-disabled").returncode == 0


def test_launchers_answer_their_own_sessions_only_with_the_switch(claw: Claw) -> None:
    claw.write_config(allowedSenders=[TEAMMATE])
    mine = launch_as(claw, as_sender(TEAMMATE), "[[ask]] which option", "--name", "mine")
    theirs = launch_as(claw, as_sender(OWNER), "[[ask]] which option", "--name", "theirs")
    assert mine.returncode == 0 and theirs.returncode == 0, (mine.stderr, theirs.stderr)
    waiting = lambda: {s["name"]: s["waitingFor"] for s in claw.json("sessions", "--all")["sessions"]}  # noqa: E731
    wait_until(lambda: waiting() == {"mine": "question", "theirs": "question"}, timeout=90, what="both questions")
    # Removed from allowedSenders: nothing of theirs, even their own session, without the switch.
    claw.write_config()
    assert_refused(
        run_as(claw, as_sender(TEAMMATE), "respond", "mine", "Option A"), "send messages to Claude Code sessions"
    )
    claw.write_config(launchersAnswerOwnSessions=True)
    assert run_as(claw, as_sender(TEAMMATE), "respond", "mine", "Option A [[text: ok]]").returncode == 0
    assert_refused(
        run_as(claw, as_sender(TEAMMATE), "respond", "theirs", "Option B"), "send messages to Claude Code sessions"
    )
    assert_refused(launch_as(claw, as_sender(TEAMMATE), "[[text: x]] new"), "launch Claude Code sessions")
    assert run_as(claw, as_sender(TEAMMATE), "kill", "mine").returncode == 0
    assert_refused(run_as(claw, as_sender(TEAMMATE), "kill", "theirs"), "kill Claude Code sessions")
    assert waiting()["theirs"] == "question"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--sender", OWNER, "sessions"], "--gateway-owner, --agent-id and --session-key need --via command or tool"),
        (["--session-key", "agent:main:main", "sessions"], "need --via command or tool"),
        (["--via", "command", "--sender", "telegram|111", "sessions"], "invalid sender 'telegram|111'"),
        (["--via", "tool", "--session-key", "agent:main:\nmain", "sessions"], "invalid session key"),
    ],
)
def test_caller_options_are_checked(claw: Claw, args: list[str], error: str) -> None:
    proc = run_as(claw, [], *args)
    assert proc.returncode == 2 and error in proc.stderr, proc.stderr


def test_allowed_senders_are_checked_in_the_config(claw: Claw) -> None:
    claw.write_config(allowedSenders=["telegram:12345"])
    proc = run_as(claw, [], "sessions")
    assert proc.returncode == 2 and "allowedSenders: invalid sender 'telegram:12345'" in proc.stderr, proc.stderr
