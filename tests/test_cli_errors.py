"""Bad input gets one clear line on stderr, a non-zero exit, no traceback, and leaves the store unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Claw, state_snapshot


@pytest.fixture
def seeded(claw: Claw) -> Claw:
    launched = claw.launch("[[text: seed]] a session to keep", "--name", "keeper", "--multi-turn-disabled")
    claw.wait(launched["id"])
    # A listing writes the record cache (a speed-up, rewritten only when a record changes): written now,
    # it is part of the state that a failing command must leave as it was.
    claw.json("sessions", "--all")
    return claw


def _fails(claw: Claw, *args: str, code: int | None = None, says: str = "", stdin_text: str | None = None) -> str:
    before = state_snapshot(claw.state_dir)
    proc = claw.run(*args, check=False, stdin_text=stdin_text)
    assert proc.returncode != 0, proc
    if code is not None:
        assert proc.returncode == code, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("clawunits: error: ") or lines[0].startswith("Error:"), lines
    assert says.lower() in lines[0].lower(), lines[0]
    assert state_snapshot(claw.state_dir) == before, "the store changed"
    return lines[0]


def test_unknown_session(seeded: Claw) -> None:
    for verb in ("output", "kill", "wait"):
        _fails(seeded, verb, "no-such-session", code=3, says="unknown session 'no-such-session'")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 49,
        "a/b",
        "../etc",
        "naïve",
        "a;rm -rf",
        "$(id)",
        "`id`",
        "has space",
        "Upper",
        "-lead",
        "trail-",
    ],
)
def test_bad_names(seeded: Claw, name: str) -> None:
    _fails(seeded, "launch", "hello", "--name", name, "--workdir", str(seeded.workdir), code=2, says="name")


def test_bad_workdirs(seeded: Claw, tmp_path: Path) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    _fails(seeded, "launch", "hi", "--workdir", str(tmp_path / "missing"), code=2, says="does not exist")
    _fails(seeded, "launch", "hi", "--workdir", str(afile), code=2, says="not a directory")
    _fails(seeded, "launch", "hi", "--workdir", "relative/dir", code=2, says="relative")


@pytest.mark.parametrize("budget", ["-1", "0", "nan", "inf", "1e9"])
def test_bad_budgets(seeded: Claw, budget: str) -> None:
    _fails(
        seeded,
        "launch",
        "hi",
        "--workdir",
        str(seeded.workdir),
        "--max-budget-usd",
        budget,
        code=2,
        says="budget",
    )


def test_bad_prompts_and_models(seeded: Claw) -> None:
    w = str(seeded.workdir)
    _fails(seeded, "launch", "   ", "--workdir", w, code=2, says="prompt is empty")
    _fails(seeded, "launch", "-", "--workdir", w, code=2, says="prompt is", stdin_text="x" * (1024 * 1024))
    _fails(seeded, "launch", "-", "--workdir", w, code=2, says="NUL", stdin_text="hello\0world")
    _fails(seeded, "launch", "hi", "--workdir", w, "--model", "bad model!", code=2, says="model")
    _fails(seeded, "launch", "hi", "--workdir", w, "--permission-mode", "yolo", code=2, says="permission")


def test_json_errors_are_machine_readable(seeded: Claw) -> None:
    proc = seeded.run("output", "nope", "--json", check=False)
    assert proc.returncode == 3
    data = json.loads(proc.stdout)
    assert data["code"] == "not-found" and "nope" in data["error"]


def test_corrupt_config_is_reported(seeded: Claw) -> None:
    seeded.config_path.parent.mkdir(parents=True, exist_ok=True)
    seeded.config_path.write_text("maxSessions = 'many'\n")
    _fails(seeded, "sessions", code=2, says="maxSessions")


def test_unreadable_workdir(seeded: Claw, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    # Root reads everything; without CAP_DAC_OVERRIDE it is held to the mode bits like any user.
    before = state_snapshot(seeded.state_dir)
    unprivileged = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    proc = subprocess.run(
        [*unprivileged, sys.executable, "-m", "clawunits", "launch", "hi", "--workdir", str(locked)],
        env=seeded.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == f"clawunits: error: workdir {locked} is not readable"
    assert state_snapshot(seeded.state_dir) == before


def test_ambiguous_session_reference(seeded: Claw) -> None:
    record = next((seeded.state_dir / "sessions").glob("*.toml"))
    sid = record.stem
    twin = sid[:4] + ("zzzz" if sid[4:] != "zzzz" else "yyyy")
    text = record.read_text().replace(sid, twin).replace('name = "keeper"', 'name = "keeper-twin"')
    (record.parent / f"{twin}.toml").write_text(text)
    seeded.json("sessions", "--all")  # the record cache takes in the twin before the failing commands
    _fails(seeded, "output", sid[:4], code=3, says="ambiguous")
    _fails(seeded, "kill", sid[:4], code=3, says="ambiguous")


@pytest.mark.parametrize(
    "channel",
    ["", "telegram", "|123", "telegram|", "telegram||123", "telegram|acct|", "tele gram|1", "telegram|12\x013"],
)
def test_bad_channels(seeded: Claw, channel: str) -> None:
    _fails(seeded, "launch", "hi", "--workdir", str(seeded.workdir), "--channel", channel, code=2, says="channel")


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"maxSessions": "many"}', "maxSessions"),
        ('{"noSuchOption": 1}', "unknown option"),
        ('{"memoryMax": "lots"}', "memoryMax"),
    ],
)
def test_bad_json_input_leaves_the_config_alone(seeded: Claw, stdin: str, says: str) -> None:
    seeded.write_config(maxSessions=3)
    before = seeded.config_path.read_bytes()
    _fails(seeded, "config", "sync", stdin_text=stdin, says=says)
    assert seeded.config_path.read_bytes() == before


def test_a_message_to_a_finished_session_is_refused(seeded: Claw) -> None:
    _fails(seeded, "respond", "keeper", "more please", "--user-initiated", says="keeper")
