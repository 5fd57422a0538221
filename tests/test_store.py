"""Session records on disk: permissions, round trips, references, crash safety, locking."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from clawunits.errors import Ambiguous, NotFound, StoreError
from clawunits.state import store as store_mod
from clawunits.state.models import SessionRecord, Status, WorktreeInfo
from clawunits.state.store import Store

DATA = Path(__file__).resolve().parent / "data"
CLAUDE_UUID = "3f2b8c1e-9a4d-4f6e-b1c2-7d8e9f0a1b2c"


def make(session_id: str, name: str, created_at: str = "2026-11-21T10:00:00.000Z", **kw: object) -> SessionRecord:
    return SessionRecord(
        id=session_id,
        name=name,
        prompt=f"prompt of {name}",
        workdir="/tmp",
        unit=f"clawunits-{name}-{session_id}.service",
        created_at=created_at,
        **kw,  # type: ignore[arg-type]
    )


def full_record() -> SessionRecord:
    """A record with every field set to something other than its default."""
    return SessionRecord(
        id="k3x9q2ab",
        name="fix-authentication-bug",
        prompt='Fix the bug\nwith "quotes", \\backslashes\\, ünïcødé and 🦀',
        workdir="/home/dev/projects/webapp",
        unit="clawunits-fix-authentication-bug-k3x9q2ab.service",
        created_at="2026-11-21T23:55:42.201Z",
        status=Status.WAITING,
        model="claude-sonnet-4-5",
        permission_mode="plan",
        budget_usd=2.5,
        multi_turn=False,
        system_prompt="Be terse.",
        allowed_tools=["Read", "Bash(npm test:*)"],
        claude_session_id=CLAUDE_UUID,
        resume_claude_session_id="0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f",
        resumed_from="p7m2n4c8",
        forked=True,
        cost_usd=0.4312,
        num_turns=7,
        started_at="2026-11-21T23:55:43.010Z",
        completed_at="2026-11-22T00:03:12.950Z",
        reason="done",
        result_preview="All 42 tests pass.",
        origin_channel="telegram:12345",
        origin_agent="agent-main",
        launched_by="telegram|main-bot|12345",
        wakes_agent=False,
        wake_agent_id="ops",
        wake_session_key="agent:ops:telegram:group:-1001234567890",
        notify="status",
        end_cause="budget",
        waiting_for="permission",
        pending_permission="a1b2c3",
        last_activity_at="2026-11-22T00:03:10.000Z",
        auto_responds=3,
        prior_cost_usd=0.25,
        idle_timeout_minutes=5.0,
        permission_timeout_sec=30.0,
        stall_timeout_sec=90.0,
        archived=True,
        plan_version=3,
        plan_approval_mode="default",
        memory_max=2 * 1024**3,
        cpu_quota=150.0,
        tasks_max=256,
        runtime_max_sec=7200.0,
        interrupted_at="2026-11-21T23:59:00.000Z",
        recoveries=2,
        recovered_at="2026-11-22T00:01:00.000Z",
        environment={"ANTHROPIC_BASE_URL": "http://127.0.0.1:8765", "PATH": "/usr/bin:/bin"},
        worktree=WorktreeInfo(
            path="/state/worktrees/webapp/fix-authentication-bug",
            branch="clawunits/fix-authentication-bug",
            base="main",
            base_commit="0123456789abcdef0123456789abcdef01234567",
            repo="/home/dev/projects/webapp",
            removed=True,
        ),
        limit_window="five_hour",
        limit_resets_at="2026-11-22T05:00:00Z",
        limit_utilization=0.93,
        limited_at="2026-11-22T00:02:00.000Z",
        limit_resumes=1,
        limit_resumed_at="2026-11-22T00:03:00.000Z",
        limit_warned=["five_hour"],
        queue_priority=True,
        queued_worktree_base="release/1.2",
        schema=1,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_files_are_private_whatever_the_umask(store: Store, open_umask: None) -> None:
    store.save(make("aaaa1111", "one"))
    with store.lock("aaaa1111"):
        pass
    for d in (store.root, store.sessions_dir, store.locks_dir):
        assert mode(d) == 0o700, d
    assert mode(store.path_of("aaaa1111")) == 0o600
    assert mode(store.locks_dir / "aaaa1111.lock") == 0o600
    # Rewriting keeps the mode (the file is replaced, not truncated in place).
    store.update("aaaa1111", lambda r: r.with_changes(num_turns=1))
    assert mode(store.path_of("aaaa1111")) == 0o600


def test_existing_open_directories_are_tightened(store: Store) -> None:
    store.sessions_dir.mkdir(parents=True)
    store.root.chmod(0o755)
    store.sessions_dir.chmod(0o777)
    store.save(make("aaaa1111", "one"))
    assert mode(store.root) == 0o700
    assert mode(store.sessions_dir) == 0o700


def test_round_trip_keeps_every_field(store: Store) -> None:
    rec = full_record()
    defaults = SessionRecord(id="", name="", prompt="", workdir="", unit="", created_at="")
    unset = [f.name for f in dataclasses.fields(rec) if getattr(rec, f.name) == getattr(defaults, f.name)]
    assert unset == ["schema"]  # schema is the one field that must equal its default
    store.save(rec)
    loaded = store.load(rec.id)
    assert loaded == rec
    assert loaded.status is Status.WAITING
    assert store.all() == [rec]


def test_round_trip_of_a_minimal_record_keeps_the_nones(store: Store) -> None:
    rec = make("aaaa1111", "one")
    store.save(rec)
    assert store.load("aaaa1111") == rec
    assert store.load("aaaa1111").model is None


def test_frozen_v1_record_keeps_loading(store: Store) -> None:
    store.sessions_dir.mkdir(parents=True)
    shutil.copy(DATA / "record_v1.toml", store.path_of("k3x9q2ab"))
    rec = store.load("k3x9q2ab")
    assert rec.id == "k3x9q2ab"
    assert rec.name == "fix-authentication-bug"
    assert rec.prompt == 'Fix the authentication bug in src/auth.ts\nand add a test for "expired" tokens (C:\\temp ok)'
    assert rec.workdir == "/home/dev/projects/webapp"
    assert rec.unit == "clawunits-fix-authentication-bug-k3x9q2ab.service"
    assert rec.created_at == "2026-11-21T23:55:42.201Z"
    assert rec.status is Status.COMPLETED
    assert rec.model == "claude-sonnet-4-5"
    assert rec.permission_mode == "acceptEdits"
    assert rec.budget_usd == 2.5
    assert rec.multi_turn is False
    assert rec.system_prompt == "Be terse."
    assert rec.allowed_tools == ["Read", "Edit", "Bash(npm test:*)"]
    assert rec.claude_session_id == CLAUDE_UUID
    assert rec.resume_claude_session_id == "0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f"
    assert rec.resumed_from == "p7m2n4c8"
    assert rec.forked is True
    assert rec.cost_usd == pytest.approx(0.4312)
    assert rec.num_turns == 7
    assert rec.started_at == "2026-11-21T23:55:43.010Z"
    assert rec.completed_at == "2026-11-22T00:03:12.950Z"
    assert rec.reason == "done"
    assert rec.result_preview == "Fixed the token expiry check; all 42 tests pass. ✅"
    assert rec.origin_channel == "telegram:12345"
    assert rec.schema == 1
    assert rec.duration_ms == 449_940
    assert store.resolve("fix-authentication-bug") == rec
    # Saving it again and reloading changes nothing.
    store.save(rec)
    assert store.load("k3x9q2ab") == rec


@pytest.fixture
def populated(store: Store) -> Store:
    store.save(make("abcd1234", "fix-auth", "2026-11-21T10:00:00.000Z", claude_session_id=CLAUDE_UUID))
    store.save(make("abcd5678", "add-tests", "2026-11-21T11:00:00.000Z"))
    store.save(make("zzzz0000", "refactor", "2026-11-21T12:00:00.000Z"))
    # A resumption shares the Claude session: the newest record is the one meant.
    store.save(make("yyyy9999", "fix-auth-2", "2026-11-21T13:00:00.000Z", claude_session_id=CLAUDE_UUID))
    return store


def test_resolve_by_id_name_claude_uuid_and_prefix(populated: Store) -> None:
    assert populated.resolve("abcd1234").name == "fix-auth"
    assert populated.resolve("add-tests").id == "abcd5678"
    assert populated.resolve("  refactor\n").id == "zzzz0000"
    assert populated.resolve(CLAUDE_UUID).id == "yyyy9999"
    assert populated.resolve("zzzz").id == "zzzz0000"
    assert populated.resolve("abcd12").id == "abcd1234"


def test_resolve_name_that_looks_like_an_id(store: Store) -> None:
    store.save(make("aaaa1111", "bbbb2222"))
    assert store.resolve("bbbb2222").id == "aaaa1111"


def test_resolve_unknown_is_not_found_with_a_clear_message(populated: Store) -> None:
    for ref in ("nope", "qqqq9999", "abc", "0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f"):
        with pytest.raises(NotFound) as err:
            populated.resolve(ref)
        assert repr(ref) in err.value.message
        assert err.value.code == "not-found"
    with pytest.raises(NotFound, match="empty"):
        populated.resolve("   ")
    with pytest.raises(NotFound, match="qqqq9999"):
        populated.load("qqqq9999")


def test_resolve_ambiguous_prefix(populated: Store) -> None:
    with pytest.raises(Ambiguous) as err:
        populated.resolve("abcd")
    assert "abcd1234" in err.value.message and "abcd5678" in err.value.message
    assert err.value.hint


@pytest.mark.parametrize("failing", ["replace", "fsync", "fchmod"])
def test_crash_during_write_keeps_the_old_file_and_leaves_no_temp(
    store: Store, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    old = make("aaaa1111", "one", num_turns=1)
    store.save(old)
    before = store.path_of("aaaa1111").read_bytes()

    def boom(*_a: object, **_k: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store_mod.os, failing, boom)
    with pytest.raises(StoreError, match="aaaa1111"):
        store.save(old.with_changes(num_turns=2, prompt="new " * 1000))
    monkeypatch.undo()

    assert store.path_of("aaaa1111").read_bytes() == before
    assert store.load("aaaa1111") == old
    assert sorted(p.name for p in store.sessions_dir.iterdir()) == ["aaaa1111.toml"]


def test_interrupt_during_write_leaves_no_temp(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save(make("aaaa1111", "one"))

    def interrupted(*_a: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store_mod.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.update("aaaa1111", lambda r: r.with_changes(num_turns=5))
    monkeypatch.undo()
    assert store.load("aaaa1111").num_turns == 0
    assert [p.name for p in store.sessions_dir.iterdir()] == ["aaaa1111.toml"]
    # The lock was released: the next update goes through.
    assert store.update("aaaa1111", lambda r: r.with_changes(num_turns=5)).num_turns == 5


def test_corrupt_records_are_skipped_with_a_warning(populated: Store, caplog: pytest.LogCaptureFixture) -> None:
    d = populated.sessions_dir
    (d / "badtoml1.toml").write_text("id = 'x\nname = [")
    (d / "missing2.toml").write_text('id = "missing2"\n')  # required fields absent
    (d / "status33.toml").write_text(
        'id = "status33"\nname = "s"\nprompt = ""\nworkdir = "/"\nunit = "u"\ncreated_at = "x"\nstatus = "bogus"\n'
    )
    (d / "binary44.toml").write_bytes(b"\xff\xfe\x00garbage")
    (d / "adir5555.toml").mkdir()
    (d / "empty666.toml").write_text("")
    with caplog.at_level(logging.WARNING, logger="clawunits.state.store"):
        records = populated.all()
    assert [r.id for r in records] == ["abcd1234", "abcd5678", "zzzz0000", "yyyy9999"]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for bad in ("badtoml1", "missing2", "status33", "binary44", "adir5555", "empty666"):
        assert f"{bad}.toml" in warned
    # Listing and resolving still work; loading the bad one directly is a StoreError, not a crash.
    assert populated.resolve("refactor").id == "zzzz0000"
    with pytest.raises(StoreError, match="badtoml1"):
        populated.load("badtoml1")


def test_all_on_a_missing_state_dir_is_empty(tmp_path: Path) -> None:
    assert Store(tmp_path / "nowhere").all() == []
    with pytest.raises(NotFound):
        Store(tmp_path / "nowhere").resolve("fix-auth")


def test_update_none_or_unchanged_writes_nothing(store: Store) -> None:
    store.save(make("aaaa1111", "one"))
    path = store.path_of("aaaa1111")
    ino = path.stat().st_ino
    assert store.update("aaaa1111", lambda r: None) == store.load("aaaa1111")
    assert store.update("aaaa1111", lambda r: r.with_changes(num_turns=0)).num_turns == 0
    assert path.stat().st_ino == ino
    with pytest.raises(NotFound):
        store.update("nope0000", lambda r: r)


INCREMENTS = 200


def _increment_many(root: str) -> None:
    s = Store(Path(root))
    for _ in range(INCREMENTS):
        s.update("aaaa1111", lambda r: r.with_changes(num_turns=r.num_turns + 1))


def test_concurrent_updates_from_two_processes_lose_nothing(store: Store) -> None:
    store.save(make("aaaa1111", "one"))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_increment_many, args=(str(store.root),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert store.load("aaaa1111").num_turns == 2 * INCREMENTS
    assert [p.name for p in store.sessions_dir.iterdir()] == ["aaaa1111.toml"]
