"""A full or read-only state directory, and damaged session files (issue 12, item 4).

The state directory is a small tmpfs of the test's own (``mount -t tmpfs``, so the test runs as root), filled
up or remounted read-only: the real file system errors (ENOSPC, EROFS), not injected ones. Sessions run the
real Claude Code CLI on the scripted API under the real user manager.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Claw, _stop_units, fails, state_snapshot, systemctl, wait_until
from notifier_harness import configure, running_notifier, session

PAGE = 4096
FILLER = "filler"  # a directory of the tmpfs beside the state, never part of it
STORE_EXIT = 7


@dataclass
class SmallState:
    """The test's state directory on a tmpfs of its own, which the test fills up or makes read-only."""

    root: Path

    def fill(self, leave_pages: int = 0) -> None:
        """Fill the file system, then free ``leave_pages`` pages again (exactly that much space is left)."""
        filler = self.root / FILLER
        filler.mkdir(exist_ok=True)
        n = len(list(filler.iterdir()))
        while True:
            try:
                with open(filler / f"{n:06d}", "wb") as f:
                    f.write(b"\0" * PAGE)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
            n += 1
        (filler / f"{n:06d}").unlink(missing_ok=True)  # the one whose write failed
        for path in sorted(filler.iterdir())[:leave_pages]:
            path.unlink()
        assert os.statvfs(self.root).f_bavail == leave_pages, "tmpfs accounting is not page by page"

    def free(self) -> None:
        for path in (self.root / FILLER).glob("*"):
            path.unlink()

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.root)], check=True)

    def read_write(self) -> None:
        subprocess.run(["mount", "-o", "remount,rw", str(self.root)], check=True)

    def break_it(self, how: str) -> None:
        self.fill() if how == "full" else self.read_only()

    def mend(self, how: str) -> None:
        self.free() if how == "full" else self.read_write()

    def snapshot(self) -> dict[str, tuple[int, str]]:
        """Every file of the state (not the filler) with its mode and content. (Empty directories a failed
        command may create, such as a session's inbox, do not count.)"""
        snap = state_snapshot(self.root).items()
        return {k: v for k, v in snap if not k.startswith(FILLER) and not stat.S_ISDIR(v[0])}


@pytest.fixture
def small_state(claw: Claw) -> Iterator[SmallState]:
    if os.geteuid() != 0:
        # Never skipped: these tests exist to mount a small or read-only state directory, which needs root.
        pytest.fail("test_host_state mounts a tmpfs as the state directory: run the suite as root (as CI does)")
    claw.state_dir.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(claw.state_dir)], check=True)
    state = SmallState(claw.state_dir)
    try:
        yield state
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(claw.state_dir)], check=False)
        state.free()
        _stop_units(claw)  # (the claw fixture's own teardown would find no records once this is unmounted)
        if subprocess.run(["umount", str(claw.state_dir)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(claw.state_dir)], check=False)


def session_units(claw: Claw) -> list[str]:
    out = systemctl(claw, "list-units", "--all", "--plain", "--no-legend", "clawunits-*.service").stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def record_of(claw: Claw, session_id: str) -> dict[str, Any]:
    """The session's record file as stored (it must always parse)."""
    return tomllib.loads((claw.state_dir / "sessions" / f"{session_id}.toml").read_text())


def leftovers(claw: Claw) -> list[Path]:
    """Temp files of interrupted writes and messages staged but never queued."""
    return sorted({*claw.state_dir.rglob(".*.tmp"), *claw.state_dir.glob("inbox/*/tmp/*")})


def api_saw(claw: Claw, text: str) -> bool:
    return any(text in json.dumps(r.get("json")) for r in claw.api.messages_requests())


def waiting_session(claw: Claw, name: str) -> dict[str, Any]:
    """A real session that asked a question and waits for the answer (its runner writes nothing meanwhile)."""
    s = claw.launch("[[ask]] choose for me", "--name", name)
    assert claw.wait(s["id"])["status"] == "waiting"
    return s


