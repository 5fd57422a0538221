"""The launch queue: launches beyond maxSessions wait as ``queued`` and start by themselves when a slot frees.

Real session units on the real user manager running the real Claude Code CLI against the loopback scripted
API, real git for a queued worktree launch, the real notifier unit with the ``openclaw`` stand-in for what a
chat is told. Waits read the record files directly where the point is that no command starts anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from typing import Any

from conftest import Claw, fails, systemctl, unit_property, wait_until
from notifier_harness import configure as configure_notifier
from notifier_harness import running_notifier
from test_worktree import branches, make_repo

from clawunits.state.models import parse_ts


def stored(claw: Claw, session_id: str) -> dict[str, Any]:
    """The session's record as the store holds it (read without running clawunits)."""
    return tomllib.loads((claw.state_dir / "sessions" / f"{session_id}.toml").read_text())


def status_of(claw: Claw, session_id: str) -> str:
    return str(stored(claw, session_id)["status"])


def queued(claw: Claw, prompt: str, *args: str) -> dict[str, Any]:
    data = claw.json("launch", prompt, "--workdir", str(claw.workdir), *args)
    claw.launched.append(data["unit"])
    return data


def starters(claw: Claw) -> list[str]:
    """The launch queue's starter units loaded now."""
    out = systemctl(claw, "list-units", "--all", "--plain", "--no-legend", "clawunits-queue-*").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@contextlib.contextmanager
def launch_lock(claw: Claw) -> Iterator[None]:
    """Hold the store's launch lock, as a launch or a starter does."""
    path = claw.state_dir / "locks" / "launch.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_queued_in_order_with_priority_kill_and_started_by_themselves(claw: Claw) -> None:
    repo = make_repo(claw.workdir / "repo")
    claw.write_config(maxSessions=1)
    busy = claw.launch("[[slow: 90]] keep the slot", "--name", "busy")

    first = claw.json(
        "launch", "[[text: first done]] first in line", "--workdir", str(repo), "--name", "first",
        "--worktree", "--max-budget-usd", "2", "--memory-max", "1G", "--multi-turn-disabled",
    )  # fmt: skip
    assert first["status"] == "queued" and first["queuePosition"] == 1 and first["queueAhead"] == 0
    assert first["display"].startswith("🕒 [first] queued (0 ahead)")
    # Nothing of it exists yet: no unit, no worktree or branch (they are made when it starts).
    assert unit_property(claw, first["unit"], "LoadState") == "not-found"
    assert first["worktree"] is None and branches(repo) == {"main"}

    text = claw.run(
        "launch", "[[text: second done]] second in line", "--workdir", str(claw.workdir), "--name", "second"
    )
    assert text.stdout.splitlines()[0] == "🕒 [second] queued (1 ahead)"
    urgent = queued(claw, "[[text: urgent done]] urgent", "--name", "urgent", "--priority")
    assert urgent["queuePosition"] == 1 and urgent["queuePriority"] is True

    listed = {s["name"]: s for s in claw.json("sessions")["sessions"]}
    assert {n: s.get("queuePosition") for n, s in listed.items()} == {
        "busy": None,
        "first": 2,
        "second": 3,
        "urgent": 1,
    }
    assert [s["name"] for s in claw.json("queue")["sessions"]] == ["urgent", "first", "second"]
    assert claw.json("sessions", "--status", "queued")["count"] == 3
    stats = claw.json("stats")
    assert [(q["name"], q["queuePosition"]) for q in stats["launchQueue"]] == [
        ("urgent", 1),
        ("first", 2),
        ("second", 3),
    ]
    assert stats["sessionsByStatus"]["queued"] == 3
    assert "🕒 Launch queue: 1. urgent, 2. first, 3. second" in claw.run("stats").stdout

    # Kill takes a queued session out: it ends killed and nothing ever starts it.
    second = listed["second"]
    out = claw.json("kill", "second")
    assert out["status"] == "killed" and "launch queue" in out["message"]
    assert [s["name"] for s in claw.json("queue")["sessions"]] == ["urgent", "first"]

    # The slot frees: from here on, nobody runs a command until everything has started and finished.
    claw.run("kill", busy["id"])
    wait_until(lambda: status_of(claw, first["id"]) == "completed", timeout=120, what="the queue to run through")
    assert status_of(claw, urgent["id"]) == "completed"  # its task is done; it stays open for follow-ups

    done = {s["name"]: s for s in claw.json("sessions")["sessions"]}
    assert done["busy"]["completedAt"] <= done["urgent"]["startedAt"]
    for ended, started in (("busy", "urgent"), ("urgent", "first")):
        gap = parse_ts(done[started]["startedAt"]) - parse_ts(done[ended]["completedAt"])
        print(f"slot freed by {ended} -> {started} starting: {gap.total_seconds():.2f} s")
    # First started when urgent's task was done, not when its (idle) unit ended: that one still runs.
    assert done["urgent"]["completedAt"] <= done["first"]["startedAt"]
    assert systemctl(claw, "is-active", urgent["unit"]).stdout.strip() == "active"
    # The queued launch started as it was asked for: its worktree, budget and memory limit.
    wt = done["first"]["worktree"]
    assert wt["branch"] == "clawunits/first" and wt["base"] == "main" and "clawunits/first" in branches(repo)
    assert done["first"]["workdir"] == wt["path"] and done["first"]["budgetUsd"] == 2
    assert unit_property(claw, first["unit"], "MemoryMax") == str(1 << 30)
    # The killed one never ran; no starter unit is left behind.
    assert done["second"]["status"] == "killed" and done["second"]["claudeSessionId"] is None
    assert unit_property(claw, second["unit"], "LoadState") == "not-found"
    wait_until(lambda: not starters(claw), timeout=30, what="the starter units to go")
    assert claw.json("queue")["count"] == 0


