"""Session units on the real systemd user manager (D-Bus), nothing mocked."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import alive, systemctl, unit_properties, wait_until

from clawunits.errors import SystemdError
from clawunits.systemd.units import UnitSpec, UnitState, UserManager, literal_argv


@dataclass
class Units:
    """Starts test units on the real manager and remembers them, so the fixture can remove them all."""

    manager: UserManager
    tmp_path: Path
    names: list[str] = field(default_factory=list)

    def name(self, label: str) -> str:
        name = f"clawunits-test-{label}-{secrets.token_hex(4)}.service"
        self.names.append(name)
        return name

    def spec(
        self,
        label: str,
        script: str,
        *args: str,
        env: dict[str, str] | None = None,
        workdir: Path | None = None,
        stop_timeout_sec: float = 15.0,
        argv: list[str] | None = None,
    ) -> UnitSpec:
        name = self.name(label)
        return UnitSpec(
            name=name,
            description=f"clawunits test {label}",
            argv=argv or ["/bin/sh", "-c", script, "sh", *args],
            workdir=str(workdir or self.tmp_path),
            environment=env if env is not None else {"PATH": "/usr/bin:/bin"},
            syslog_identifier=name.removesuffix(".service").removeprefix("clawunits-test-"),
            stop_timeout_sec=stop_timeout_sec,
        )

    def start(self, label: str, script: str, *args: str, **kw: object) -> UnitSpec:
        spec = self.spec(label, script, *args, **kw)  # type: ignore[arg-type]
        self.manager.start(spec)
        return spec


@pytest.fixture
def manager(user_manager: dict[str, str]) -> Iterator[UserManager]:
    m = UserManager()
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def units(manager: UserManager, tmp_path: Path) -> Iterator[Units]:
    u = Units(manager=manager, tmp_path=tmp_path)
    try:
        yield u
    finally:
        for name in u.names:
            systemctl(None, "stop", name)
            systemctl(None, "reset-failed", name)
        for name in u.names:
            wait_until(lambda n=name: manager.state(n) is None, timeout=30, what=f"{name} to be unloaded")


def exited(manager: UserManager, name: str) -> UnitState:
    def check() -> UnitState | None:
        st = manager.state(name)
        return st if st is not None and st.has_exited else None

    return wait_until(check, timeout=30, what=f"{name} to exit")


def cgroup_pids(main_pid: int) -> tuple[Path, set[int]]:
    """The unit's cgroup.procs file (found through its main process) and the pids in it now."""
    line = next(ln for ln in Path(f"/proc/{main_pid}/cgroup").read_text().splitlines() if ln.startswith("0::"))
    rel = line.split("::", 1)[1].lstrip("/")
    for root in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        procs = root / rel / "cgroup.procs"
        if procs.exists():
            return procs, {int(p) for p in procs.read_text().split()}
    raise AssertionError(f"no cgroup.procs for {rel}")


def test_argv_arrives_unexpanded(units: Units, tmp_path: Path) -> None:
    out = tmp_path / "argv.txt"
    args = [
        "$UNDEFINED_X",
        "${HOME}",
        "$$",
        "%h",
        "%n",
        "%%",
        "a b",
        "'q'",
        '"dq"',
        "back\\slash",
        "ünï 🦀",
        "",
    ]
    spec = units.start("argv", 'printf "%s\\n" "$@" > "$OUT"', *args, env={"OUT": str(out), "HOME": "/nowhere"})
    exited(units.manager, spec.name)
    assert out.read_text().split("\n")[:-1] == args