# -- 1. launch, respond and kill on a full or read-only state ----------------------------------------------


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_launch_respond_and_kill_fail_with_one_line_and_leave_nothing_behind(
    claw: Claw, small_state: SmallState, how: str
) -> None:
    s = waiting_session(claw, "target")
    take = f"take A {uuid.uuid4().hex[:8]}"  # (the scripted API is shared by every test)
    small_state.break_it(how)
    # Taken once nothing can be written any more (the runner may still be saving the end of its turn before).
    before = small_state.snapshot()
    why = "no space left on device" if how == "full" else "read-only file system"
    hint = "(hint: free space on the file system of" if how == "full" else "is on a read-only file system"

    line = fails(
        claw,
        "launch",
        "[[text: never]] a new task",
        "--name",
        "ghost-launch",
        "--workdir",
        str(claw.workdir),
        code=STORE_EXIT,
    )
    assert "cannot write the session record" in line and why in line and hint in line, line
    line = fails(claw, "respond", s["id"], f"[[text: A]] {take}", "--user-initiated", code=STORE_EXIT)
    assert "cannot write the message" in line and why in line and hint in line, line
    line = fails(claw, "kill", s["id"], code=STORE_EXIT)
    assert "cannot write the session record" in line and why in line, line
    # --json: the error object on stdout too, with the store code.
    out = claw.run("respond", s["id"], "again", "--user-initiated", "--json", check=False)
    assert out.returncode == STORE_EXIT and json.loads(out.stdout)["code"] == "store", out

    # Nothing half-written: no temp file, no staged or queued message, no record of the launch, no new unit;
    # the session still runs, untouched by the kill that failed.
    assert small_state.snapshot() == before
    # (Other units may come and go meanwhile: the user manager is the machine's; only this launch's unit counts.)
    assert [u for u in session_units(claw) if u.startswith("clawunits-ghost-launch-")] == []
    assert systemctl(claw, "is-active", s["unit"]).stdout.strip() == "active"
    time.sleep(1.5)  # the runner looks at its inbox every second: nothing reached it
    assert not api_saw(claw, take)

    # Once the host is mended, the same commands work.
    small_state.mend(how)
    claw.run("respond", s["id"], f"[[text: A it is]] {take}", "--user-initiated")
    assert claw.wait(s["id"])["status"] == "completed"
    assert claw.json("kill", s["id"])["status"] == "completed"
    assert leftovers(claw) == []


def test_respond_whose_record_cannot_be_written_queues_no_message(claw: Claw, small_state: SmallState) -> None:
    """Space for the message, none for the record: respond fails, and the session never gets the message."""
    s = waiting_session(claw, "tight")
    take = f"take B {uuid.uuid4().hex[:8]}"
    before = record_of(claw, s["id"])
    small_state.fill(leave_pages=1)
    line = fails(claw, "respond", s["id"], f"[[text: B]] {take}", "--user-initiated", code=STORE_EXIT)
    assert "cannot write the session record" in line and "no space left on device" in line, line
    time.sleep(3)  # the runner looks at its inbox every second
    assert not api_saw(claw, take), "a message respond reported as failed reached the session"
    assert record_of(claw, s["id"]) == before
    assert leftovers(claw) == [] and not list(claw.state_dir.glob(f"inbox/{s['id']}/*/*"))
    small_state.free()
    claw.run("respond", s["id"], f"[[text: B it is]] {take}", "--user-initiated")
    assert claw.wait(s["id"])["status"] == "completed"
    delivered = [json.loads(p.read_text())["text"] for p in claw.state_dir.glob(f"inbox/{s['id']}/done/*")]
    assert delivered == [f"[[text: B it is]] {take}"] and api_saw(claw, take)


# -- 2. a running session whose runner cannot write its record ----------------------------------------------


def test_a_running_session_outlives_a_full_state_and_finishes(claw: Claw, small_state: SmallState) -> None:
    claw.write_config(idleTimeoutMinutes=0.25)
    s = claw.launch("[[slow: 6]] the first turn", "--name", "writer")
    wait_until(lambda: record_of(claw, s["id"]).get("claude_session_id"), timeout=60, what="the session to start")
    small_state.fill()
    # The turn ends while nothing can be written: the runner says so in its records and goes on.
    records = wait_until(
        lambda: (r := claw.journal(s["unit"])) and any(x["type"] == "waiting" for x in r) and r,
        timeout=60,
        what="the end of the first turn",
    )
    errors = [r for r in records if r["type"] == "error"]
    assert errors and all("could not update the session record" in e["message"] for e in errors), errors
    assert "no space left on device" in errors[0]["message"]
    # The store is as it was before the disk filled: whole, still "running", no temp file.
    assert record_of(claw, s["id"])["status"] == "running"
    assert leftovers(claw) == []
    assert claw.json("sessions")["sessions"][0]["status"] == "running"

    small_state.free()
    claw.run("respond", s["id"], "[[text: second turn done]] go on", "--user-initiated")
    final = claw.wait(s["id"], timeout=60)
    assert final["status"] == "completed" and final["waitingFor"] == "input", final
    ended = wait_until(lambda: (r := session(claw, s["id"]))["waitingFor"] is None and r, timeout=60, what="idle end")
    assert ended["status"] == "completed" and ended["endCause"] == "idle-timeout", ended
    assert ended["costUsd"] > 0 and ended["claudeSessionId"]
    # Its records went on: no seq gap, the second turn and the exit are there.
    journal = wait_until(
        lambda: (j := claw.journal(s["unit"])) and j[-1]["type"] == "exit" and j, timeout=30, what="the exit record"
    )
    assert [r["seq"] for r in journal] == list(range(journal[0]["seq"], journal[0]["seq"] + len(journal)))
    types = [r["type"] for r in journal]
    assert types.count("turn_end") == 2 and types[-1] == "exit", types
    assert journal[-1]["status"] == "completed"
    assert leftovers(claw) == []


# -- 3. damaged session files ---------------------------------------------------------------------------------