def test_queue_launches_false_refuses_as_before(claw: Claw) -> None:
    claw.write_config(maxSessions=1, queueLaunches=False)
    claw.launch("[[slow: 60]] busy", "--name", "busy")
    line = fails(claw, "launch", "more", "--workdir", str(claw.workdir), code=5)
    assert line == "clawunits: error: Max sessions reached (1). Kill a session first."
    assert claw.json("sessions")["count"] == 1, "the refused launch left a record"


def test_racing_starters_start_each_session_once_and_survive_daemon_reload(claw: Claw) -> None:
    claw.write_config(maxSessions=1)
    busy = claw.launch("[[slow: 90]] keep the slot", "--name", "busy")
    b = queued(claw, "[[text: b done]] b", "--name", "b-next", "--multi-turn-disabled")
    c = queued(claw, "[[text: c done]] c", "--name", "c-later", "--multi-turn-disabled")
    wait_until(lambda: status_of(claw, busy["id"]) == "running", what="busy to run")

    with launch_lock(claw):
        # Killing the busy session wakes a starter (its runner as it ends, and kill); one more is woken by
        # hand (as another session's end would). They all wait for the launch lock.
        claw.run("kill", busy["id"])
        kick = "from clawunits.systemd.queuekick import kick; from clawunits.state.store import Store; " + (
            f"print(kick(Store(__import__('pathlib').Path({str(claw.state_dir)!r}))))"
        )
        woken = subprocess.run([sys.executable, "-c", kick], env=claw.env, capture_output=True, text=True, timeout=60)
        assert woken.stdout.startswith("clawunits-queue-"), woken
        wait_until(lambda: len(starters(claw)) >= 3, timeout=30, what="three starters")
        # Only plain properties: a daemon-reload re-reads the transient units and leaves them loaded as they are.
        systemctl(claw, "daemon-reload", check=True)
        for unit in starters(claw):
            props = systemctl(claw, "show", unit, "-pLoadState", "-pActiveState", "-pCollectMode").stdout
            assert "LoadState=loaded" in props and "CollectMode=inactive-or-failed" in props, props
        assert status_of(claw, b["id"]) == "queued"
    wait_until(lambda: status_of(claw, b["id"]) != "queued", timeout=60, what="b to start")
    wait_until(lambda: not starters(claw), timeout=60, what="both starters to finish")
    # One slot: b took it, c still waits (three starters did not start two sessions)...
    assert status_of(claw, c["id"]) == "queued"
    # ...until b ends: its runner wakes the queue again.
    wait_until(lambda: status_of(claw, c["id"]) == "completed", timeout=120, what="c to run after b")
    assert status_of(claw, b["id"]) == "completed"


