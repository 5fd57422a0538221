"""Journal volume: journald drops lines past a per-user rate limit shared by all user units.

A tool that prints 100,000 lines costs the journal nothing (the runner forwards summaries, never raw tool
output), and when records are lost anyway (another unit flooded the journal) ``output`` says how many.
Real journald, real Claude Code CLI for the tool; the stand-in CLI for the gap test, where only timing counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from conftest import FAKE_CLAUDE, REPO, Claw


def _raw_lines(claw: Claw, unit: str) -> list[str]:
    return subprocess.run(
        ["journalctl", "--no-pager", "-q", f"_SYSTEMD_USER_UNIT={unit}", "-o", "cat"],
        env=claw.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()


def test_a_tool_printing_100000_lines_costs_the_journal_a_few_records(claw: Claw) -> None:
    session = claw.launch("[[bash: seq 100000]]", "--name", "chatty", "--multi-turn-disabled")
    assert claw.wait(session["id"], timeout=120)["status"] == "completed"
    records = [json.loads(line) for line in _raw_lines(claw, session["unit"])]
    assert 5 <= len(records) < 30, f"{len(records)} journal lines for one tool call"
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))  # nothing lost
    result = next(r for r in records if r["type"] == "tool_result")
    assert len(result["summary"]) < 1000, result  # a summary, not the output
    view = claw.json("output", session["id"])
    assert view["lostRecords"] == 0


def test_records_lost_to_the_rate_limit_are_reported(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    session = claw.launch("first turn", "--name", "drowned")
    claw.json("wait", session["id"], "--timeout", "30")
    # Another unit of the same user floods the journal, then a turn runs at once: journald drops its records
    # if the interval the flood ended in is suppressing. Which it is depends on where the flood fell in
    # journald's 30 s intervals (a flood that straddles two may exceed neither's burst), so a turn whose records
    # all got through is followed by another flood; the report of what was lost is what this test is about.
    lost, floods = 0, 0
    while lost == 0 and floods < 3:
        floods += 1
        lost = _flood_then_turn(claw, session["id"], floods)
    assert lost >= 3, f"lost records were not reported (lostRecords={lost} after {floods} flood(s))"


def _flood_then_turn(claw: Claw, session_id: str, n: int) -> int:
    """Flood the journal from another unit, run a turn right after, and return the ``lostRecords`` that
    ``output`` reports once journald lets the session's lines through again."""
    # The writer stays alive a moment: journald can only rate-limit lines whose writer's unit it can look up.
    flood = f"cu-test-flood-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["systemd-run", "--user", "--wait", "--quiet", f"--unit={flood}", "sh", "-c", "seq 100000; sleep 2"],
        env=claw.env,
        check=True,
        timeout=120,
    )
    try:
        claw.run("respond", session_id, f"turn after flood {n}", "--user-initiated")
        claw.json("wait", session_id, "--timeout", "30")
        deadline = time.monotonic() + 90
        pings = 0
        while time.monotonic() < deadline:
            pings += 1
            claw.run("respond", session_id, f"ping {n}.{pings}", "--user-initiated")
            claw.json("wait", session_id, "--timeout", "30")
            view = claw.json("output", session_id)
            if any(f"ping {n}.{pings}" in line for line in view["lines"]):
                return int(view["lostRecords"])
            time.sleep(2)  # journald is still suppressing: the interval is 30 s
        raise AssertionError(f"the session's records never came through after flood {n} ({pings} pings)")
    finally:
        subprocess.run(["systemctl", "--user", "reset-failed", flood], env=claw.env, capture_output=True)


def test_install_offers_and_installs_the_journald_drop_in(tmp_path: Path) -> None:
    env = {**os.environ, "CLAWUNITS_JOURNALD_DROPIN_DIR": str(tmp_path / "journald.conf.d")}
    first = subprocess.run([str(REPO / "install.sh"), "--journal-limit"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    dropin = tmp_path / "journald.conf.d" / "60-clawunits.conf"
    assert "RateLimitBurst=200000" in dropin.read_text() and dropin.stat().st_mode & 0o777 == 0o644
    again = subprocess.run([str(REPO / "install.sh"), "--journal-limit"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "already in place" in again.stdout
    # Where it has no right to write, it says so and changes nothing.
    (tmp_path / "file").write_text("")
    env["CLAWUNITS_JOURNALD_DROPIN_DIR"] = str(tmp_path / "file" / "conf.d")
    denied = subprocess.run([str(REPO / "install.sh"), "--journal-limit"], env=env, capture_output=True, text=True)
    assert denied.returncode == 1 and "cannot write" in denied.stderr
