"""Usage limits end to end: the real Claude Code CLI against the scripted API's usage-limit headers and 429s,
real session units and resume timers on the user manager, the journal."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Claw, wait_until
from notifier_harness import configure, running_notifier

from clawunits.state.store import Store
from clawunits.testing.scripted_api import gateway_token


@pytest.fixture
def gw(claw: Claw) -> Iterator[Claw]:
    """A claw whose sessions use a Claude gateway token: Claude Code reads the usage-limit headers only for a
    subscription or a gateway (for a plain API key it reports a refused request as a bare 429)."""
    claw.env["ANTHROPIC_AUTH_TOKEN"] = gateway_token()
    claw.env.pop("ANTHROPIC_API_KEY", None)
    claw.api.reset_limits()
    try:
        yield claw
    finally:
        stop_timers(claw)
        claw.api.reset_limits()


def stop_timers(claw: Claw) -> None:
    for unit in claw.launched:
        stem = "clawunits-resume-" + unit.removeprefix("clawunits-").removesuffix(".service")
        for name in (stem, stem + "-retry"):
            systemctl(claw, "stop", name + ".timer", name + ".service")


def systemctl(claw: Claw, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", "--user", *args], env=claw.env, capture_output=True, text=True, timeout=60)


def timers(claw: Claw) -> str:
    return systemctl(claw, "list-units", "--all", "--no-legend", "clawunits-resume-*").stdout


def session(claw: Claw, ref: str) -> dict[str, Any]:
    return next(d for d in claw.json("sessions", "--all")["sessions"] if d["id"] == ref)


def records(claw: Claw, unit: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in claw.journal(unit) if r.get("type") == kind]


def doctor(claw: Claw) -> dict[str, Any]:
    """``clawunits doctor``'s usage-limits check."""
    checks = json.loads(claw.run("doctor", "--json", check=False).stdout)["checks"]
    return next(c for c in checks if c["name"] == "usage limits")


def unit_runs(claw: Claw, unit: str) -> bool:
    """A process of the unit is alive (a finished session unit stays loaded as ``active (exited)``)."""
    show = systemctl(claw, "show", "-p", "SubState", "-p", "MainPID", unit).stdout
    return "SubState=running" in show or ("MainPID=" in show and "MainPID=0" not in show)


def test_warning_then_limit_parks_and_the_timer_resumes_the_same_claude_session(gw: Claw) -> None:
    word = uuid.uuid4().hex[:8]  # this conversation's requests, among those of every test at the shared API
    s = gw.launch(f"[[limit: warning five_hour 0.93]] [[text: first part done]] {word}")
    unit = s["unit"]
    first = gw.wait(s["id"])
    assert first["status"] == "completed" and first["limitUtilization"] == pytest.approx(0.93)
    [warning] = records(gw, unit, "limit_warning")
    assert warning["window"] == "five_hour" and warning["utilization"] == pytest.approx(0.93)
    claude_id = first["claudeSessionId"]

    gw.run("respond", s["id"], "[[limit: rejected five_hour 20]] [[text: second part done]]")
    parked = wait_until(lambda: (d := session(gw, s["id"]))["status"] == "limited" and d, timeout=60, what="parked")
    assert parked["limitWindow"] == "five_hour" and parked["limitUtilization"] == 1
    resets = datetime.fromisoformat(parked["limitResetsAt"].replace("Z", "+00:00"))
    assert 0 < (resets - datetime.now(UTC)).total_seconds() <= 21
    assert "clawunits-resume-" in timers(gw) and ".timer" in timers(gw)
    listed = gw.run("sessions", "--all").stdout
    assert "LIMITED" in listed and "usage limit (five_hour) reached; resumes at" in listed
    chat = gw.json("sessions", "--status", "limited")
    assert [d["id"] for d in chat["sessions"]] == [s["id"]] and "⏸️ usage limit (five_hour)" in chat["display"]
    assert [p["id"] for p in gw.json("stats")["parked"]] == [s["id"]]
    [limited] = records(gw, unit, "limited")
    assert limited["window"] == "five_hour" and limited["resetsAt"] == parked["limitResetsAt"]
    # A daemon-reload re-reads the transient timer and its service from disk: both stay.
    systemctl(gw, "daemon-reload")
    assert ".timer" in timers(gw) and "clawunits-resume-" in timers(gw)
    # Nothing runs while it is parked: the runner ended and its unit with it; the timer waits for the reset.
    wait_until(lambda: not unit_runs(gw, unit), timeout=30, what="the session unit to end")
    assert session(gw, s["id"])["status"] == "limited"

    done = wait_until(
        lambda: (d := session(gw, s["id"]))["status"] == "completed" and d, timeout=60, what="the resumed turn"
    )
    assert done["claudeSessionId"] == claude_id and done["limitResumes"] == 1
    [resumed] = records(gw, unit, "resumed")
    assert len(records(gw, unit, "limited")) == 1
    # The timer fires at the reset (AccuracySec=1s); the resumed runner has reconnected a moment later.
    late = (datetime.fromisoformat(resumed["ts"].replace("Z", "+00:00")) - resets).total_seconds()
    print(f"resumed {late:.1f} s after the reset")
    assert 0 <= late < 15
    assert len(records(gw, unit, "limit_warning")) == 1
    texts = [r["text"] for r in records(gw, unit, "text")]
    assert texts[0] == "first part done" and texts[-1] == "second part done"
    # The conversation went on: the request after the reset carries the first turn.
    requests = [str(r["json"]) for r in gw.api.messages_requests()]
    continued = [r for r in requests if "Continue where you left off" in r and word in r]
    assert continued and all("first part done" in c for c in continued)
    assert "resume" not in timers(gw) or ".timer" not in timers(gw)


