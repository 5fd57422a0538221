"""Usage limits end to end: the real Claude Code CLI against the scripted API's usage-limit headers and 429s,
real session units and resume timers on the user manager, the journal."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Claw, wait_until

from clawunits.testing.scripted_api import gateway_token


@pytest.fixture
def gw(claw: Claw) -> Iterator[Claw]:
    """A claw whose sessions use a Claude gateway token: Claude Code reads the usage-limit headers only for a
    subscription or a gateway (for a plain API key it reports a refused request as a bare 429)."""
    claw.env["ANTHROPIC_AUTH_TOKEN"] = gateway_token()
    claw.env.pop("ANTHROPIC_API_KEY", None)
    try:
        yield claw
    finally:
        stop_timers(claw)


def stop_timers(claw: Claw) -> None:
    for unit in claw.launched:
        stem = "clawunits-resume-" + unit.removeprefix("clawunits-").removesuffix(".service")
        for name in (stem + ".timer", stem + ".service"):
            systemctl(claw, "stop", name)


def systemctl(claw: Claw, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", "--user", *args], env=claw.env, capture_output=True, text=True, timeout=60)


def timers(claw: Claw) -> str:
    return systemctl(claw, "list-units", "--all", "--no-legend", "clawunits-resume-*").stdout


def session(claw: Claw, ref: str) -> dict[str, Any]:
    return next(d for d in claw.json("sessions", "--all")["sessions"] if d["id"] == ref)


def records(claw: Claw, unit: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in claw.journal(unit) if r.get("type") == kind]


def unit_runs(claw: Claw, unit: str) -> bool:
    """A process of the unit is alive (a finished session unit stays loaded as ``active (exited)``)."""
    show = systemctl(claw, "show", "-p", "SubState", "-p", "MainPID", unit).stdout
    return "SubState=running" in show or ("MainPID=" in show and "MainPID=0" not in show)


def test_warning_then_limit_parks_and_the_timer_resumes_the_same_claude_session(gw: Claw) -> None:
    s = gw.launch("[[limit: warning five_hour 0.93]] [[text: first part done]]")
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
    assert len(records(gw, unit, "resumed")) == 1 and len(records(gw, unit, "limited")) == 1
    assert len(records(gw, unit, "limit_warning")) == 1
    texts = [r["text"] for r in records(gw, unit, "text")]
    assert texts[0] == "first part done" and texts[-1] == "second part done"
    # The conversation went on: the request after the reset carries the first turn.
    continued = [str(r["json"]) for r in gw.api.messages_requests() if "Continue where you left off" in str(r["json"])]
    assert continued and all("first part done" in c for c in continued)
    assert "resume" not in timers(gw) or ".timer" not in timers(gw)
