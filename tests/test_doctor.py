"""``clawunits doctor`` against the real user manager and journald: what it finds, what it says to do."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from conftest import Claw


def _doctor(claw: Claw, **env: str) -> tuple[int, dict[str, dict[str, Any]]]:
    saved = dict(claw.env)
    claw.env.update(env)
    try:
        proc = claw.run("doctor", "--json", check=False)
    finally:
        claw.env.clear()
        claw.env.update(saved)
    data = json.loads(proc.stdout)
    assert data["ok"] == (proc.returncode == 0)
    return proc.returncode, {c["name"]: c for c in data["checks"]}


def test_a_working_setup_passes(claw: Claw) -> None:
    claw.write_config(openclawPath="/bin/true")
    code, checks = _doctor(claw)
    assert code == 0
    for name in ("user manager", "resource limits", "journald", "state", "config", "claude cli", "credentials"):
        assert checks[name]["status"] == "ok", checks[name]
    assert "2.1.330" in checks["claude cli"]["detail"]
    assert checks["openclaw"]["status"] == "ok" and checks["linger"]["status"] in ("ok", "warn")
    assert {"user manager", "journald", "linger", "claude cli", "credentials", "openclaw", "notifier", "config"} <= set(
        checks
    )


def test_what_is_wrong_is_named_with_its_fix(claw: Claw) -> None:
    claw.write_config(maxSessions=0, openclawPath="no-such-openclaw")
    empty = claw.state_dir.parent / "empty-claude"
    empty.mkdir()
    code, checks = _doctor(claw, ANTHROPIC_API_KEY="", ANTHROPIC_BASE_URL="", CLAUDE_CONFIG_DIR=str(empty))
    assert code == 1
    assert checks["config"]["status"] == "fail" and "maxSessions" in checks["config"]["detail"]
    assert checks["credentials"]["status"] == "fail" and "ANTHROPIC_API_KEY" in checks["credentials"]["fix"]
    claw.write_config(openclawPath="no-such-openclaw")
    _, checks = _doctor(claw)
    assert checks["openclaw"]["status"] == "warn" and "openclawPath" in checks["openclaw"]["fix"]
    # As systemd sees it (install.sh may have installed and started it on this host, or not).
    active = subprocess.run(
        ["systemctl", "--user", "is-active", "clawunits-notifier.service"], env=claw.env, capture_output=True, text=True
    ).stdout.strip()
    if active == "active":
        assert checks["notifier"]["status"] == "ok"
    else:
        assert checks["notifier"]["status"] == "warn" and "enable --now" in checks["notifier"]["fix"]
        assert active in checks["notifier"]["detail"]
    text = claw.run("doctor", check=False).stdout
    assert "⚠️ openclaw:" in text and "fix: set openclawPath" in text


def test_no_user_manager_is_a_failure_with_the_way_to_start_one(claw: Claw) -> None:
    nowhere = claw.state_dir.parent / "no-runtime-dir"
    nowhere.mkdir(mode=0o700)
    code, checks = _doctor(claw, XDG_RUNTIME_DIR=str(nowhere), DBUS_SESSION_BUS_ADDRESS=f"unix:path={nowhere}/bus")
    assert code == 1
    assert checks["user manager"]["status"] == "fail"
    assert checks["user manager"]["detail"] and checks["user manager"]["fix"]