def test_the_chat_gets_one_warning_one_pause_and_one_resume(gw: Claw) -> None:
    rec = configure(gw)
    with running_notifier(gw, rec) as n:
        s = gw.launch(
            "[[limit: warning seven_day 0.8]] [[text: half way]]", "--channel", "telegram|771", "--name", "lim"
        )
        gw.wait(s["id"])
        gw.run("respond", s["id"], "[[limit: rejected five_hour 8]] [[text: all the way]]")
        parked = wait_until(lambda: (d := session(gw, s["id"]))["status"] == "limited" and d, timeout=60, what="parked")
        wait_until(lambda: session(gw, s["id"])["limitResumes"] == 1, timeout=60, what="resumed")
        gw.wait(s["id"])
        wait_until(lambda: len(rec.texts("771")) >= 7, timeout=30, what="seven messages")
        n.settle(s["unit"])
    final = session(gw, s["id"])
    at = datetime.fromisoformat(parked["limitResetsAt"].replace("Z", "+00:00")).astimezone().strftime("%H:%M")
    texts = rec.texts("771")
    assert texts[0] == "↩️ [lim] Launched:\n[[limit: warning seven_day 0.8]] [[text: half way]]"
    assert texts[1] == "⚠️ [lim] usage limit (seven_day) at 80%" + texts[1].partition("80%")[2]
    assert texts[1].startswith("⚠️ [lim] usage limit (seven_day) at 80% (resets at ")
    assert texts[2].startswith("✅ [lim] Completed") and texts[2].endswith("half way")
    assert texts[3].startswith("↩️ [lim] Responded:")
    assert texts[4:6] == [f"⏸️ [lim] usage limit (five_hour) reached; resumes at {at}", "▶️ [lim] resumed"]
    assert texts[6].startswith("✅ [lim] Completed") and texts[6].endswith("all the way")
    assert len(texts) == 7 and final["status"] == "completed"
    # Nothing about the limit wakes an agent: it goes on by itself (the two ✅ wake it, as always).
    assert all("usage limit" not in c.text and "resumed" not in c.text for c in rec.events())


