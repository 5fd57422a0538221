"""Upgrade with live sessions: what ``./install.sh`` does when run again from a newer checkout, while sessions run.

Done to an installation of the test's own, never to the machine's user units: a virtualenv in a temp dir with
a copy of this checkout installed ("old"), a second copy with the version bumped ("new"), sessions launched
and a notifier started with the old venv's ``clawunits``, then what install.sh does on a re-run: ``pip install``
of the newer copy into the same venv, ``systemctl --user daemon-reload``, the notifier restarted.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import REPO, Claw, of, systemctl, unit_property, wait_until
from notifier_harness import NotifierUnit, configure, session

VERSION_RE = re.compile(r'^version = "([^"]+)"$', re.M)


@dataclass(frozen=True)
class Release:
    """A copy of the checkout, as a directory pip can install."""

    src: Path
    version: str


@dataclass(frozen=True)
class Installation:
    """One virtualenv, as install.sh makes it (``$VENV``), and the releases that can be installed into it."""

    venv: Path
    old: Release
    new: Release

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def install(self, release: Release) -> float:
        """install.sh's step: ``pip install <checkout>`` into the venv (build dir removed first); its seconds."""
        shutil.rmtree(release.src / "build", ignore_errors=True)
        t0 = time.monotonic()
        subprocess.run(
            [str(self.python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(release.src)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        return time.monotonic() - t0


def _copy(dest: Path, bump: str = "") -> Release:
    """This checkout's package as a source tree (what a git checkout of it holds), its version + ``bump``."""
    dest.mkdir(parents=True)
    shutil.copytree(REPO / "clawunits", dest / "clawunits", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "README.md", dest / "README.md")
    text = (REPO / "pyproject.toml").read_text()
    match = VERSION_RE.search(text)
    assert match, "no version in pyproject.toml"
    version = match.group(1) + bump
    (dest / "pyproject.toml").write_text(VERSION_RE.sub(f'version = "{version}"', text, count=1))
    return Release(dest, version)


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    """A venv with the old release installed (shared by the module: a pip install with deps takes ~30 s)."""
    root = tmp_path_factory.mktemp("upgrade")
    inst = Installation(root / "venv", _copy(root / "old"), _copy(root / "new", bump=".post1"))
    subprocess.run(["python3", "-m", "venv", str(inst.venv)], check=True, capture_output=True, timeout=120)
    inst.install(inst.old)
    return inst


def _version(claw: Claw) -> str:
    return claw.run("--version").stdout.split()[-1]


def _waiting(cu: Claw, ref: str, for_: str) -> bool:
    return session(cu, ref)["waitingFor"] == for_


def _asked(claw: Claw, unit: str, times: int) -> bool:
    """The session's turns have ended with a question ``times`` times (its journal shows it)."""
    return sum(1 for r in of(claw.journal(unit), "waiting") if r["question"]) >= times


def test_an_upgrade_while_sessions_run_harms_none_and_notifies_each_event_once(
    claw: Claw, installation: Installation
) -> None:
    rec = configure(claw)
    # The test's state and config, driven by the other venv's `clawunits` script, as a user and the plugin run it.
    cu = replace(claw, cli=[str(installation.venv / "bin" / "clawunits")])
    assert _version(cu) == installation.old.version
    notifier = NotifierUnit(claw, rec, python=str(installation.python)).start()
    try:
        # Before the upgrade: one session mid-turn for the whole upgrade, one waiting for an answer.
        long = cu.launch("[[slow: 45]] [[text: the long answer]] a long task", "--name", "long",
                         "--channel", "telegram|901")  # fmt: skip
        asks = cu.launch("[[ask]] pick one", "--name", "asks", "--channel", "telegram|902")
        wait_until(lambda: _waiting(cu, "asks", "question"), timeout=60, what="the question")
        wait_until(lambda: of(claw.journal(long["unit"]), "started"), timeout=60, what="the long turn to start")
        runner = unit_property(claw, long["unit"], "MainPID")

        # The upgrade, as install.sh does it: pip install into the same venv, daemon-reload, notifier restart.
        seconds = installation.install(installation.new)
        assert _version(cu) == installation.new.version, "the newer release was not installed"
        systemctl(claw, "daemon-reload", check=True)
        notifier.stop()
        # While the notifier is down (a restart's window, widened): the question answered with the new CLI,
        # and the turn it starts ends with a question again; the restarted notifier must deliver both, once.
        cu.run("respond", "asks", "[[text: B it is. Which colour?]] take B")
        wait_until(lambda: _asked(claw, asks["unit"], 2), timeout=60, what="the answered turn to end")
        time.sleep(2)  # a notifier that started from "now" (second resolution) would not see those records
        notifier.start()

        # The session mid-turn went on in the same runner process, and finishes its turn.
        assert session(cu, "long")["status"] == "running", "the long turn ended before the upgrade was done"
        assert unit_property(claw, long["unit"], "MainPID") == runner
        wait_until(lambda: _waiting(cu, "long", "input"), timeout=90, what="the long turn to end")
        assert "the long answer" in cu.run("output", "long").stdout

        # A session launched after the upgrade runs the new release, is answered like the old ones.
        fresh = cu.launch("[[ask]] new question", "--name", "fresh", "--channel", "telegram|903")
        wait_until(lambda: _waiting(cu, "fresh", "question"), timeout=60, what="the new session's question")
        cu.run("respond", "fresh", "[[text: A it is. Which size?]] take A")
        wait_until(lambda: _asked(claw, fresh["unit"], 2), timeout=60, what="the new session's turn to end")

        # Every session is listed, killed and resumed with the new CLI, whichever release launched it.
        listed = {s["name"]: (s["status"], s["waitingFor"]) for s in cu.json("sessions")["sessions"]}
        assert listed == {"long": ("completed", "input"), "asks": ("waiting", "question"),
                          "fresh": ("waiting", "question")}  # fmt: skip
        # A session waiting for an answer is killed; one done but open for follow-ups has its runner stopped.
        assert {n: cu.json("kill", n)["status"] for n in ("long", "asks", "fresh")} == {
            "long": "completed",
            "asks": "killed",
            "fresh": "killed",
        }
        resumed = [
            cu.json("resume", name, f"[[text: resumed {name}]] go on", "--multi-turn-disabled")
            for name in ("long", "fresh")
        ]
        for r in resumed:
            claw.launched.append(r["unit"])
            done = cu.json("wait", r["id"], "--timeout", "90")
            assert done["status"] == "completed", done
        units = [long["unit"], asks["unit"], fresh["unit"], *(r["unit"] for r in resumed)]
        notifier.settle(*units, timeout=60, wakes=False)
    finally:
        notifier.close()

    # The records of the sessions that lived through the upgrade are whole: no gap, no error, one exit.
    for s, status in ((long, "completed"), (asks, "killed")):
        records = claw.journal(s["unit"])
        assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
        assert not of(records, "error") and [r["status"] for r in of(records, "exit")] == [status]

    # Every notification arrived exactly once, those of the restart's window included.
    sends = [(c.target, c.text) for c in rec.sends()]
    twice = [k for k, n in Counter(sends).items() if n > 1]
    outbox = (claw.state_dir / "notifier" / "outbox.jsonl").read_text(encoding="utf-8")
    assert twice == [], (twice, [c for c in rec.calls() if (c.target, c.text) in twice], outbox, notifier.log())
    heads = {t: [text.split("\n")[0] for text in rec.texts(t)] for t in ("901", "902", "903")}
    print(f"pip install of the newer release: {seconds:.1f} s; notifications: {json.dumps(heads, ensure_ascii=False)}")
    asked = ["↩️ [{0}] Launched:", "🔔 [{0}] Claude asks:", "↩️ [{0}] Responded:", "🔔 [{0}] Claude asks:",
             "⛔ [{0}] Killed"]  # fmt: skip
    assert heads["902"] == [h.format("asks") for h in asked]
    assert heads["903"] == [h.format("fresh") for h in asked]
    # Stopping the idle runner of a completed session (kill) reports nothing more.
    assert heads["901"] == ["↩️ [long] Launched:", "✅ [long] Completed"]
    # The resumed sessions run in the test venv's interpreter, not the one running the tests.
    assert str(installation.python) in unit_property(claw, resumed[1]["unit"], "ExecStart")
