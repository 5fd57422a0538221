"""The user manager reloads and re-executes itself while sessions run (install.sh and package installs run
``systemctl --user daemon-reload``). Transient units are written to disk and read back then: a property systemd
cannot read back would leave the unit ``bad-setting``.

Real units on the shared user manager, the real Claude Code CLI on the scripted API, the real notifier with the
recording stand-in ``openclaw``. The manager is re-executed once (its units keep running; other tests' too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import Claw, systemctl, unit_properties, wait_until
from notifier_harness import configure, launch_all, running_notifier, session

from clawunits.records import EXIT, GAP, STARTED
from clawunits.systemd import journal
from clawunits.systemd.units import runtime_dir

# What clawunits sets on a session unit (docs/ARCHITECTURE.md, "The session unit"), and what must not change.
KEPT = (
    "Description", "Type", "Environment", "WorkingDirectory", "StandardOutput", "StandardError",
    "SyslogIdentifier", "KillMode", "RemainAfterExit", "CollectMode", "TimeoutStopUSec", "Slice", "MemoryMax",
    "CPUQuotaPerSecUSec", "TasksMax", "RuntimeMaxUSec", "OOMPolicy", "MainPID", "InvocationID",
    # What reconciliation reads of a finished unit.
    "Result", "ExecMainCode", "ExecMainStatus", "ExecMainExitTimestamp",
)  # fmt: skip


def _gate(claw: Claw) -> tuple[str, Path]:
    """A Bash command that holds its turn until the test opens the gate (touches ``go``)."""
    script = claw.workdir / "gate.sh"
    script.write_text('touch "in-$1"; while [ ! -e go ]; do sleep 0.1; done; echo "released $1"\n')
    return "sh gate.sh", claw.workdir / "go"


def _state(claw: Claw, unit: str) -> dict[str, str]:
    """The unit's load state, its state, and every property clawunits set (ExecStart's argv only: systemd
    forgets the start time and pid of a command it reads back)."""
    props = unit_properties(claw, unit, "LoadState", "ActiveState", "SubState", "ExecStart", *KEPT)
    props["ExecStart"] = " ; ".join(props.get("ExecStart", "").split(" ; ")[:2])  # "{ path=... ; argv[]=..."
    return props


def _loaded_as_before(claw: Claw, before: dict[str, dict[str, str]], after: str) -> None:
    for unit, props in before.items():
        now = _state(claw, unit)
        assert now["LoadState"] == "loaded", (
            f"{unit} after {after}: {now['LoadState']}\n" + systemctl(claw, "status", "--no-pager", unit).stdout
        )
        changed = {k: (v, now.get(k)) for k, v in props.items() if now.get(k) != v}
        assert not changed, f"{unit} after {after}: {changed}"


def _manager_running(claw: Claw) -> str:
    """The manager's state once it answers again (``degraded`` is running with some other unit failed)."""
    return wait_until(
        lambda: (s := systemctl(claw, "is-system-running").stdout.strip()) in ("running", "degraded") and s,
        timeout=60,
        what="the user manager to run again",
    )


def _complete_records(unit: str) -> list[str]:
    """The session's record types; asserts its stream is whole: ``started`` first, ``exit`` last, no seq gap."""
    records = wait_until(
        lambda: (rs := journal.read_after(unit).records) and rs[-1].type == EXIT and rs, what=f"{unit}'s exit"
    )
    assert not [r for r in records if r.type == GAP], records
    seqs = [r.seq for r in records if r.seq is not None]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert records[0].type == STARTED, records[0]
    return [r.type for r in records]


