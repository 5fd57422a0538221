"""Kill, idle timeout and stop leave no process behind, background children included, 20 times in a row.

The repetitions use the stand-in CLI (tests/fake_claude.py ``[[fake: spawn]]``), which leaves the same kinds of
orphans a Bash tool does (``sleep 600 &``, a ``setsid nohup`` double fork, a dev server) in a fraction of the
real CLI's start-up time; one test does it with the real Claude Code CLI and its Bash tool.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from conftest import FAKE_CLAUDE, Claw, alive, wait_until

ROUNDS = 20


def _spawned(claw: Claw, unit: str) -> list[int]:
    for record in claw.journal(unit):
        if record["type"] == "text" and record["text"].startswith("spawned "):
            return [int(p) for p in record["text"].split()[1:]]
    return []


def _end(claw: Claw, how: str, session: dict[str, Any]) -> None:
    if how == "kill":
        # Its turn is over, so the open session closes as completed rather than killed; either way it ends.
        assert claw.json("kill", session["id"])["status"] in ("killed", "completed")
    elif how == "stop":
        subprocess.run(["systemctl", "--user", "stop", session["unit"]], env=claw.env, check=True, timeout=60)
    else:  # idle timeout
        final = claw.json("wait", session["id"], "--ended", "--timeout", "60")
        assert final["endCause"] == "idle-timeout", final


@pytest.mark.parametrize("how", ["kill", "stop", "idle-timeout"])
def test_no_process_survives_the_end_of_a_session(claw: Claw, how: str) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE), maxSessions=ROUNDS + 1, idleTimeoutMinutes=0.02)
    for i in range(ROUNDS):
        session = claw.launch("[[fake: spawn]] leave things running", "--name", f"{how}-{i}")
        pids = wait_until(lambda s=session: _spawned(claw, s["unit"]), timeout=30, what="the children to start")
        assert len(pids) == 3 and all(alive(p) for p in pids)
        _end(claw, how, session)
        # stop and kill return once systemd has emptied the cgroup; the idle runner reaps before it exits.
        survivors = wait_until(
            lambda p=pids: not [x for x in p if alive(x)] or None, timeout=10, what="the children to be gone"
        )
        assert survivors, f"round {i}: processes {pids} outlived the session ({how})"


def test_real_cli_background_children_die_with_an_idle_session(claw: Claw) -> None:
    script = (
        "python3 -m http.server 0 --bind 127.0.0.1 >/dev/null 2>&1 &\na=$!\n"
        "setsid nohup sleep 600 >/dev/null 2>&1 &\nb=$!\n"
        "sleep 600 >/dev/null 2>&1 &\necho pids $a $b $!\n"
    )
    (claw.workdir / "serve.sh").write_text(script)
    claw.write_config(idleTimeoutMinutes=0.05)
    session = claw.launch("[[bash: sh serve.sh]]", "--name", "dev-server")
    result = wait_until(
        lambda: next((r for r in claw.journal(session["unit"]) if r["type"] == "tool_result"), None),
        timeout=60,
        what="the Bash tool's result",
    )
    pids = [int(p) for p in result["summary"].split("pids ", 1)[1].split()[:3]]
    assert len(pids) == 3 and all(alive(p) for p in pids), result
    final = claw.json("wait", session["id"], "--ended", "--timeout", "60")
    assert final["endCause"] == "idle-timeout"
    wait_until(lambda: not [p for p in pids if alive(p)], timeout=10, what="the dev server and sleepers to be gone")