def test_a_bare_429_parks_and_kill_ends_the_parked_session_for_good(claw: Claw) -> None:
    # A plain API key: Claude Code reads no usage-limit headers and reports the refusal as a 429 error.
    claw.api.reset_limits()
    try:
        s = claw.launch("[[error: 429]] go", "--name", "bare")
        parked = wait_until(
            lambda: (d := session(claw, s["id"]))["status"] == "limited" and d, timeout=60, what="parked"
        )
        assert parked["limitWindow"] == "rate_limit"
        wait_in = datetime.fromisoformat(parked["limitResetsAt"].replace("Z", "+00:00")) - datetime.now(UTC)
        assert 240 < wait_in.total_seconds() <= 300
        assert ".timer" in timers(claw)
        # Parked, it holds no slot: with maxSessions = 1 another session still launches.
        claw.write_config(maxSessions=1)
        other = claw.launch("[[text: meanwhile]]", "--multi-turn-disabled")
        assert claw.wait(other["id"])["status"] == "completed"
        # Resumed before its reset by `recover SESSION` (claude_recover, /claude_recover): the window is still
        # exhausted (the scripted API refuses that conversation again), so it parks again.
        assert claw.json("recover", s["id"], "--dry-run")["sessions"][0]["action"] == "would-recover"
        assert claw.json("recover", s["id"])["sessions"][0]["action"] == "resumed"
        again = wait_until(
            lambda: (d := session(claw, s["id"]))["status"] == "limited" and d["limitResumes"] == 1 and d,
            timeout=60,
            what="parked again",
        )
        assert again["claudeSessionId"] == parked["claudeSessionId"]
        killed = claw.json("kill", s["id"])
        assert killed["status"] == "killed" and not killed["alreadyFinished"]
        assert timers(claw) == ""
        # What the timer would run, had it fired anyway: a killed session stays killed, its unit is not started.
        out = claw.json("unpark", "--timer", s["id"])
        assert out["action"] == "skipped" and out["status"] == "killed"
        assert session(claw, s["id"])["status"] == "killed" and not unit_runs(claw, s["unit"])
        assert claw.journal(s["unit"])[-1]["type"] == "exit"
    finally:
        stop_timers(claw)


def test_after_a_reboot_recover_boot_arms_the_timer_again_or_resumes_a_due_session(gw: Claw) -> None:
    s = gw.launch("[[limit: rejected five_hour 600]] [[text: after the reboot]]")
    wait_until(lambda: session(gw, s["id"])["status"] == "limited", timeout=60, what="parked")
    wait_until(lambda: not unit_runs(gw, s["unit"]), timeout=30, what="the session unit to end")
    # A reboot takes transient units: the timer (and the finished session unit) are gone.
    stop_timers(gw)
    systemctl(gw, "stop", s["unit"])
    assert timers(gw) == ""
    missing = doctor(gw)
    assert missing["status"] == "warn" and f"without a resume timer: {s['name']} [{s['id']}]" in missing["detail"]
    assert missing["fix"].startswith("clawunits recover --boot")
    report = gw.json("recover", "--boot")
    assert [(i["id"], i["action"]) for i in report["sessions"]] == [(s["id"], "rearmed")]
    assert ".timer" in timers(gw) and session(gw, s["id"])["status"] == "limited"
    assert doctor(gw)["status"] == "ok"
    # A message to a parked session waits for it (it stays parked) and is the turn it resumes with.
    gw.run("respond", s["id"], "[[text: the follow-up]]")
    assert session(gw, s["id"])["status"] == "limited"
    # Again, and this time the reset passed while the machine was down: resumed at once.
    stop_timers(gw)
    gw.api.exhaust("five_hour", 0)
    store = Store(gw.state_dir)
    store.update(s["id"], lambda r: r.with_changes(limit_resets_at="2020-01-01T00:00:00Z"))
    report = gw.json("recover", "--boot")
    assert [(i["id"], i["action"]) for i in report["sessions"]] == [(s["id"], "resumed")]
    done = gw.wait(s["id"], timeout=60)
    assert done["status"] == "completed" and done["limitResumes"] == 1
    assert [r["text"] for r in records(gw, s["unit"], "text")][-1] == "the follow-up"
    assert len(records(gw, s["unit"], "message_received")) == 1


# -- the parts, without units --------------------------------------------------------------------------


