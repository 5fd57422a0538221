"""Format versions: a session file's ``schema`` and the record stream's ``v``.

Older formats are read by a newer clawunits (a file without ``schema``, a stream without ``v``: version 1); a
newer one is refused by an older clawunits with one clear line, and never rewritten by it.
"""

from __future__ import annotations

import json
import re
import tomllib

import tomli_w
from conftest import Claw, fails, session_files, wait_until
from notifier_harness import Emitter, configure, running_notifier

from clawunits.records import STREAM_VERSION
from clawunits.state.models import SCHEMA_VERSION
from clawunits.state.session_file import from_toml, to_toml
from clawunits.state.store import Store

NEWER = SCHEMA_VERSION + 1
NEWER_V = STREAM_VERSION + 1


def _rewrite(claw: Claw, sid: str, **changes: object) -> None:
    """Edit a stored session file as another clawunits would have written it."""
    path = Store(claw.state_dir).path_of(sid)
    data = tomllib.loads(path.read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path.write_text(tomli_w.dumps(data))


def test_a_session_file_of_a_newer_schema_is_refused_in_one_line_and_never_rewritten(claw: Claw) -> None:
    newer = Emitter.create(claw, "from-the-future").record
    other = Emitter.create(claw, "today").record
    # What a newer clawunits might write: a higher schema and a field this one does not know.
    _rewrite(claw, newer.id, schema=NEWER, sandbox={"profile": "strict"})
    line = f"clawunits: error: session {newer.id} was written by a newer clawunits: schema {NEWER}, this one reads 1"
    for args in (["output", newer.id], ["kill", newer.id], ["respond", newer.id, "hello"], ["wait", newer.id]):
        assert fails(claw, *args, code=11, same=session_files) == f"{line} (hint: upgrade clawunits)"
    # The listing shows every other session and names the skipped file in one line.
    listing = claw.run("sessions", "--all", "--json")
    assert [s["id"] for s in json.loads(listing.stdout)["sessions"]] == [other.id]
    warnings = listing.stderr.strip().splitlines()
    assert len(warnings) == 1 and f"{newer.id}.toml" in warnings[0] and f"schema {NEWER}" in warnings[0]
    # The newer file is left exactly as written (an older clawunits saving it would drop `sandbox`).
    data = tomllib.loads(Store(claw.state_dir).path_of(newer.id).read_text())
    assert data["schema"] == NEWER and data["sandbox"] == {"profile": "strict"}


def test_a_session_file_without_schema_reads_as_schema_1_and_is_written_back_with_it(claw: Claw) -> None:
    old = Emitter.create(claw, "from-the-past", origin_channel="telegram|1").record
    _rewrite(claw, old.id, schema=None)
    store = Store(claw.state_dir)
    assert "schema" not in store.path_of(old.id).read_text()
    assert store.load(old.id).schema == 1
    assert [s["id"] for s in claw.json("sessions", "--all")["sessions"]] == [old.id]
    store.update(old.id, lambda r: r.with_changes(reason="touched"))
    assert tomllib.loads(store.path_of(old.id).read_text())["schema"] == SCHEMA_VERSION
    assert from_toml({**to_toml(old), "schema": 1}).schema == SCHEMA_VERSION


def test_a_newer_record_stream_is_refused_by_output_and_not_misread_by_the_notifier(claw: Claw) -> None:
    rec = configure(claw)
    newer = Emitter.create(claw, "newer-runner", origin_channel="telegram|801")
    older = Emitter.create(claw, "older-runner", origin_channel="telegram|802")
    with running_notifier(claw, rec) as n:
        newer.run(
            [
                {"type": "started", "v": NEWER_V, "claudeSessionId": "c-new"},
                {"type": "text", "text": "from a newer runner"},
                {"type": "waiting", "question": True, "text": "Misread question?"},
                {"type": "exit", "status": "completed", "reason": "done", "cause": "completed", "costUsd": 0.0},
            ]
        )
        # A runner of an older clawunits, before `v` existed: read as v1.
        older.run(
            [
                {"type": "started", "claudeSessionId": "c-old"},
                {"type": "text", "text": "from an older runner"},
                {"type": "waiting", "question": True, "text": "Old question?"},
            ]
        )
        wait_until(lambda: len(rec.texts("802")) >= 2, what="the older runner's notifications")
        n.settle(newer.unit, older.unit, wakes=False)
        log = n.log()
    assert rec.texts("801") == []
    assert rec.texts("802") == ["↩️ [older-runner] Launched:\nscripted records for older-runner",
                                "🔔 [older-runner] Claude asks:\nOld question?"]  # fmt: skip
    warned = [ln for ln in log.splitlines() if "newer clawunits" in ln]
    assert len(warned) == 1, log
    assert f"session {newer.record.id} was written by a newer clawunits: record stream v{NEWER_V}" in warned[0]

    sid = newer.record.id
    line = fails(claw, "output", sid, code=11)
    assert line == (
        f"clawunits: error: session {sid} was written by a newer clawunits: record stream v{NEWER_V}, "
        f"this one reads v{STREAM_VERSION} (hint: upgrade clawunits)"
    )
    assert fails(claw, "output", sid, "--full", code=11) == line
    out = claw.run("output", older.record.id).stdout
    assert "from an older runner" in out


def test_the_runner_marks_its_stream_with_the_format_version(claw: Claw) -> None:
    s = claw.launch("[[text: versioned]] say it", "--multi-turn-disabled")
    claw.wait(s["id"])
    started = [r for r in claw.journal(s["unit"]) if r["type"] == "started"]
    assert [r["v"] for r in started] == [STREAM_VERSION]
    assert all("v" not in r for r in claw.journal(s["unit"]) if r["type"] != "started")
    assert re.search(r"versioned", claw.run("output", s["id"]).stdout)
