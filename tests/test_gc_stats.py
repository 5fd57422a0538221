"""``clawunits gc`` and ``stats`` on real sessions, and the unit files loaded by the real user manager."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import tomli_w
from conftest import FAKE_CLAUDE, REPO, Claw, systemctl, unit_properties, unit_property, wait_until
from notifier_harness import configure, launch_all, session

from clawunits.state.models import parse_ts

UNITS = REPO / "units"
RUNTIME_UNITS = Path(os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")) / "systemd" / "user"


def age(claw: Claw, session_id: str, hours: float) -> None:
    """Move a session's timestamps ``hours`` into the past, as if it had finished then."""
    path = claw.state_dir / "sessions" / f"{session_id}.toml"
    data = tomllib.loads(path.read_text())
    for key in ("created_at", "started_at", "completed_at", "last_activity_at"):
        if key in data:
            t = parse_ts(data[key]) - timedelta(hours=hours)
            data[key] = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    path.write_text(tomli_w.dumps(data))


def unit_known(claw: Claw, unit: str) -> bool:
    return unit_property(claw, unit, "LoadState") == "loaded"


def stable_stats(claw: Claw) -> dict[str, Any]:
    data = claw.json("stats")
    figures = {k: data[k] for k in ("totalLaunched", "sessionsByStatus", "totalCostUsd", "costPerDay",
                                    "averageDurationMs")}  # fmt: skip
    # Equal costs tie: which of them is named may change, the figure may not.
    return {**figures, "mostExpensiveUsd": data["mostExpensive"]["costUsd"]}


def test_gc_archives_old_sessions_resets_their_units_and_deletes_beyond_the_limit(claw: Claw) -> None:
    configure(claw, claudePath=str(FAKE_CLAUDE), maxSessions=10)
    *done, running, failed = launch_all(
        claw,
        [
            *((f"task {i}", "--name", f"done-{i}", "--multi-turn-disabled") for i in range(4)),
            ("[[fake: hang]] keep going", "--name", "still-running"),
            ("[[fake: crash]] fall over", "--name", "crashed", "--multi-turn-disabled"),
        ],
    )
    for s in [*done, failed]:
        assert claw.json("wait", s["id"], "--ended", "--timeout", "60")["status"] in ("completed", "failed")
    assert session(claw, failed["id"])["status"] == "failed"
    old = [done[0], done[1], done[2], failed]
    for hours, s in zip((5, 4, 3, 2), old, strict=True):
        age(claw, s["id"], hours)
    assert all(unit_known(claw, s["unit"]) for s in old)  # finished units stay until gc resets them
    before = stable_stats(claw)
    assert before["totalLaunched"] == 6 and before["sessionsByStatus"]["failed"] == 1

    report = claw.json("gc")
    assert sorted(report["archived"]) == sorted(s["id"] for s in old)
    assert sorted(report["unitsReset"]) == sorted(s["unit"] for s in old)
    assert report["deleted"] == []
    assert not any(unit_known(claw, s["unit"]) for s in old)
    assert unit_known(claw, done[3]["unit"]) and unit_known(claw, running["unit"])
    listed = {s["name"] for s in claw.json("sessions")["sessions"]}
    assert listed == {"done-3", "still-running"}
    everything = {s["name"]: s for s in claw.json("sessions", "--all")["sessions"]}
    assert len(everything) == 6 and all(everything[s["name"]]["archived"] for s in old)
    assert stable_stats(claw) == before
    idle = {
        "archived": [],
        "unitsReset": [],
        "deleted": [],
        "worktreesRemoved": [],
        "worktreesKept": {},
        "tempFilesRemoved": [],
        "skipped": [],
        "display": "archived 0 session(s), reset 0 unit(s), deleted 0 session(s), removed 0 worktree(s)",
    }
    assert claw.json("gc") == idle  # idempotent

    # Keep only the two newest finished sessions: the rest go, their numbers stay in the statistics.
    configure(claw, claudePath=str(FAKE_CLAUDE), maxSessions=10, maxPersistedSessions=2)
    report = claw.json("gc")
    assert sorted(report["deleted"]) == sorted([done[0]["id"], done[1]["id"], done[2]["id"]])
    left = {s["name"] for s in claw.json("sessions", "--all")["sessions"]}
    assert left == {"done-3", "crashed", "still-running"}
    assert claw.run("output", done[0]["id"], check=False).returncode == 3
    assert stable_stats(claw) == before
    assert "Launched: 6" in claw.run("stats").stdout
    assert claw.json("sessions", "--status", "running")["count"] == 1  # the open session was left alone