def test_five_sessions_survive_daemon_reload_and_reexec(claw: Claw) -> None:
    rec = configure(claw, idleTimeoutMinutes=1, permissionTimeoutSec=600)
    busy, go = _gate(claw)
    with running_notifier(claw, rec) as n:
        # A session already over: its unit stays loaded, `active (exited)`, with its result.
        over = claw.launch("[[text: Already done.]] quick", "--name", "over", "--multi-turn-disabled")
        assert claw.json("wait", over["id"], "--ended", "--timeout", "90")["status"] == "completed"
        kinds = {
            "midturn": (f"[[bash: {busy} mid]] hold the turn", "--channel", "telegram|701"),
            "question": ("[[ask]] which option", "--channel", "telegram|702"),
            "permission": ("[[bash: touch perm.txt]] ask first", "--permission-mode", "default",
                           "--channel", "telegram|703"),
            "plan": ("[[plan: Touch planned.txt.]] [[bash: touch planned.txt]] plan it", "--permission-mode", "plan",
                     "--channel", "telegram|704"),
            "single": (f"[[bash: {busy} single]] one turn", "--multi-turn-disabled", "--channel", "telegram|705"),
        }  # fmt: skip
        launched = launch_all(claw, [(args[0], "--name", k, *args[1:]) for k, args in kinds.items()])
        s = dict(zip(kinds, launched, strict=True))
        wait_until(lambda: (claw.workdir / "in-mid").exists() and (claw.workdir / "in-single").exists(),
                   timeout=90, what="both turns to hold in their Bash call")  # fmt: skip
        for kind, waiting in (("question", "question"), ("permission", "permission"), ("plan", "plan")):
            wait_until(
                lambda k=kind, w=waiting: session(claw, s[k]["id"])["waitingFor"] == w,
                timeout=90,
                what=f"the {kind} session to wait for {waiting}",
            )
        assert session(claw, s["midturn"]["id"])["status"] == "running"
        before = {x["unit"]: _state(claw, x["unit"]) for x in [*launched, over]}
        assert all(p["LoadState"] == "loaded" and p["ActiveState"] == "active" for p in before.values()), before

        t0 = time.monotonic()
        systemctl(claw, "daemon-reload", check=True)
        reload_s = time.monotonic() - t0
        _loaded_as_before(claw, before, "daemon-reload")
        listed = systemctl(claw, "list-units", "--no-pager", "--plain", "--all", "clawunits-*").stdout
        for x in launched:
            assert f"{x['unit']} loaded active running" in " ".join(listed.split()), listed

        t0 = time.monotonic()
        systemctl(claw, "daemon-reexec", check=True)
        state = _manager_running(claw)
        reexec_s = time.monotonic() - t0
        _loaded_as_before(claw, before, "daemon-reexec")
        print(f"daemon-reload {reload_s:.2f}s, daemon-reexec {reexec_s:.2f}s, manager {state}")

        # Every session goes on: the held turns finish, the answers reach the waiting ones.
        go.touch()
        claw.run("respond", s["question"]["id"], "Option A [[text: Going with A.]]")
        claw.run("respond", s["permission"]["id"], "allow")
        claw.run("respond", s["plan"]["id"], "approve")
        finals = {k: claw.json("wait", x["id"], "--ended", "--timeout", "180") for k, x in s.items()}
        n.settle(*(x["unit"] for x in launched), timeout=60)
        sent = {k: rec.texts(f"70{i}") for i, k in enumerate(kinds, start=1)}

    assert all(f["status"] == "completed" for f in finals.values()), finals
    assert (claw.workdir / "perm.txt").exists() and (claw.workdir / "planned.txt").exists()
    types = {k: _complete_records(x["unit"]) for k, x in {**s, "over": over}.items()}
    assert types["midturn"].count("turn_end") == 1 and "tool_result" in types["midturn"]
    assert "message_received" in types["question"] and types["question"].count("turn_end") == 2
    assert "permission_answer" in types["permission"] and "plan_answer" in types["plan"]
    # Notifications: each once, none lost across the re-exec (launched, then what each session did, then done).
    for kind, texts in sent.items():
        assert len(texts) == len(set(texts)), (kind, texts)
        assert texts[0].startswith(f"↩️ [{kind}] Launched") and f"✅ [{kind}] Completed" in texts[-1], (kind, texts)
    assert any("Claude asks" in t for t in sent["question"])
    assert any("Permission to use Bash" in t for t in sent["permission"])
    assert any("Plan ready" in t for t in sent["plan"])


def test_an_interpreter_under_a_dollar_directory_runs_and_survives_reload(claw: Claw, tmp_path: Path) -> None:
    """clawunits installed where a directory name holds ``$``: systemd would expand it in ExecStart's argv, and
    systemd 252 reads a ``$`` in a transient unit's ExecStart back wrongly."""
    odd = tmp_path / "py${NOPE}$$x"
    odd.mkdir()
    (odd / "venv").symlink_to(Path(sys.executable).parent.parent)
    python = odd / "venv" / "bin" / Path(sys.executable).name
    busy, go = _gate(claw)

    def clawunits(*args: str) -> str:
        return subprocess.run(
            [str(python), "-m", "clawunits", *args], env=claw.env, capture_output=True, text=True, timeout=60,
            check=True,
        ).stdout  # fmt: skip

    s = json.loads(clawunits("launch", f"[[bash: {busy} odd]] hold", "--workdir", str(claw.workdir), "--json"))
    claw.launched.append(s["unit"])
    wait_until(lambda: (claw.workdir / "in-odd").exists(), timeout=90, what="the turn to hold in its Bash call")
    before = {s["unit"]: _state(claw, s["unit"])}
    systemctl(claw, "daemon-reload", check=True)
    _loaded_as_before(claw, before, "daemon-reload")
    go.touch()
    final = json.loads(clawunits("wait", s["id"], "--json", "--timeout", "90"))
    assert final["status"] == "completed", final
    assert "Tool result: released odd" in (claw.run("output", s["id"]).stdout)
    # The runner ran through the $-free symlink to the installation (one per installation); this test's goes.
    (link,) = [p for p in (runtime_dir() / "clawunits" / "python").iterdir() if os.readlink(p) == str(odd / "venv")]
    link.unlink()
