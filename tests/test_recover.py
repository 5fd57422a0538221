"""Recovery after a reboot or crash: sessions a shutdown interrupted run again as themselves.

Everything is real: sessions are units running the Claude Code CLI on the scripted API, the user manager is
stopped and started again (the one clawunits.bootstrap runs in containers and CI; where systemd is PID 1, a
private manager the test boots itself, see ``own_manager``), the boot unit is the
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Claw, alive, fails, session_files, systemctl, unit_property, wait_until
from notifier_harness import NotifierUnit, Recording, configure, session

from clawunits.bootstrap import boot as bootstrap
from clawunits.bootstrap.private import (
    PrivateManager,
    remove_private_manager,
    restart_private_manager,
    start_private_manager,
)
from clawunits.systemd.journal import syslog_identifier
from clawunits.testing.directives import ASK_TEXT

# Forces the private user manager where the bootstrap's own could be restarted: the code path of a host where
# systemd is PID 1 (its manager belongs to logind), run on a host without it.
PRIVATE_MANAGER = os.environ.get("CLAWUNITS_TEST_PRIVATE_MANAGER") == "1"


def runtime_units(claw: Claw) -> Path:
    """Where runtime units of the manager the test talks to go."""
    return Path(claw.env.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")) / "systemd" / "user"


# Sessions run this clone's code (the unit environment passes only allow-listed variables).
PASS: dict[str, list[str]] = {}
# Holds the Bash tool mid-turn the first time; after a recovery the same call finishes at once.
HOLD = 'if [ -e held ]; then echo "finished after restart"; else touch held; exec tail -f /dev/null; fi\n'


def _options(claw: Claw, **options: Any) -> Recording:
    return configure(claw, **PASS, **options)


def invocation(claw: Claw, unit: str) -> str:
    return unit_property(claw, unit, "InvocationID")


def load_state(claw: Claw, unit: str) -> str:
    return unit_property(claw, unit, "LoadState")


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
        f"export CLAWUNITS_STATE_DIR='{claw.state_dir}' CLAWUNITS_CONFIG='{claw.config_path}'\n"
        # Secrets are not stored with a session: at boot they come from the user's environment (environment.d).
        f"export ANTHROPIC_API_KEY='{claw.env['ANTHROPIC_API_KEY']}'\n"
        f"exec '{Path(sys.executable).parent / 'clawunits'}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    text = (REPO / "units" / "clawunits-recover.service").read_text()
    for placeholder, value in (("@CLAWUNITS@", str(wrapper)), ("@DOCS@", str(REPO / "docs")),
                               ("@PATH@", f"{Path(sys.executable).parent}:{os.environ['PATH']}")):  # fmt: skip
        text = text.replace(placeholder, value)
    units = runtime_units(claw)
    units.mkdir(parents=True, exist_ok=True)
    name = f"cu-test-{tag}-recover.service"
    path = units / name
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
    assert unit_property(claw, unit, "Result") == "success"


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


def test_stopped_or_killed_on_purpose_is_not_recovered_and_recover_is_idempotent(claw: Claw) -> None:
    _options(claw)
    names = ("by-hand", "cut", "cut-then-killed")
    launched = {n: claw.launch(f"[[ask]] question for {n}", "--name", n) for n in names}
    for n in names:
        assert claw.wait(n)["status"] == "waiting"
    # `systemctl --user stop` while the manager runs is a stop on purpose, not a shutdown.
    systemctl(claw, "stop", launched["by-hand"]["unit"], check=True)
    by_hand = session(claw, "by-hand")
    assert by_hand["status"] == "killed" and by_hand["reason"] == "stopped by SIGTERM from outside clawunits"
    power_cut(claw, launched["cut"]["unit"])
    power_cut(claw, launched["cut-then-killed"]["unit"])

    dry = claw.json("recover", "--dry-run")
    assert dry["dryRun"] is True and dry["count"] == 2
    assert {(x["name"], x["action"]) for x in dry["sessions"]} == {("cut", "would-recover"),
                                                                 ("cut-then-killed", "would-recover")}  # fmt: skip
    assert "waiting for the answer to its question" in dry["sessions"][0]["detail"]
    assert claw.json("sessions", "--status", "interrupted")["count"] == 2
    # Killing an interrupted session: it stays down.
    killed = claw.json("kill", "cut-then-killed")
    assert killed["status"] == "killed" and killed["alreadyFinished"] is False

    # Bad requests: one line, no change.
    assert "is killed, not interrupted" in fails(claw, "recover", "by-hand", code=4, same=session_files)
    assert "unknown session 'nobody'" in fails(claw, "recover", "nobody", code=3, same=session_files)
    # The conversation must not run twice: no resume or message until it is recovered.
    assert "clawunits recover cut" in fails(claw, "resume", "cut", "go on", code=4, same=session_files)
    assert "clawunits recover cut" in fails(claw, "respond", "cut", "hello", code=4, same=session_files)

    text = claw.run("recover", "cut").stdout
    assert text.startswith("Recovery after restart:\n  🔄 cut [") and "recovered: resumes Claude session" in text
    assert session(claw, "cut")["status"] == "waiting" and session(claw, "cut")["recoveries"] == 1
    # Twice, by name or for all: nothing to do, nothing started again.
    unit = launched["cut"]["unit"]
    inv = invocation(claw, unit)
    again = claw.json("recover", "cut")
    assert [(x["action"], x["detail"]) for x in again["sessions"]] == [("skipped", "it is waiting: nothing to recover")]
    assert claw.json("recover")["sessions"] == []
    assert invocation(claw, unit) == inv and session(claw, "cut")["recoveries"] == 1
    assert session(claw, "cut-then-killed")["status"] == "killed"
    assert session(claw, "by-hand")["status"] == "killed"


# -- the user manager stops and starts again -------------------------------------------------------------


@pytest.fixture
def own_manager(claw: Claw) -> Iterator[PrivateManager | None]:
    """The user manager the restart test may stop: where systemd is PID 1 the user's own belongs to logind, so
    the test boots a private one (its own XDG_RUNTIME_DIR) and points ``claw`` at it; elsewhere it is the one
    clawunits.bootstrap started (None)."""
    if not (PRIVATE_MANAGER or bootstrap.probe().pid1_systemd):
        yield None
        return
    pm = start_private_manager(secrets.token_hex(3))
    shared = {k: claw.env.get(k) for k in pm.env()}
    claw.env.update(pm.env())
    try:
        yield pm
    finally:
        remove_private_manager(pm)
        claw.env.update({k: v for k, v in shared.items() if v is not None})


def restart_user_manager(claw: Claw, own: PrivateManager | None) -> None:
    """What a reboot does to the user manager: SIGTERM (it stops every unit, then exits), then a new start.

    A private manager of the test's own (where systemd is PID 1), or the one clawunits.bootstrap started; the
    manager is left running whatever happens.
    """
    if own is not None:
        restart_private_manager(own)
        return
    pid = bootstrap.probe().manager_pid
    assert pid, "no user manager runs"
    try:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), timeout=120, interval=0.2, what="the user manager to stop")
    finally:
        up = subprocess.run([sys.executable, "-m", "clawunits.bootstrap", "up"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, **claw.env})  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
    wait_until(lambda: bootstrap.probe().usable, timeout=60, what="the user manager to be usable again")


def records(claw: Claw, unit: str) -> list[dict[str, Any]]:
    """The unit's records, found by its syslog identifier as clawunits' readers do (a private manager's units
    carry no _SYSTEMD_USER_UNIT)."""
    argv = ["journalctl", "--no-pager", "-q", "-o", "cat", f"SYSLOG_IDENTIFIER={syslog_identifier(unit)}"]
    out = subprocess.run(argv, env=claw.env, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_sessions_interrupted_by_a_manager_restart_are_resumed_as_themselves(
    claw: Claw, own_manager: PrivateManager | None, recover_unit: str
) -> None:
    rec = _options(claw)
    tag = secrets.token_hex(4)
    (claw.workdir / "hold.sh").write_text(HOLD)
    # Enabled like install.sh does, so the new manager runs it at start.
    systemctl(claw, "enable", "--runtime", recover_unit, check=True)
    notifier = NotifierUnit(claw, rec).start()
    try:
        asker = claw.launch(f"[[ask]] which database {tag}", "--name", "asker", "--channel", "telegram|81")
        worker = claw.launch(f"[[bash: sh hold.sh]] long job {tag}", "--name", "worker", "--channel", "telegram|82")
        doomed = claw.launch(f"[[ask]] doomed {tag}", "--name", "doomed", "--channel", "telegram|83")
        done = claw.launch(f"[[text: all done {tag}]] finish", "--name", "finisher", "--channel", "telegram|84",
                           "--multi-turn-disabled")  # fmt: skip
        assert claw.wait(asker["id"])["status"] == "waiting"
        assert claw.wait(doomed["id"])["status"] == "waiting"
        assert claw.json("wait", done["id"], "--ended", "--timeout", "90")["status"] == "completed"
        wait_until(lambda: (claw.workdir / "held").exists(), timeout=90, what="the worker's tool to be running")
        assert session(claw, "worker")["status"] == "running"
        assert claw.json("kill", "doomed")["status"] == "killed"
        before = {s["name"]: s for s in claw.json("sessions")["sessions"]}
        first = {name: invocation(claw, before[name]["unit"]) for name in ("asker", "worker")}
        wait_until(lambda: len(rec.texts("83")) >= 3, what="the kill notice")
        notifier.settle(asker["unit"], worker["unit"], doomed["unit"], done["unit"])

        restart_user_manager(claw, own_manager)

        # Stopped by the shutdown, the runners said so (and nothing else) before they exited.
        for s in (asker, worker):
            exits = [r for r in records(claw, s["unit"]) if r["type"] == "exit"]
            assert exits[0]["status"] == "interrupted" and exits[0]["cause"] == "shutdown", exits
            assert exits[0]["reason"] == "interrupted: the user manager shut down"
        # The boot unit ran at the manager's start and resumed both, as themselves.
        wait_until(
            lambda: all(session(claw, n)["recoveries"] == 1 for n in ("asker", "worker")),
            timeout=90,
            what="the boot unit to recover both sessions",
        )
        for name in ("asker", "worker"):
            now = session(claw, name)
            old = before[name]
            assert (now["id"], now["unit"], now["claudeSessionId"]) == (old["id"], old["unit"], old["claudeSessionId"])
            assert invocation(claw, now["unit"]) not in ("", first[name])
            assert now["recoveredAt"] and now["interruptedAt"] and now["budgetUsd"] == old["budgetUsd"]
        assert session(claw, "asker")["status"] == "waiting"
        # Killed on purpose, finished: left alone.
        assert session(claw, "doomed")["status"] == "killed" and session(claw, "doomed")["recoveries"] == 0
        assert session(claw, "finisher")["status"] == "completed" and session(claw, "finisher")["recoveries"] == 0
        # By hand, afterwards: nothing left to recover.
        assert claw.json("recover") == {"sessions": [], "count": 0, "dryRun": False, "disabled": None,
                                        "message": "No interrupted sessions to recover.", "skipped": [],
                                        "display": "No interrupted sessions to recover."}  # fmt: skip

        # The worker's turn went on in its Claude session: "continue", with everything before it.
        wait_until(lambda: session(claw, "worker")["status"] == "completed", timeout=90, what="the worker's turn")
        continued = said(claw, "Continue where you left off.")
        assert continued and f"long job {tag}" in json.dumps(continued[-1]["messages"])
        # The asker waits for its answer, which reaches the resumed conversation.
        claw.run("respond", "asker", f"[[text: postgres it is {tag}]] postgres")
        assert claw.wait("asker")["status"] == "completed"
        history = json.dumps(said(claw, f"postgres it is {tag}")[-1]["messages"])
        assert f"which database {tag}" in history and ASK_TEXT in history

        # The notifier went down with the manager; started again, it announces each resumption once.
        notifier.start()
        # It catches up on everything since its cursor, the restart included: give it the time the other
        # catch-ups here get, and say what had arrived if it still falls short.
        try:
            wait_until(lambda: len(rec.texts("81")) >= 5 and len(rec.texts("82")) >= 3, timeout=90, what="notices")
        except AssertionError as e:
            sent = [t.split(chr(10))[0] for t in rec.texts()]
            seen = [(r["type"], r.get("status")) for u in (asker["unit"], worker["unit"]) for r in records(claw, u)]
            log = notifier.log()
            raise AssertionError(f"{e}; sent so far: {sent}; records: {seen}; notifier log:\n{log}") from None
        notifier.settle(asker["unit"], worker["unit"], doomed["unit"], done["unit"])
    finally:
        notifier.close()
    heads = {ch: [t.split("\n")[0] for t in rec.texts(ch)] for ch in ("81", "82", "83", "84")}
    assert heads == {
        "81": ["↩️ [asker] Launched:", "🔔 [asker] Claude asks:", "⚠️ [asker] Resumed after restart",
               "↩️ [asker] Responded:", "✅ [asker] Completed"],
        "82": ["↩️ [worker] Launched:", "⚠️ [worker] Resumed after restart", "✅ [worker] Completed"],
        "83": ["↩️ [doomed] Launched:", "🔔 [doomed] Claude asks:", "⛔ [doomed] Killed"],
        "84": ["↩️ [finisher] Launched:", "✅ [finisher] Completed"],
    }, heads  # fmt: skip
    assert (
        rec.texts("82")[1]
        == f'⚠️ [worker] Resumed after restart\n   📁 {claw.workdir}\n   📝 "[[bash: sh hold.sh]] long job {tag}"'
    )