def _install(claw: Claw, tag: str, wrapper: Path) -> dict[str, Path]:
    """The repo's unit files with install.sh's substitutions, under names of this test's own."""
    RUNTIME_UNITS.mkdir(parents=True, exist_ok=True)
    out = {}
    for src in sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.timer")):
        text = src.read_text()
        for placeholder, value in (("@CLAWUNITS@", str(wrapper)), ("@DOCS@", str(REPO / "docs")),
                                   ("@PATH@", f"{Path(sys.executable).parent}:{os.environ['PATH']}")):  # fmt: skip
            text = text.replace(placeholder, value)
        assert "@" not in text.replace("user@", ""), f"{src.name}: a placeholder is left"
        dest = RUNTIME_UNITS / src.name.replace("clawunits-", f"cu-test-{tag}-")
        dest.write_text(text)
        out[src.name] = dest
    return out


def test_unit_files_verify_load_and_run(claw: Claw) -> None:
    rec = configure(claw, claudePath=str(FAKE_CLAUDE))
    tag = secrets.token_hex(3)
    # What install.sh puts for @CLAWUNITS@, with this test's state and config (the user manager has neither).
    wrapper = claw.state_dir.parent / "clawunits"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"export CLAWUNITS_STATE_DIR='{claw.state_dir}' CLAWUNITS_CONFIG='{claw.config_path}' "
        f"OPENCLAW_RECORD='{rec.path}'\n"
        f"exec '{Path(sys.executable).parent / 'clawunits'}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    files = _install(claw, tag, wrapper)
    units = {name: path.name for name, path in files.items()}
    try:
        verify = subprocess.run(
            ["systemd-analyze", "--user", "verify", *map(str, files.values())],
            env=claw.env,
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stderr

        timer = units["clawunits-gc.timer"]
        shown = systemctl(claw, "show", "-p", "LoadState,Unit,TimersMonotonic", timer).stdout
        assert "LoadState=loaded" in shown and f"Unit={units['clawunits-gc.service']}" in shown
        assert "OnUnitActiveUSec=5min" in shown  # every 5 minutes after the last run
        assert "OnStartupUSec=5min" in shown

        # The gc service runs `clawunits gc` to completion (oneshot: start waits for it).
        s = claw.launch("task", "--name", "aged", "--multi-turn-disabled")
        assert claw.json("wait", s["id"], "--ended", "--timeout", "60")["status"] == "completed"
        age(claw, s["id"], 2)
        systemctl(claw, "start", units["clawunits-gc.service"], check=True)
        result = unit_property(claw, units["clawunits-gc.service"], "Result")
        assert result == "success"
        assert claw.json("sessions")["count"] == 0 and claw.json("sessions", "--all")["count"] == 1

        # The notifier service as installed: it starts, stays up and delivers.
        notifier = units["clawunits-notifier.service"]
        props = unit_properties(claw, notifier, "Restart", "Type")
        assert props["Restart"] == "always" and props["Type"] == "simple"
        systemctl(claw, "start", notifier, check=True)
        wait_until(lambda: (claw.state_dir / "notifier" / "since").exists(), what="the notifier to start")
        s2 = claw.launch("hello", "--name", "via-unit", "--multi-turn-disabled", "--channel", "telegram|5")
        wait_until(lambda: len(rec.texts("5")) >= 2, what="the installed notifier to deliver")
        assert rec.texts("5")[0] == "↩️ [via-unit] Launched:\nhello"
        assert systemctl(claw, "is-active", notifier).stdout.strip() == "active"
        assert s2["status"] in ("starting", "running")
    finally:
        for unit in units.values():
            systemctl(claw, "stop", unit)
            systemctl(claw, "reset-failed", unit)
        for path in files.values():
            path.unlink(missing_ok=True)


def test_unit_file_verify_catches_a_bad_file(claw: Claw, tmp_path: Path) -> None:
    # The check above is only worth something if verify complains about a broken file.
    broken = tmp_path / "broken.timer"
    broken.write_text((UNITS / "clawunits-gc.timer").read_text().replace("OnUnitActiveSec", "OnUnitActivSec"))
    (tmp_path / "broken.service").write_text("[Service]\nType=oneshot\nExecStart=/nonexistent/clawunits gc\n")
    verify = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(broken), str(tmp_path / "broken.service")],
        env=claw.env,
        capture_output=True,
        text=True,
    )
    assert "Unknown key" in verify.stderr and "/nonexistent/clawunits" in verify.stderr
