"""Test harness: a real systemd user manager and journald, a loopback Messages API, isolated state.

Nothing here is mocked. Where no user manager or journald runs (containers, CI) the harness boots them the
way install.sh does and stops, at the end, only what it started.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# The tests run clawunits as install.sh installs it (the venv's package and console script), never the checkout:
# `python -m pytest` puts the working directory first on sys.path, so it is taken off before clawunits is
# imported, and every process the tests start gets PYTHONSAFEPATH (else `python -m clawunits` imports the checkout).
sys.path[:] = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != REPO]
os.environ["PYTHONSAFEPATH"] = "1"

import clawunits  # noqa: E402
from clawunits.bootstrap import boot as bootstrap  # noqa: E402
from clawunits.testing.scripted_api import ScriptedAPI  # noqa: E402

INSTALLED = Path(clawunits.__file__).resolve().parent
FAKE_CLAUDE = REPO / "tests" / "fake_claude.py"

# What the Claude Code CLI needs to stay on loopback: no telemetry, no update checks, no error reports.
OFFLINE_ENV = {
    "ANTHROPIC_API_KEY": "sk-ant-test-dummy",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    # The CLI refuses bypassPermissions as root unless it is told it runs in a sandbox.
    "IS_SANDBOX": "1",
}
# Variables of the developer's own shell that would leak into sessions and change what they do.
SCRUBBED = ("ANTHROPIC_", "CLAUDE_", "CLAWUNITS_", "XDG_STATE_HOME", "XDG_CONFIG_HOME")


def installed_differences() -> list[str]:
    """The package files in which the installed clawunits differs from this checkout (missing ones included)."""
    source = REPO / "clawunits"
    ours = {p.relative_to(source) for p in source.rglob("*.py")}
    theirs = {p.relative_to(INSTALLED) for p in INSTALLED.rglob("*.py")}
    return sorted(
        str(rel)
        for rel in ours | theirs
        if rel not in ours & theirs or (source / rel).read_bytes() != (INSTALLED / rel).read_bytes()
    )


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test anything but this checkout as install.sh installed it."""
    if INSTALLED == REPO / "clawunits":
        pytest.exit(f"clawunits was imported from the checkout ({INSTALLED}), not the installed package", returncode=4)
    if changed := installed_differences():
        shown = ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")
        pytest.exit(
            f"the installed clawunits ({INSTALLED}) differs from this checkout in {shown}: run ./install.sh --dev",
            returncode=4,
        )


@pytest.fixture(scope="session")
def user_manager() -> Iterator[dict[str, str]]:
    """A running user manager + journald (booted if missing); yields the env to reach it."""
    booted = bootstrap.ensure_user_manager()
    env = bootstrap.user_env()
    os.environ.update(env)
    try:
        yield env
    finally:
        bootstrap.teardown(booted)


@pytest.fixture(scope="session")
def scripted_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedAPI]:
    api = ScriptedAPI(log_path=tmp_path_factory.mktemp("api") / "requests.jsonl")
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="session")
def claude_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared by all tests: the CLI's first start in a fresh config dir costs an extra second.
    return tmp_path_factory.mktemp("claude-config")


