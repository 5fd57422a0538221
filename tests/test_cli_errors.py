"""Bad input gets one clear line on stderr, a non-zero exit, no traceback, and leaves the store unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import Claw


def _snapshot(state: Path) -> dict[str, str]:
    if not state.exists():
        return {}
    return {str(p.relative_to(state)): hashlib.sha256(p.read_bytes()).hexdigest() for p in state.rglob("*.toml")}


@pytest.fixture
def seeded(claw: Claw) -> Claw:
    launched = claw.launch("[[text: seed]] a session to keep", "--name", "keeper", "--multi-turn-disabled")
    claw.wait(launched["id"])
    return claw


def _fails(claw: Claw, *args: str, code: int | None = None, says: str = "", stdin_text: str | None = None) -> str:
    before = _snapshot(claw.state_dir)
    proc = claw.run(*args, check=False, stdin_text=stdin_text)
    assert proc.returncode != 0, proc
    if code is not None:
        assert proc.returncode == code, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("clawunits: error: ") or lines[0].startswith("Error:"), lines
    assert says.lower() in lines[0].lower(), lines[0]
    assert _snapshot(claw.state_dir) == before, "the store changed"
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