VALID = {
    "id": "x",
    "name": "x",
    "prompt": "p",
    "workdir": "/",
    "unit": "clawunits-x.service",
    "created_at": "2026-01-01T00:00:00.000Z",
    "status": "completed",
}


def _toml(**fields: Any) -> bytes:
    import tomli_w

    return tomli_w.dumps({**VALID, **fields}).encode()


def damage(claw: Claw, good: Path) -> list[Path]:
    """Damaged files of every kind beside the real records; returns their paths."""
    sessions = claw.state_dir / "sessions"
    text = good.read_bytes()
    kinds = {
        "halfhalf": text[: len(text) // 2],
        "garbage1": os.urandom(64) + b"\xff\xfe",
        "emptyyyy": b"",
        "wrongtyp": _toml(id="wrongtyp", cost_usd="a lot"),
        "badstatu": _toml(id="badstatu", status="exploded"),
        "badwaitf": _toml(id="badwaitf", status="waiting", waiting_for="godot"),
        "badcause": _toml(id="badcause", end_cause="gremlins"),
        "badstamp": _toml(id="badstamp", created_at="yesterday"),
    }
    for name, data in kinds.items():
        (sessions / f"{name}.toml").write_bytes(data)
    return [sessions / f"{name}.toml" for name in kinds]


def _interrupted_copy(claw: Claw, good: Path) -> str:
    """A readable interrupted session (a copy of a real one), for ``recover``."""
    data = tomllib.loads(good.read_text())
    data.update(id="intrrptd", name="interrupted-one", unit="clawunits-interrupted-one-intrrptd.service")
    data.update(status="interrupted", end_cause="shutdown")
    import tomli_w

    (good.parent / "intrrptd.toml").write_text(tomli_w.dumps(data))
    return "intrrptd"


def _warnings(stderr: str, bad: list[Path]) -> None:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr
    assert len(lines) == len(bad), stderr
    for path in bad:
        named = [line for line in lines if str(path) in line]
        assert len(named) == 1 and named[0].startswith("clawunits: warning: skipping damaged session file"), stderr


def test_damaged_session_files_are_named_skipped_and_listed_by_doctor(claw: Claw) -> None:
    s = claw.launch("[[text: all good]] a finished task", "--name", "healthy", "--multi-turn-disabled")
    assert claw.wait(s["id"])["status"] == "completed"
    good = claw.state_dir / "sessions" / f"{s['id']}.toml"
    bad = damage(claw, good)
    interrupted = _interrupted_copy(claw, good)

    for args in (["sessions", "--all"], ["stats"], ["gc"], ["recover", "--dry-run"]):
        text = claw.run(*args)
        _warnings(text.stderr, bad)
        out = claw.run(*args, "--json")
        _warnings(out.stderr, bad)
        data = json.loads(out.stdout)
        assert sorted(item["file"] for item in data["skipped"]) == sorted(map(str, bad)), args
        assert all(item["error"] for item in data["skipped"])
        if args[0] == "sessions":
            assert sorted(r["id"] for r in data["sessions"]) == sorted([s["id"], interrupted])
            assert "healthy" in text.stdout
        if args[0] == "stats":
            assert data["totalLaunched"] == 2 and data["totalCostUsd"] > 0
        if args[0] == "recover":
            assert [(r["id"], r["action"]) for r in data["sessions"]] == [(interrupted, "would-recover")]
    wrong = next(p for p in bad if p.stem == "wrongtyp")
    proc = claw.run("output", "wrongtyp", check=False)
    assert proc.returncode == STORE_EXIT and str(wrong) in proc.stderr and "cost_usd" in proc.stderr, proc

    doctor = claw.run("doctor", "--json", check=False)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    finding = checks["session files"]
    assert finding["status"] == "warn", finding
    for path in bad:
        assert str(path) in finding["detail"] and f"mv {path} {path}.damaged" in finding["fix"], finding
    # The fix works: moved away, nothing is skipped any more.
    for path in bad:
        path.rename(f"{path}.damaged")
    out = claw.run("sessions", "--all", "--json")
    assert out.stderr == "" and json.loads(out.stdout)["skipped"] == []


def test_the_notifier_names_damaged_files_once_and_goes_on(claw: Claw) -> None:
    rec = configure(claw)
    first = claw.launch("[[text: one]] first", "--name", "before", "--multi-turn-disabled")
    assert claw.wait(first["id"])["status"] == "completed"
    good = claw.state_dir / "sessions" / f"{first['id']}.toml"
    bad = damage(claw, good)
    with running_notifier(claw, rec) as n:
        s = claw.launch("[[text: two]] second", "--channel", "telegram|333", "--name", "after", "--multi-turn-disabled")
        wait_until(lambda: any("[after] Completed" in t for t in rec.texts()), what="the completion notification")
        n.settle(s["unit"])
        time.sleep(11)  # two more of its 5-second session checks
        assert n.active()
        log = n.log()
    assert [t.split("\n")[0] for t in rec.texts()] == ["↩️ [after] Launched:", "✅ [after] Completed"]
    for path in bad:
        assert log.count(f"skipping damaged session file {path}") == 1, log