@dataclass
class Claw:
    """A clawunits installation of the test's own: state, config, workdir, and the environment to run it."""

    env: dict[str, str]
    state_dir: Path
    config_path: Path
    workdir: Path
    api: ScriptedAPI
    launched: list[str] = field(default_factory=list)
    # How to run the CLI: the package install.sh installed (another installation's script, in test_upgrade).
    cli: list[str] = field(default_factory=lambda: [sys.executable, "-m", "clawunits"])

    def run(
        self, *args: str, check: bool = True, timeout: float = 60, stdin_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``clawunits`` CLI in a subprocess."""
        proc = subprocess.run(
            [*self.cli, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **({"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}),
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"clawunits {' '.join(args)} exited {proc.returncode}: {proc.stderr}{proc.stdout}")
        return proc

    def json(self, *args: str) -> Any:
        # A command that waits (`wait --timeout N`) gets its N seconds, and then some, before it is called hung.
        waits = float(args[args.index("--timeout") + 1]) + 30 if "--timeout" in args else 0
        return json.loads(self.run(*args, "--json", timeout=max(60, waits)).stdout)

    def launch(self, prompt: str, *args: str) -> dict[str, Any]:
        data = self.json("launch", prompt, "--workdir", str(self.workdir), *args)
        self.launched.append(data["unit"])
        return data

    def wait(self, ref: str, timeout: float = 90) -> dict[str, Any]:
        return self.json("wait", ref, "--timeout", str(timeout))

    def journal(self, unit: str) -> list[dict[str, Any]]:
        """The unit's records as journalctl shows them to a person (``-o cat``)."""
        out = subprocess.run(
            ["journalctl", "--no-pager", "-q", f"_SYSTEMD_USER_UNIT={unit}", "-o", "cat"],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def write_config(self, **options: Any) -> None:
        """Replace the config file with ``options``."""
        import tomli_w

        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(tomli_w.dumps(options))


def systemctl(claw: Claw | None, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """``systemctl --user ARGS`` in the test's environment (None: this process's, which reaches the manager
    once the ``user_manager`` fixture ran)."""
    return subprocess.run(
        ["systemctl", "--user", *args],
        env=claw.env if claw is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def unit_property(claw: Claw | None, unit: str, prop: str) -> str:
    """One property of the unit as systemd reports it ("" if systemctl fails, e.g. while the manager restarts)."""
    return systemctl(claw, "show", "-p", prop, "--value", unit).stdout.strip()


def unit_properties(claw: Claw | None, unit: str, *props: str) -> dict[str, str]:
    """Several properties of the unit, by name."""
    out = systemctl(claw, "show", unit, *(f"-p{p}" for p in props), check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def of(records: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    """The records of one type, in order."""
    return [r for r in records if r["type"] == type_]


def unit_pids(claw: Claw, unit: str) -> list[int]:
    """Every process in the unit's cgroup, from systemd's own view (unified or hybrid layout)."""
    cgroup = unit_property(claw, unit, "ControlGroup")
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup", "/sys/fs/cgroup/systemd"):
        procs = Path(root, cgroup.lstrip("/"), "cgroup.procs")
        if cgroup and procs.exists():
            return [int(p) for p in procs.read_text().split()]
    return []


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def fails(claw: Claw, *args: str, code: int, same: Callable[[Claw], object] | None = None) -> str:
    """Run a command that must fail with exit ``code``, one clear error line and no traceback; returns the line.

    ``same``, if given, reads what the failure must leave as it was (compared before and after)."""
    before = same(claw) if same else None
    proc = claw.run(*args, check=False)
    assert proc.returncode == code, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clawunits: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    if same:
        assert same(claw) == before, f"{same.__name__} changed"
    return lines[0]


def session_names(claw: Claw) -> list[str]:
    """The record files in the store (a failing command must record no session)."""
    sessions = claw.state_dir / "sessions"
    return sorted(p.name for p in sessions.glob("*.toml")) if sessions.exists() else []


def session_files(claw: Claw) -> dict[str, bytes]:
    """The record files in the store, with their contents."""
    return {p.name: p.read_bytes() for p in (claw.state_dir / "sessions").glob("*.toml")}


def state_snapshot(state: Path) -> dict[str, tuple[int, str]]:
    """Every path under the state directory (inboxes, locks and caches too) with its mode and content hash,
    so that comparing two snapshots catches any change."""
    if not state.exists():
        return {}
    snapshot = {}
    for path in sorted(state.rglob("*")):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        else:
            content = ""
        snapshot[str(path.relative_to(state))] = (st.st_mode, content)
    return snapshot


def wait_until(
    predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def claw(
    tmp_path: Path, user_manager: dict[str, str], scripted_api: ScriptedAPI, claude_config_dir: Path
) -> Iterator[Claw]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    env.update(user_manager)
    env.update(OFFLINE_ENV)
    state, config, work = tmp_path / "state", tmp_path / "config" / "config.toml", tmp_path / "work"
    work.mkdir()
    env.update(
        {
            "ANTHROPIC_BASE_URL": scripted_api.url,
            "CLAUDE_CONFIG_DIR": str(claude_config_dir),
            "CLAWUNITS_STATE_DIR": str(state),
            "CLAWUNITS_CONFIG": str(config),
        }
    )
    c = Claw(env=env, state_dir=state, config_path=config, workdir=work, api=scripted_api)
    c.write_config()
    try:
        yield c
    finally:
        _stop_units(c)


def _stop_units(c: Claw) -> None:
    """Leave no unit of this test behind: stop and reset every session unit it launched."""
    units = set(c.launched)
    for path in (c.state_dir / "sessions").glob("*.toml") if (c.state_dir / "sessions").exists() else []:
        for line in path.read_text(errors="replace").splitlines():  # (a test may leave a damaged file)
            if line.startswith("unit = "):
                units.add(json.loads(line.split("=", 1)[1].strip()))
    for unit in units:
        subprocess.run(["systemctl", "--user", "stop", unit], env=c.env, capture_output=True, timeout=60)
        subprocess.run(["systemctl", "--user", "reset-failed", unit], env=c.env, capture_output=True, timeout=30)
