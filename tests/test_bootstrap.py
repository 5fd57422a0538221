"""Tests for clawunits.bootstrap against the real journald and user manager of this machine.

Nothing here stops what runs: the only processes these tests start and stop are `sleep`s of their own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clawunits.bootstrap import boot as bootstrap
from clawunits.bootstrap.daemons import Proc, launch
from clawunits.bootstrap.placement import cgroup_roots
from clawunits.bootstrap.probe import Probe, base_env
from clawunits.bootstrap.state import Booted, load_state, save_state
from clawunits.errors import BootstrapError

UID = os.getuid()


@pytest.fixture(scope="module", autouse=True)
def running() -> Iterator[Probe]:
    """Make sure a manager runs (a no-op where one does, e.g. after install.sh); undo only what we started."""
    booted = bootstrap.ensure_user_manager()
    yield bootstrap.probe()
    bootstrap.teardown(booted)


def test_probe_reports_the_running_manager(running: Probe) -> None:
    p = bootstrap.probe()
    assert p.usable, p.missing()
    assert p.missing() == []
    assert p.uid == UID
    assert p.runtime_dir == Path(f"/run/user/{UID}")
    assert p.runtime_dir_ok
    assert p.journald_pid is not None
    assert p.manager_pid is not None and p.manager_pid == running.manager_pid
    assert p.manager_state in ("running", "degraded")
    assert p.manager_cgroup_ok and f"user@{UID}.service" in (p.manager_cgroup or "")
    assert p.user_bus
    if not p.pid1_systemd:
        assert p.system_marker  # the user manager cannot run without it


def test_ensure_starts_nothing_when_everything_runs(running: Probe) -> None:
    booted = bootstrap.ensure_user_manager(timeout=5.0)
    assert booted.is_empty
    assert booted == Booted(uid=UID, runtime_dir=f"/run/user/{UID}")
    assert bootstrap.probe().manager_pid == running.manager_pid


def test_up_is_idempotent_across_concurrent_processes(running: Probe) -> None:
    cmd = [sys.executable, "-m", "clawunits.bootstrap", "up", "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        data = json.loads(out)
        assert Booted.from_json(json.dumps({"version": 1, **data["booted"]})).is_empty
        assert any(line.startswith("using running user manager") for line in data["actions"])


def test_teardown_of_empty_booted_does_nothing(running: Probe) -> None:
    assert bootstrap.teardown(Booted(uid=UID, runtime_dir=f"/run/user/{UID}")) == []
    after = bootstrap.probe()
    assert after.usable
    assert (after.manager_pid, after.journald_pid) == (running.manager_pid, running.journald_pid)


def test_status_cli_exits_zero_when_usable() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "clawunits.bootstrap", "status", "--json"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert data["usable"] is True
    assert data["env"] == bootstrap.user_env()


def test_probe_of_a_uid_without_manager() -> None:
    p = bootstrap.probe(uid=54_321)  # nobody has this uid; probing must not create or start anything
    assert not p.usable
    assert not p.runtime_dir_ok and not p.manager and not p.user_bus
    assert any("user manager" in m for m in p.missing())
    assert not Path("/run/user/54321").exists()


def test_user_env() -> None:
    assert bootstrap.user_env(1000) == {
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
    }
    assert bootstrap.user_env()["XDG_RUNTIME_DIR"] == f"/run/user/{UID}"


def test_cgroup_roots_exist() -> None:
    roots = cgroup_roots()
    assert roots and all((r / "cgroup.procs").exists() for r in roots)
    assert len(roots) == len(set(roots))


def full_booted(tmp_path: Path) -> Booted:
    return Booted(
        uid=4242,
        runtime_dir="/run/user/4242",
        journald=Proc(pid=11, start_time=22, log=str(tmp_path / "journald.log")),
        manager=Proc(pid=33, start_time=44, log=str(tmp_path / "user-manager.log")),
        dirs=("/run/user", "/run/systemd/system"),
        trees=("/run/user/4242",),
        cgroups=("/sys/fs/cgroup/unified/user.slice/user-4242.slice",),
    )


def test_booted_json_round_trip(tmp_path: Path) -> None:
    booted = full_booted(tmp_path)
    assert Booted.from_json(booted.to_json()) == booted
    empty = Booted(uid=0, runtime_dir="/run/user/0")
    assert Booted.from_json(empty.to_json()) == empty
    with pytest.raises(ValueError):
        Booted.from_json(json.dumps({"version": 99, "uid": 0, "runtime_dir": "/run/user/0"}))


def test_state_file_is_private_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.json"
    assert load_state(path=path) is None
    booted = full_booted(tmp_path)
    assert save_state(booted, path) == path
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_state(path=path) == booted
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temp file left behind


def test_merged_keeps_both_records(tmp_path: Path) -> None:
    first = dataclasses.replace(full_booted(tmp_path), manager=None, cgroups=())
    later = Booted(uid=4242, runtime_dir="/run/user/4242", manager=Proc(1, 2, "x"), dirs=("/run/user", "/a"))
    merged = first.merged(later)
    assert merged.journald == first.journald and merged.manager == later.manager
    assert merged.dirs == ("/run/user", "/run/systemd/system", "/a")


def test_teardown_stops_what_it_started_and_removes_what_it_created(tmp_path: Path) -> None:
    proc = launch(["sleep", "300"], tmp_path / "sleep.log", base_env(), [])
    assert proc.is_alive()
    (kept := tmp_path / "kept").mkdir()
    (kept / "file").write_text("not ours")
    (empty := tmp_path / "empty").mkdir()
    (tree := tmp_path / "tree").mkdir()
    (tree / "sock").write_text("")
    booted = Booted(
        uid=UID,
        runtime_dir=str(tmp_path),
        journald=proc,
        dirs=(str(kept), str(empty), str(tmp_path / "gone")),
        trees=(str(tree),),
    )
    done = bootstrap.teardown(booted, timeout=5.0)
    assert not proc.is_alive()
    assert f"journald (pid {proc.pid}): stopped" in done
    assert kept.exists() and not empty.exists() and not tree.exists()
    assert any(line.startswith(f"kept {kept}") for line in done)
    # A second teardown finds everything gone (but the kept dir) and does no harm.
    assert bootstrap.teardown(booted, timeout=5.0) == [
        f"journald (pid {proc.pid}): already gone",
        f"kept {kept} (directory not empty)",
    ]


def test_teardown_never_signals_a_reused_pid() -> None:
    me = Proc(pid=os.getpid(), start_time=1, log="/dev/null")  # our pid, but a different start time
    assert not me.is_alive()
    assert bootstrap.teardown(Booted(uid=UID, runtime_dir="/x", manager=me)) == [
        f"user manager (pid {me.pid}): already gone"
    ]


def test_ensure_on_a_systemd_host_asks_for_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    down = dataclasses.replace(bootstrap.probe(), pid1_systemd=True, manager_pid=None, manager_state=None)
    monkeypatch.setattr(bootstrap, "probe", lambda uid=None: down)
    with pytest.raises(BootstrapError) as err:
        bootstrap.ensure_user_manager()
    assert "user manager" in err.value.message
    assert err.value.hint and "loginctl enable-linger" in err.value.hint


def test_ensure_without_root_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    down = dataclasses.replace(bootstrap.probe(), pid1_systemd=False, journald_pid=None)
    monkeypatch.setattr(bootstrap, "probe", lambda uid=None: down)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(BootstrapError) as err:
        bootstrap.ensure_user_manager()
    assert "journald" in err.value.message and "root" in err.value.message
    assert err.value.hint and "clawunits.bootstrap up" in err.value.hint


def test_manager_in_a_foreign_cgroup_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = dataclasses.replace(bootstrap.probe(), manager_cgroup="/")
    assert not bad.manager_cgroup_ok and not bad.usable
    monkeypatch.setattr(bootstrap, "probe", lambda uid=None: bad)
    with pytest.raises(BootstrapError, match="outside"):
        bootstrap.ensure_user_manager()


def test_ensure_waits_for_a_manager_that_is_still_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bootstrap.probe()
    answers = iter([dataclasses.replace(real, manager_state="starting", pid1_systemd=True)] * 3)
    monkeypatch.setattr(bootstrap, "probe", lambda uid=None: next(answers, real))
    assert bootstrap.ensure_user_manager(timeout=5.0).is_empty  # no error although nothing may be started


def test_ensure_times_out_on_a_manager_that_never_gets_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = dataclasses.replace(bootstrap.probe(), manager_state="starting")
    monkeypatch.setattr(bootstrap, "probe", lambda uid=None: stuck)
    with pytest.raises(BootstrapError, match="timed out waiting for user manager is starting"):
        bootstrap.ensure_user_manager(timeout=0.3)
