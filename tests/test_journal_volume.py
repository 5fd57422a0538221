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

from conftest import FAKE_CLAUDE, REPO, Claw, wait_until


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
    # Another unit of the same user floods the journal: more than twice the burst journald allows in one
    # interval, so whatever the interval's phase, it is suppressing when the flood ends. (The writer stays
    # alive: journald can only rate-limit lines whose writer's unit it can still look up.)
    flood = f"cu-test-flood-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["systemd-run", "--user", "--wait", "--quiet", f"--unit={flood}", "sh", "-c", "seq 100000; sleep 2"],
        env=claw.env,
        check=True,
        timeout=120,
    )
    try:
        # A turn run right after the flood, inside the interval journald is suppressing: its records are dropped.
        # (Started only now, not before the flood: on a loaded host a flood can take longer than a timed turn.)
        claw.run("respond", session["id"], "second turn", "--user-initiated")
        wait_until(lambda: claw.json("sessions")["sessions"][0]["status"] != "running", timeout=60, what="turn end")
        deadline = time.monotonic() + 90
        lost, pings = 0, 0
        while time.monotonic() < deadline:
            pings += 1
            claw.run("respond", session["id"], f"ping {pings}", "--user-initiated")
            claw.json("wait", session["id"], "--timeout", "30")
            view = claw.json("output", session["id"])
            if any(f"ping {pings}" in line for line in view["lines"]):
                lost = view["lostRecords"]
                break
            time.sleep(2)  # journald is still suppressing: the interval is 30 s
        assert lost >= 3, f"lost records were not reported (lostRecords={lost} after {pings} pings)"
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
