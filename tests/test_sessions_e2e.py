"""End to end, as a user sees it: the real CLI starts real units that run the real Claude Code CLI
against the loopback scripted Messages API; results are read back from the real journal."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from conftest import Claw, unit_property, wait_until


def test_launch_returns_at_once_and_session_completes(claw: Claw) -> None:
    t0 = time.monotonic()
    launched = claw.launch("say hello")
    elapsed = time.monotonic() - t0
    assert launched["status"] in ("starting", "running")
    assert launched["unit"] == f"clawunits-say-hello-{launched['id']}.service"
    # "Returns at once": it does not wait for Claude (which takes about a second here).
    assert elapsed < 5

    status = subprocess.run(
        ["systemctl", "--user", "status", launched["unit"], "--no-pager"],
        env=claw.env,
        capture_output=True,
        text=True,
    )
    assert launched["unit"] in status.stdout
    assert "clawunits session say-hello" in status.stdout

    final = claw.wait(launched["id"])
    assert final["status"] == "completed", final
    assert final["claudeSessionId"] and len(final["claudeSessionId"]) == 36
    assert final["costUsd"] > 0
    assert final["completedAt"] and final["durationMs"] >= 0

    records = claw.journal(launched["unit"])
    types = [r["type"] for r in records]
    # Multi-turn by default: the task is done (no question), the session is completed and stays open.
    assert types == ["started", "text", "turn_end", "waiting"], types
    assert records[-1]["question"] is False
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert records[0]["claudeSessionId"] == final["claudeSessionId"]
    assert records[0]["cwd"] == str(claw.workdir)
    turn_end = next(r for r in records if r["type"] == "turn_end")
    assert turn_end["subtype"] == "success" and turn_end["isError"] is False
    assert turn_end["costUsd"] == final["costUsd"] and turn_end["turnCostUsd"] == final["costUsd"]
    out = claw.json("output", launched["id"])
    assert "Scripted reply: say hello" in out["lines"]
    assert out["status"] == "completed" and out["result"]["subtype"] == "success"
    text = claw.run("output", "say-hello").stdout
    assert "Scripted reply: say hello" in text and "COMPLETED" in text

    listed = claw.json("sessions")
    assert listed["count"] == 1
    s = listed["sessions"][0]
    for key in (
        "id",
        "name",
        "status",
        "workdir",
        "model",
        "costUsd",
        "claudeSessionId",
        "startedAt",
        "durationMs",
    ):
        assert key in s
    assert s["status"] == "completed" and s["claudeSessionId"] == final["claudeSessionId"]

    # Closing the open session stops its idle runner; the journal ends with the exit record.
    closed = claw.json("kill", launched["id"])
    assert closed["alreadyFinished"] is True and closed["status"] == "completed"
    last = claw.journal(launched["unit"])[-1]
    assert last["type"] == "exit" and last["status"] == "completed"


def test_bash_tool_really_runs_and_is_summarized(claw: Claw) -> None:
    target = claw.workdir / "made-by-claude.txt"
    launched = claw.launch(f"[[bash: echo marker-42 > {target} && seq 1 5000]]", "--name", "tool-run")
    final = claw.wait(launched["id"])
    assert final["status"] == "completed", final
    assert target.read_text().strip() == "marker-42"

    records = claw.journal(launched["unit"])
    use = next(r for r in records if r["type"] == "tool_use")
    assert use["tool"] == "Bash" and "marker-42" in use["summary"]
    result = next(r for r in records if r["type"] == "tool_result")
    assert result["tool"] == "Bash" and result["isError"] is False
    # A summary, never the output: 5,000 lines of seq output must not reach the journal.
    assert len(json.dumps(result)) < 600
    assert not any("4999" in json.dumps(r) for r in records if r["type"] != "text")
    assert f"🔧 Bash — echo marker-42 > {target}"[:40] in "\n".join(claw.json("output", launched["id"])["lines"])


def test_options_reach_claude_code(claw: Claw) -> None:
    """Model, appended system prompt, CLAUDE.md (user settings sources) and cwd arrive at the API."""
    (claw.workdir / "CLAUDE.md").write_text("Project rule: always answer in haiku (marker-claude-md-77).\n")
    before = len(claw.api.requests)
    launched = claw.launch(
        "[[text: ok]] check options",
        "--model",
        "claude-sonnet-4-5",
        "--system-prompt",
        "Appended instruction marker-sys-55.",
        "--multi-turn-disabled",
    )
    assert claw.wait(launched["id"])["status"] == "completed"
    bodies = [json.dumps(r["json"]) for r in claw.api.requests[before:] if r.get("json")]
    mine = [b for b in bodies if "check options" in b]
    assert mine, "the session's request never reached the scripted API"
    assert any('"model": "claude-sonnet-4-5"' in b for b in mine)
    assert any("marker-sys-55" in b for b in mine)
    # The claude_code preset (not an empty system prompt) and the project's CLAUDE.md are loaded.
    assert any("marker-claude-md-77" in b for b in mine)
    assert any("Claude Code" in b for b in mine)
    record = claw.json("sessions")["sessions"][0]
    assert record["model"] == "claude-sonnet-4-5" and record["multiTurn"] is False


def test_api_error_fails_the_session_with_the_reason(claw: Claw) -> None:
    launched = claw.launch("[[error: 400]] this will fail", "--name", "bad-request")
    final = claw.wait(launched["id"])
    assert final["status"] == "failed"
    assert "400" in final["reason"] or "scripted error" in final["reason"], final["reason"]
    records = claw.journal(launched["unit"])
    assert records[-1]["type"] == "exit" and records[-1]["status"] == "failed"

    # The unit reports the failure too, so `systemctl --user --failed` shows it.
    wait_until(
        lambda: unit_property(claw, launched["unit"], "ActiveState") == "failed",
        timeout=15,
        what="the unit to be failed",
    )


def test_budget_exhaustion_is_reported(claw: Claw) -> None:
    launched = claw.launch("[[text: spend]] spend money", "--max-budget-usd", "0.00001", "--name", "tiny-budget")
    final = claw.wait(launched["id"])
    assert final["status"] == "failed"
    assert final["reason"].startswith("budget exhausted"), final["reason"]
    assert claw.journal(launched["unit"])[-1]["cause"] == "budget"


def test_secrets_reach_the_session_but_not_the_store_or_journal(claw: Claw) -> None:
    secret = "sk-ant-test-secret-9f8e7d6c"
    claw.env["ANTHROPIC_API_KEY"] = secret
    launched = claw.launch("[[bash: env | grep -c ANTHROPIC_API_KEY]]", "--name", "env-check")
    final = claw.wait(launched["id"])
    assert final["status"] == "completed"
    # The key did reach the session's processes ...
    result = next(r for r in claw.journal(launched["unit"]) if r["type"] == "tool_result")
    assert result["summary"].endswith(": 1"), result
    # ... and nothing of clawunits' own wrote it down.
    for path in claw.state_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    journal = subprocess.run(
        ["journalctl", "--no-pager", f"_SYSTEMD_USER_UNIT={launched['unit']}", "-o", "json"],
        env=claw.env,
        capture_output=True,
        text=True,
    ).stdout
    assert secret not in journal


def test_state_files_are_private(claw: Claw) -> None:
    launched = claw.launch("[[text: hi]] private", "--name", "private")
    claw.wait(launched["id"])
    assert (claw.state_dir.stat().st_mode & 0o777) == 0o700
    record = claw.state_dir / "sessions" / f"{launched['id']}.toml"
    assert (record.stat().st_mode & 0o777) == 0o600
    assert not list((claw.state_dir / "sessions").glob(".*tmp"))


def test_names_are_generated_and_deduplicated(claw: Claw) -> None:
    a = claw.launch("[[text: a]] Fix the flaky login test", "--multi-turn-disabled")
    b = claw.launch("[[text: b]] Fix the flaky login test", "--multi-turn-disabled")
    assert a["name"] == "text-fix-flaky"
    assert b["name"] == "text-fix-flaky-2"
    assert a["unit"] != b["unit"]
    for s in (a, b):
        claw.wait(s["id"])
    by_name = claw.json("output", "text-fix-flaky-2")
    assert by_name["id"] == b["id"]


def test_stats_survive_from_the_store(claw: Claw) -> None:
    ok = claw.launch("[[text: fine]] one", "--name", "stat-ok")
    bad = claw.launch("[[error: 400]] two", "--name", "stat-bad")
    claw.wait(ok["id"])
    claw.wait(bad["id"])
    stats = claw.json("stats")
    assert stats["totalLaunched"] == 2
    assert stats["sessionsByStatus"]["completed"] == 1 and stats["sessionsByStatus"]["failed"] == 1
    assert stats["totalCostUsd"] > 0 and sum(stats["costPerDay"].values()) == stats["totalCostUsd"]
    assert stats["mostExpensive"]["name"] in ("stat-ok", "stat-bad")
    assert "Launched: 2" in claw.run("stats").stdout


def test_output_lines_and_full(claw: Claw) -> None:
    launched = claw.launch("[[long: 3000]] many lines", "--name", "long-text", "--multi-turn-disabled")
    claw.wait(launched["id"])
    full = claw.json("output", launched["id"], "--full")
    last = claw.json("output", launched["id"], "--lines", "1")
    assert last["lineCount"] == 1 and last["lines"][0] == full["lines"][-1]
    assert full["lineCount"] >= 2
    assert any(len(line) >= 3000 for line in full["lines"])


def test_unit_environment_is_an_allow_list(claw: Claw, tmp_path: Path) -> None:
    dump = tmp_path / "env.txt"
    claw.env["SOME_UNRELATED_SECRET"] = "do-not-pass"
    launched = claw.launch(f"[[bash: env > {dump}]]", "--name", "env-list")
    assert claw.wait(launched["id"])["status"] == "completed"
    env = dump.read_text()
    assert "SOME_UNRELATED_SECRET" not in env
    assert f"ANTHROPIC_BASE_URL={claw.api.url}" in env
    assert "IS_SANDBOX=1" in env and "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1" in env