def test_a_death_nobody_recorded_and_the_boot_start_the_queue(claw: Claw) -> None:
    claw.write_config(maxSessions=1)
    busy = claw.launch("[[slow: 90]] keep the slot", "--name", "busy")
    b = queued(claw, "[[text: b done]] b", "--name", "after-boot", "--multi-turn-disabled")
    wait_until(lambda: status_of(claw, busy["id"]) == "running", what="busy to run")
    # SIGKILL: the runner cannot wake the queue (as in a power cut, its record still says running).
    subprocess.run(["systemctl", "--user", "kill", "--signal=SIGKILL", busy["unit"]], env=claw.env, check=True)
    wait_until(lambda: systemctl(claw, "is-active", busy["unit"]).stdout.strip() != "active", what="busy to die")
    time.sleep(2)
    assert status_of(claw, b["id"]) == "queued" and status_of(claw, busy["id"]) == "running"
    # What the user manager's start runs (clawunits-recover.service): the queue waited in the store, and it
    # starts now that the dead session is found out.
    report = claw.json("recover", "--boot")
    assert report["count"] == 0
    wait_until(lambda: status_of(claw, b["id"]) == "completed", timeout=120, what="the queued session to run")
    assert status_of(claw, busy["id"]) == "failed"


def test_each_dequeued_session_is_announced_once_across_a_notifier_restart(claw: Claw) -> None:
    rec = configure_notifier(claw, maxSessions=1)
    chat = ("--channel", "telegram|333")
    with running_notifier(claw, rec) as n:
        busy = claw.launch("[[slow: 90]] keep the slot", "--name", "busy", *chat)
        one = queued(claw, "[[text: one done]] one", "--name", "q-one", "--multi-turn-disabled", *chat)
        two = queued(claw, "[[text: two done]] two", "--name", "q-two", "--multi-turn-disabled", *chat)
        gone = queued(claw, "[[text: never]] never", "--name", "q-gone", *chat)
        claw.run("kill", gone["id"])
        wait_until(lambda: any("[busy] Launched" in t for t in rec.texts()), what="busy announced")
        # The notifier goes down; the queue runs through meanwhile (nothing of it lives in the notifier).
        n.stop()
        claw.run("kill", busy["id"])
        wait_until(lambda: status_of(claw, two["id"]) == "completed", timeout=120, what="the queue to run through")
        n.start()
        wait_until(
            lambda: sum("Completed" in t for t in rec.texts()) >= 2, timeout=60, what="the catch-up after the restart"
        )
        n.settle(one["unit"], two["unit"], wakes=False)
    texts = rec.texts("333")
    for name in ("q-one", "q-two"):
        assert sum(t.startswith(f"↩️ [{name}] Launched:") for t in texts) == 1, texts
        assert sum(t.startswith(f"✅ [{name}] Completed") for t in texts) == 1, texts
    assert not [t for t in texts if "[q-gone]" in t], "a session killed in the queue never ran"
    launched = [t.split("]")[0] for t in texts if "Launched" in t]
    assert launched == ["↩️ [busy", "↩️ [q-one", "↩️ [q-two"]


def test_a_queued_resume_continues_its_conversation_as_it_is_when_it_starts(claw: Claw) -> None:
    claw.write_config(maxSessions=1)
    origin = claw.launch("[[text: noted]] remember kiwi", "--name", "origin", "--multi-turn-disabled")
    first = claw.json("wait", origin["id"], "--ended", "--timeout", "90")
    busy = claw.launch("[[slow: 90]] keep the slot", "--name", "busy")
    one = claw.json("resume", "origin", "[[text: one]] go on", "--name", "cont-one")
    two = claw.json("resume", "origin", "[[text: two]] and on", "--name", "cont-two", "--multi-turn-disabled")
    claw.launched += [one["unit"], two["unit"]]
    assert (one["status"], one["queuePosition"], two["queuePosition"]) == ("queued", 1, 2)
    assert one["resumedFrom"] == two["resumedFrom"] == origin["id"]

    claw.run("kill", busy["id"])
    # cont-one continues the conversation; when its task is done (it stays open for follow-ups), cont-two takes
    # the slot, closes it (one conversation, one Claude Code process) and goes on from where cont-one left it.
    wait_until(lambda: status_of(claw, two["id"]) == "completed", timeout=150, what="cont-two to run")
    done = {s["name"]: s for s in claw.json("sessions")["sessions"]}
    assert done["cont-one"]["status"] == "completed" and done["cont-one"]["waitingFor"] is None
    assert done["cont-one"]["claudeSessionId"] == done["cont-two"]["claudeSessionId"] == first["claudeSessionId"]
    # Its lifetime budget counts what the conversation spent while it waited in the queue.
    spent = round(first["costUsd"] + done["cont-one"]["costUsd"], 6)
    assert done["cont-one"]["priorCostUsd"] == first["costUsd"]
    assert done["cont-two"]["priorCostUsd"] == spent > first["costUsd"]
    assert done["cont-one"]["completedAt"] <= done["cont-two"]["startedAt"]
