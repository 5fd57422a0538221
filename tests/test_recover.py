"""Recovery after a reboot or crash: sessions a shutdown interrupted run again as themselves.

Everything is real: sessions are units running the Claude Code CLI on the scripted API, the user manager is
stopped and started again (only where clawunits.bootstrap runs it: containers, CI), the boot unit is the
repo's ``units/clawunits-recover.service`` with install.sh's substitutions, the notifier is the real one
delivering to the recording stand-in ``openclaw``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Claw, wait_until
from notifier_harness import NotifierUnit, Recording, configure, running_notifier, session, systemctl

from clawunits import bootstrap
from clawunits.scripted_api import ASK_TEXT

RUNTIME_UNITS = Path(os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")) / "systemd" / "user"
# Sessions run this clone's code (the unit environment passes only allow-listed variables).
PASS = {"passEnv": ["PYTHONPATH"]}
# Holds the Bash tool mid-turn the first time; after a recovery the same call finishes at once.
HOLD = 'if [ -e held ]; then echo "finished after restart"; else touch held; exec tail -f /dev/null; fi\n'


def _options(claw: Claw, **options: Any) -> Recording:
    return configure(claw, **PASS, **options)


def invocation(claw: Claw, unit: str) -> str:
    return systemctl(claw, "show", "-p", "InvocationID", "--value", unit).stdout.strip()


def load_state(claw: Claw, unit: str) -> str:
    return systemctl(claw, "show", "-p", "LoadState", "--value", unit).stdout.strip()


def said(claw: Claw, marker: str) -> list[dict[str, Any]]:
    """Request bodies the scripted API received that mention ``marker``."""
    return [r["json"] for r in claw.api.messages_requests() if r.get("json") and marker in json.dumps(r["json"])]


@pytest.fixture
def recover_unit(claw: Claw) -> Iterator[str]:
    """units/clawunits-recover.service as install.sh installs it, under a name of this test, for its state."""
    tag = secrets.token_hex(3)
    wrapper = claw.state_dir.parent / "clawunits"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"export CLAWUNITS_STATE_DIR='{claw.state_dir}' CLAWUNITS_CONFIG='{claw.config_path}' PYTHONPATH='{REPO}'\n"
        f"exec '{Path(sys.executable).parent / 'clawunits'}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    text = (REPO / "units" / "clawunits-recover.service").read_text()
    for placeholder, value in (("@CLAWUNITS@", str(wrapper)), ("@DOCS@", str(REPO / "docs")),
                               ("@PATH@", f"{Path(sys.executable).parent}:{os.environ['PATH']}")):  # fmt: skip
        text = text.replace(placeholder, value)
    RUNTIME_UNITS.mkdir(parents=True, exist_ok=True)
    name = f"cu-test-{tag}-recover.service"
    path = RUNTIME_UNITS / name
    path.write_text(text)
    systemctl(claw, "daemon-reload", check=True)
    try:
        yield name
    finally:
        systemctl(claw, "disable", "--runtime", name)
        path.unlink(missing_ok=True)
        systemctl(claw, "daemon-reload")
        systemctl(claw, "reset-failed", name)


def run_boot_unit(claw: Claw, unit: str) -> None:
    """Start the oneshot and wait for it (``start`` returns when ``clawunits recover --boot`` has exited)."""
    systemctl(claw, "start", unit, check=True)
    assert systemctl(claw, "show", "-p", "Result", "--value", unit).stdout.strip() == "success"


def power_cut(claw: Claw, unit: str) -> None:
    """What a crash of the machine leaves: every process of the session gone at once, no exit record, and
    after the reboot no unit either."""
    systemctl(claw, "kill", "--signal=SIGKILL", unit, check=True)
    wait_until(lambda: systemctl(claw, "is-active", unit).stdout.strip() == "failed", what="the unit to die")
    systemctl(claw, "reset-failed", unit, check=True)
    wait_until(lambda: load_state(claw, unit) == "not-found", what="the unit to be gone")


def test_a_crash_is_recovered_by_the_boot_unit_unless_switched_off(claw: Claw, recover_unit: str) -> None:
    rec = _options(claw, recoverOnBoot=False)
    tag = secrets.token_hex(4)
    notifier = NotifierUnit(claw, rec).start()
    try:
        s = claw.launch(f"[[ask]] pick a plan {tag}", "--name", "planner", "--channel", "telegram|71")
        waiting = claw.wait(s["id"])
        assert waiting["status"] == "waiting" and waiting["claudeSessionId"]
        wait_until(lambda: any("Claude asks" in t for t in rec.texts("71")), what="the question")
        notifier.settle(s["unit"])
        first_invocation = invocation(claw, s["unit"])
        # The machine goes down: notifier and session with it, nothing runs a SIGTERM path.
        notifier.kill()
        power_cut(claw, s["unit"])

        down = session(claw, "planner")
        assert down["status"] == "interrupted" and down["endCause"] == "shutdown", down
        assert down["interruptedAt"] and down["recoveries"] == 0
        assert claw.json("sessions", "--status", "interrupted")["count"] == 1

        # At the manager's start, with recoverOnBoot = false: the boot unit leaves it alone.
        run_boot_unit(claw, recover_unit)
        assert session(claw, "planner")["status"] == "interrupted"
        journal = subprocess.run(["journalctl", "--no-pager", "-q", "-o", "cat", "SYSLOG_IDENTIFIER=clawunits-recover",
                                  f"_SYSTEMD_USER_UNIT={recover_unit}"], env=claw.env, capture_output=True,
                                 text=True).stdout  # fmt: skip
        assert "Recovery at boot is off (recoverOnBoot is false)" in journal

        # Switched on (the default): the boot unit resumes it as itself.
        _options(claw)
        run_boot_unit(claw, recover_unit)
        up = session(claw, "planner")
        assert up["status"] == "waiting" and up["waitingFor"] == "question" and up["recoveries"] == 1, up
        assert (up["id"], up["unit"], up["claudeSessionId"]) == (s["id"], s["unit"], waiting["claudeSessionId"])
        assert invocation(claw, s["unit"]) not in ("", first_invocation)
        recovered = wait_until(
            lambda: [r for r in claw.journal(s["unit"]) if r["type"] == "recovered"], what="the recovered record"
        )
        assert len(recovered) == 1 and recovered[0]["claudeSessionId"] == waiting["claudeSessionId"]

        # The notifier comes back and announces it once; the answer reaches the resumed conversation.
        notifier.start()
        claw.run("respond", "planner", f"[[text: going with B {tag}]] B please")
        assert claw.wait("planner")["status"] == "completed"
        body = said(claw, f"going with B {tag}")[-1]
        history = json.dumps(body["messages"])
        assert f"pick a plan {tag}" in history and ASK_TEXT in history
        wait_until(lambda: any("Completed" in t for t in rec.texts("71")), what="the finished turn")
        notifier.settle(s["unit"])
    finally:
        notifier.close()
    where = f'   📁 {claw.workdir}\n   📝 "[[ask]] pick a plan {tag}"'
    texts = rec.texts("71")
    assert texts.count(f"⚠️ [planner] Resumed after restart\n{where}") == 1, texts
    assert [t.split("\n")[0] for t in texts] == [
        "↩️ [planner] Launched:",
        "🔔 [planner] Claude asks:",
        "⚠️ [planner] Resumed after restart",
        "↩️ [planner] Responded:",
        "✅ [planner] Completed",
    ]
    # Nothing left to do: recovering again is a no-op.
    again = claw.json("recover")
    assert again["sessions"] == [] and again["count"] == 0