def test_parking_keeps_a_verdict_and_only_a_parked_session_is_unparked() -> None:
    from clawunits.state.models import EndCause, SessionRecord, Status

    r = SessionRecord(id="a", name="n", prompt="p", workdir="/", unit="u", created_at="2026-01-01T00:00:00Z")
    running = r.turn_started().with_changes(limit_warned=["five_hour", "seven_day"])
    parked = running.parked("five_hour", "2026-01-01T05:00:00Z", 1.0, "usage limit")
    assert parked.status is Status.LIMITED and parked.limit_warned == ["seven_day"] and parked.end_cause is None
    # The runner's end keeps the session parked; kill ends it; a killed session is neither parked nor unparked.
    assert parked.closed(Status.LIMITED, "x", EndCause.LIMITED) == parked
    killed = parked.killed()
    assert killed.status is Status.KILLED and killed.unparked() is None
    assert killed.parked("five_hour", "2026-01-01T05:00:00Z", None, "x") == killed
    resumed = parked.unparked()
    assert resumed is not None and resumed.status is Status.RUNNING and resumed.limit_resumes == 1
    recovered_later = resumed.with_changes(recovered_at="2099-01-01T00:00:00Z")
    assert resumed.resumed_from_limit and not recovered_later.resumed_from_limit


def test_reset_times_read_in_local_time() -> None:
    from clawunits.render import local_time

    now = datetime.now(UTC).replace(microsecond=0)
    assert local_time(now.isoformat().replace("+00:00", "Z")) == now.astimezone().strftime("%H:%M")
    later = now.replace(year=now.year + 1)
    assert local_time(later.isoformat()) == later.astimezone().strftime("%a %H:%M")
    assert local_time(None) == "?" and local_time("garbage") == "garbage"


def test_a_resume_whose_unit_cannot_start_stays_parked_and_tries_again(claw: Claw) -> None:
    claw.api.reset_limits()
    work = claw.workdir / "gone-soon"
    work.mkdir()
    try:
        s = claw.json("launch", "[[error: 429]] go", "--workdir", str(work), "--name", "nowhere")
        claw.launched.append(s["unit"])
        wait_until(lambda: session(claw, s["id"])["status"] == "limited", timeout=60, what="parked")
        wait_until(lambda: not unit_runs(claw, s["unit"]), timeout=30, what="the session unit to end")
        work.rmdir()  # its unit cannot enter its workdir: the start fails
        failed = claw.run("unpark", s["id"], "--json", check=False)
        assert failed.returncode == 1 and json.loads(failed.stdout)["action"] == "error"
        again = session(claw, s["id"])
        wait_in = datetime.fromisoformat(again["limitResetsAt"].replace("Z", "+00:00")) - datetime.now(UTC)
        assert again["status"] == "limited" and 50 < wait_in.total_seconds() <= 60
        assert "resume failed" in again["reason"] and ".timer" in timers(claw)
        # The same from inside the timer's own service (its name taken while it runs): a second timer name.
        stem = "clawunits-resume-" + s["unit"].removeprefix("clawunits-").removesuffix(".service")
        env = [f"--setenv={k}={v}" for k, v in claw.env.items() if k.startswith(("CLAWUNITS_", "XDG_", "PATH"))]
        stop_timers(claw)  # as when the timer fired: the timer is gone, its service runs
        unpark = [*claw.cli, "unpark", "--timer", s["id"]]
        ran = subprocess.run(
            ["systemd-run", "--user", "--wait", "--collect", "--quiet", f"--unit={stem}.service", *env, *unpark],
            env=claw.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode != 0 and f"{stem}-retry.timer" in timers(claw)
        assert session(claw, s["id"])["status"] == "limited"
    finally:
        stop_timers(claw)


def test_the_status_message_of_a_parked_session() -> None:
    from clawunits.notifier.status import status_text
    from clawunits.render import local_time
    from clawunits.state.models import SessionRecord

    r = SessionRecord(id="a", name="n", prompt="p", workdir="/", unit="u", created_at="2026-01-01T00:00:00Z")
    parked = r.turn_started().parked("five_hour", "2026-01-01T05:00:00Z", 1.0, "usage limit")
    first = status_text(parked, "Bash — ls").splitlines()[0]
    assert first == f"⏸️ [n] usage limit (five_hour); resumes at {local_time('2026-01-01T05:00:00Z')}"
    assert "🔧" not in status_text(parked, "Bash — ls")
