"""The durable inbox between ``clawunits respond`` and the runner, and the runner's pure decisions
(question or finished task; what a permission answer means). No units here: files and functions only."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from clawunits.runner.answers import decision, is_question
from clawunits.state.inbox import Inbox, inbox_for


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_messages_come_out_in_posted_order(tmp_path: Path) -> None:
    inbox = inbox_for(tmp_path, "abcd1234")
    assert inbox.root == tmp_path / "inbox" / "abcd1234"
    assert inbox.pending() == [] and inbox.in_flight() == []
    posted = [inbox.post(f"message {i}", interrupt=i == 3, user_initiated=i == 4) for i in range(50)]
    assert len({m.id for m in posted}) == 50
    assert [m.posted_ns for m in posted] == sorted(m.posted_ns for m in posted)
    pending = inbox.pending()
    assert [e.message for e in pending] == posted
    assert pending[3].message.interrupt and not pending[2].message.interrupt
    assert pending[4].message.user_initiated and not pending[3].message.user_initiated
    assert pending[0].message.ts.endswith("Z")
    # Nothing is left half-written in tmp/.
    assert _names(inbox.tmp) == []


def test_take_moves_to_taken_and_delivered_to_done(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "box")
    first, second = inbox.post("one"), inbox.post("two")
    entry = inbox.pending()[0]
    taken = inbox.take(entry)
    assert taken is not None and taken.message == first
    assert taken.path.parent == inbox.taken
    assert [e.message for e in inbox.pending()] == [second]
    assert [e.message for e in inbox.in_flight()] == [first]
    # The same entry cannot be taken twice.
    assert inbox.take(entry) is None
    inbox.delivered(taken)
    assert inbox.in_flight() == []
    assert _names(inbox.done) == [taken.path.name]
    # Delivering twice is harmless.
    inbox.delivered(taken)
    assert _names(inbox.done) == [taken.path.name]


def test_take_is_exclusive_between_two_takers(tmp_path: Path) -> None:
    """Two takers (say a runner and its restarted successor) racing over one queue: each message once."""
    root = tmp_path / "box"
    poster = Inbox(root)
    posted = [poster.post(f"m{i:03d}").id for i in range(300)]
    takers = [Inbox(root), Inbox(root)]
    got: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def take_all(k: int) -> None:
        start.wait()
        for _ in range(3):  # a few passes, as the runner loop does
            for entry in takers[k].pending():
                taken = takers[k].take(entry)
                if taken is not None:
                    got[k].append(taken.message.id)

    threads = [threading.Thread(target=take_all, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(got[0] + got[1]) == sorted(posted), "a message was lost or taken twice"
    assert not set(got[0]) & set(got[1])
    # Each taker saw its share in posted order.
    for ids in got:
        assert ids == [i for i in posted if i in set(ids)]
    assert poster.pending() == [] and len(poster.in_flight()) == 300


def test_files_and_directories_are_private(tmp_path: Path) -> None:
    old = os.umask(0)  # even a permissive umask must not make messages readable by others
    try:
        inbox = inbox_for(tmp_path / "state", "abcd1234")
        inbox.post("secret answer")
    finally:
        os.umask(old)
    for d in (inbox.root.parent, inbox.root, inbox.tmp, inbox.queue, inbox.taken, inbox.done):
        assert _mode(d) == 0o700, d
    (path,) = list(inbox.queue.iterdir())
    assert _mode(path) == 0o600
    taken = inbox.take(inbox.pending()[0])
    assert taken is not None and _mode(taken.path) == 0o600
    inbox.delivered(taken)
    assert _mode(inbox.done / taken.path.name) == 0o600


def test_existing_loose_directory_is_tightened(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "box")
    inbox.queue.mkdir(parents=True)
    inbox.queue.chmod(0o755)
    inbox.post("x")
    assert _mode(inbox.queue) == 0o700


def test_recover_requeues_undelivered_and_files_delivered(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "box")
    msgs = [inbox.post(f"m{i}") for i in range(4)]
    for entry in inbox.pending()[:3]:
        assert inbox.take(entry) is not None
    # The runner crashed after recording m1 as delivered; m0 and m2 were taken but never handed to Claude.
    requeued = Inbox(tmp_path / "box").recover([msgs[1].id, "someone-else"])
    assert requeued == 2
    assert inbox.in_flight() == []
    # Back in the queue, still in posted order and ahead of the message that was never taken.
    assert [e.message.id for e in inbox.pending()] == [msgs[0].id, msgs[2].id, msgs[3].id]
    assert [json.loads((inbox.done / n).read_text())["id"] for n in _names(inbox.done)] == [msgs[1].id]
    # Nothing in flight: nothing to do.
    assert inbox.recover([]) == 0


def test_recover_with_no_journal_requeues_everything(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "box")
    inbox.post("a")
    inbox.post("b")
    for entry in inbox.pending():
        inbox.take(entry)
    assert inbox.recover(set()) == 2
    assert [e.message.text for e in inbox.pending()] == ["a", "b"]


def test_corrupt_file_is_skipped(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "box")
    a = inbox.post("before")
    name = f"{a.posted_ns + 1:020d}-garbage1.json"
    (inbox.queue / name).write_text("{not json")
    (inbox.queue / f"{a.posted_ns + 2:020d}-wrongkey.json").write_text(json.dumps({"id": "x", "nope": 1}))
    (inbox.queue / "README").write_text("not a message file")
    b = inbox.post("after")
    assert [e.message for e in inbox.pending()] == [a, b]
    # In taken/ too: recover() skips it and moves on.
    os.rename(inbox.queue / name, inbox.taken / name)
    for entry in inbox.pending():
        inbox.take(entry)
    assert inbox.recover([a.id]) == 1
    assert [e.message for e in inbox.pending()] == [b]
    assert (inbox.taken / name).exists()


def test_pending_of_a_missing_inbox_is_empty(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "never-created")
    assert inbox.pending() == [] and inbox.in_flight() == [] and inbox.recover(["x"]) == 0
    assert not inbox.root.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I can do A or B. Which option do you prefer?", True),
        ("Done.\n\nShould I also update the tests?", True),
        ("Shall I continue?  \n\n", True),
        ("**Do you want me to proceed?**", True),
        ("Which one (A or B?)", True),
        ('Reply "yes?"', True),
        ("`really?`", True),
        ("Why did it fail? Because of X.\nFixed it.", False),
        ("All tests pass.", False),
        ("What about this? I did it anyway.", False),
        ("", False),
        ("   \n  \n", False),
        ("Is it ?\n- item", False),
    ],
)
def test_is_question(text: str, expected: bool) -> None:
    assert is_question(text) is expected


@pytest.mark.parametrize(
    ("answer", "allow", "reason"),
    [
        ("allow", True, ""),
        ("Allow", True, ""),
        ("yes", True, ""),
        ("y", True, ""),
        ("approve", True, ""),
        ("OK!", True, ""),
        ("allow. go ahead", True, ""),
        ("deny", False, ""),
        ("Deny not in this directory", False, "not in this directory"),
        ("no, use the staging copy", False, "use the staging copy"),
        ("reject", False, ""),
        ("please use git mv instead", False, "please use git mv instead"),
        ("  ", False, ""),
        ("allowance is not a word I meant", False, "allowance is not a word I meant"),
        ("yesterday's file, not this one", False, "yesterday's file, not this one"),
    ],
)
def test_permission_decision(answer: str, allow: bool, reason: str) -> None:
    assert decision(answer) == (allow, reason)