def test_environment_and_workdir_arrive(units: Units, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    monkeypatch.setenv("CLAWUNITS_TEST_LEAK", "from the caller")
    env = {
        "PATH": "/usr/bin:/bin",
        "PLAIN": "value",
        "SPACES": "a value with  spaces",
        "DOLLAR": "$HOME ${PATH} $(id) `id`",
        "QUOTES": "'single' \"double\" back\\slash",
        "UNICODE": "ünïcødé 日本語 🦀",
        "EQUALS": "a=b=c",
        "PERCENT": "%h %n 100%",
        "MULTILINE": "line one\nline two",
        "EMPTY": "",
    }
    spec = units.start("env", 'env -0 > "$1/env.bin"; pwd -P > "$1/pwd.txt"', str(tmp_path), env=env, workdir=workdir)
    exited(units.manager, spec.name)
    got = dict(item.split("=", 1) for item in (tmp_path / "env.bin").read_text().split("\0") if item)
    for key, value in env.items():
        assert got.get(key) == value, key
    assert "CLAWUNITS_TEST_LEAK" not in got
    assert (tmp_path / "pwd.txt").read_text().strip() == str(workdir.resolve())


def test_state_running_then_exit_code(units: Units, tmp_path: Path) -> None:
    go = tmp_path / "go"
    spec = units.start("exit3", 'while [ ! -e "$1" ]; do sleep 0.05; done; exit 3', str(go))
    st = units.manager.state(spec.name)
    assert st is not None
    assert (st.load_state, st.active_state, st.sub_state) == ("loaded", "active", "running")
    assert st.is_running and not st.has_exited
    assert st.main_pid > 0 and alive(st.main_pid)
    assert len(st.invocation_id) == 32
    go.touch()
    st = exited(units.manager, spec.name)
    assert st.exec_main_code == 1  # CLD_EXITED
    assert st.exec_main_status == 3
    assert st.describe_exit() == "exit code 3"
    assert st.result == "exit-code"
    assert st.active_state == "failed"
    assert not st.is_running
    assert st.exit_timestamp_us > 0
    # The finished unit stays loaded with its result until it is reset.
    assert units.manager.state(spec.name) == st
    units.manager.reset(spec.name)
    wait_until(lambda: units.manager.state(spec.name) is None, what="reset unit to be unloaded")


def test_clean_exit_stays_loaded_as_exited(units: Units) -> None:
    spec = units.start("exit0", "exit 0")
    st = exited(units.manager, spec.name)
    assert (st.active_state, st.sub_state, st.result) == ("active", "exited", "success")
    assert st.describe_exit() == "exit code 0"
    assert not st.is_running


def test_sigkill_is_described(units: Units) -> None:
    spec = units.start("sigkill", "", argv=["/bin/sleep", "600"])
    st = units.manager.state(spec.name)
    assert st is not None and st.is_running
    units.manager.kill(spec.name, signal.SIGKILL)
    st = exited(units.manager, spec.name)
    assert st.exec_main_code == 2  # CLD_KILLED
    assert st.exec_main_status == signal.SIGKILL
    assert st.describe_exit() == "killed by SIGKILL"
    assert st.result == "signal"
    assert st.main_pid == 0


def _started_tree(units: Units, label: str, script: str, stop_timeout_sec: float) -> tuple[UnitSpec, set[int]]:
    spec = units.start(label, script, stop_timeout_sec=stop_timeout_sec)
    st = units.manager.state(spec.name)
    assert st is not None and st.main_pid
    main_pid = st.main_pid

    def three() -> set[int] | None:
        # The shell and its two backgrounded sleeps.
        pids = cgroup_pids(main_pid)[1]
        return pids if len(pids) >= 3 else None

    pids: set[int] = wait_until(three, what="three processes in the cgroup")
    assert main_pid in pids
    assert all(alive(p) for p in pids)
    return spec, pids


def test_stop_returns_when_every_process_is_gone(units: Units) -> None:
    spec, pids = _started_tree(units, "stop", "sleep 600 & sleep 601 & wait", stop_timeout_sec=15)
    procs_file, _ = cgroup_pids(next(iter(pids)))
    units.manager.stop(spec.name, timeout=30)
    assert [p for p in pids if alive(p)] == []
    assert not procs_file.exists() or procs_file.read_text().split() == []
    assert units.manager.state(spec.name) is None


def test_stop_kills_processes_that_ignore_sigterm(units: Units) -> None:
    # Every process ignores SIGTERM: stop must wait for the stop timeout and the SIGKILL that follows.
    spec, pids = _started_tree(units, "stubborn", "trap '' TERM; sleep 600 & sleep 601 & wait", stop_timeout_sec=1)
    t0 = time.monotonic()
    units.manager.stop(spec.name, timeout=30)
    elapsed = time.monotonic() - t0
    assert [p for p in pids if alive(p)] == []
    assert 0.9 <= elapsed < 15, elapsed


def test_missing_executable_fails_the_start_with_203(units: Units) -> None:
    spec = units.spec("noexec", "", argv=["/nonexistent/clawunits-no-such-binary", "x"])
    with pytest.raises(SystemdError) as err:
        units.manager.start(spec)
    assert "203" in err.value.message
    assert spec.name in err.value.message


def test_bad_workdir_fails_the_start_with_200(units: Units, tmp_path: Path) -> None:
    spec = units.spec("badwd", "true", workdir=tmp_path / "does-not-exist")
    with pytest.raises(SystemdError) as err:
        units.manager.start(spec)
    assert "200" in err.value.message


def test_list_shows_the_unit(units: Units) -> None:
    spec = units.start("list", "", argv=["/bin/sleep", "600"])
    listed = units.manager.list("clawunits-test-*")
    assert listed[spec.name] == ("active", "running")
    assert all(n.startswith("clawunits-test-") for n in listed)
    assert spec.name not in units.manager.list("clawunits-nomatch-*")


def test_state_of_unknown_unit_is_none(manager: UserManager) -> None:
    assert manager.state(f"clawunits-test-unknown-{secrets.token_hex(4)}.service") is None


def test_starting_a_loaded_name_again_is_unit_exists(units: Units) -> None:
    spec = units.start("dup", "", argv=["/bin/sleep", "600"])
    with pytest.raises(SystemdError) as err:
        units.manager.start(spec)
    assert err.value.code == "unit-exists"
    # The first unit is untouched.
    st = units.manager.state(spec.name)
    assert st is not None and st.is_running


def test_unit_properties_as_systemctl_shows_them(units: Units) -> None:
    spec = units.start("props", "", argv=["/bin/sleep", "600"], stop_timeout_sec=7)
    props = unit_properties(
        None, spec.name, "KillMode", "RemainAfterExit", "Type", "SyslogIdentifier", "TimeoutStopUSec", "StandardOutput"
    )
    assert props["KillMode"] == "control-group"
    assert props["RemainAfterExit"] == "yes"
    assert props["Type"] == "exec"
    assert props["SyslogIdentifier"] == spec.syslog_identifier
    assert props["TimeoutStopUSec"] == "7s"
    assert props["StandardOutput"] == "journal"


def test_manager_connection_survives_many_operations(units: Units) -> None:
    # One connection serves start, state, kill and stop in a row (the CLI's usage), with no stale job signals.
    names = []
    for i in range(5):
        spec = units.start(f"seq{i}", "", argv=["/bin/sleep", "600"])
        names.append(spec.name)
    for name in names:
        units.manager.stop(name, timeout=30)
        assert units.manager.state(name) is None


def test_dollar_is_escaped_as_systemds_literal_dollar() -> None:
    """``$`` in argv is sent as ``$$``, which systemd turns back into one ``$`` (test_argv_arrives_unexpanded)."""
    argv = ["/opt/a$b/python", "$HOME", "${X}", "$$", "plain"]
    assert literal_argv(argv) == ["/opt/a$$b/python", "$$HOME", "$${X}", "$$$$", "plain"]
