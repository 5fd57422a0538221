"""Multi-turn sessions as a user sees them: follow-ups through ``clawunits respond``, many queued messages,
``--interrupt``, questions versus finished tasks, the idle timeout, refused responds, the auto-respond cap,
maxSessions and the watchdog. Real units run the real Claude Code CLI against the scripted Messages API
(the watchdog's restart needs the stand-in CLI, which can hang on demand)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_CLAUDE, Claw, fails, of, session_files, wait_until
from notifier_harness import session

from clawunits.service.api import Service
from clawunits.state.config import load_settings
from clawunits.state.store import Store

Journal = list[dict[str, Any]]


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _journal_until(
    claw: Claw, unit: str, done: Callable[[Journal], Any], timeout: float = 60, what: str = ""
) -> Journal:
    """Poll the unit's journal until ``done(records)`` holds; returns the records."""
    box: list[Journal] = []

    def check() -> bool:
        box[:] = [claw.journal(unit)]
        return bool(done(box[0]))

    wait_until(check, timeout=timeout, interval=0.2, what=what or "journal condition")
    return box[0]


def _has_text(text: str) -> Callable[[Journal], bool]:
    return lambda recs: any(r["type"] == "text" and text in r["text"] for r in recs)


def _bodies(claw: Claw, marker: str) -> list[dict[str, Any]]:
    """Bodies of the Messages API requests that mention ``marker``, oldest first."""
    return [r["json"] for r in claw.api.messages_requests() if r.get("json") and marker in json.dumps(r["json"])]


def _user_blocks(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    return [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]


def _user_texts(body: dict[str, Any]) -> list[str]:
    """Every user text block of a request, in conversation order."""
    return [t for m in body["messages"] if m.get("role") == "user" for t in _user_blocks(m)]


def _inbox_files(claw: Claw) -> dict[str, bytes]:
    root = claw.state_dir / "inbox"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()} if root.exists() else {}


@pytest.fixture
def service(claw: Claw) -> Iterator[Service]:
    """The library in this process, on the test's own state and config (as a plugin would use it)."""
    svc = Service(settings=load_settings(claw.config_path), store=Store(claw.state_dir), environ=claw.env)
    try:
        yield svc
    finally:
        svc.close()


# -- conversations -------------------------------------------------------------------------------------


def test_five_turn_conversation(claw: Claw) -> None:
    tag = _tag()
    prompts = [f"[[text: reply {i} {tag}]] prompt number {i} {tag}" for i in range(1, 6)]
    s = claw.launch(prompts[0], "--name", "five-turns")
    first = claw.wait(s["id"])
    assert first["status"] == "completed" and first["waitingFor"] == "input", first
    for prompt in prompts[1:]:
        sent = claw.json("respond", "five-turns", prompt)
        # respond reports the session as working on it at once, not the state of the finished turn.
        assert sent["status"] == "running" and sent["messageId"], sent
        done = claw.wait(s["id"])
        assert done["status"] == "completed" and done["waitingFor"] == "input", done
    assert done["numTurns"] == 5
    assert done["claudeSessionId"] == first["claudeSessionId"]

    # One Claude Code process, one conversation: the last request carries all five prompts, in order.
    last = _bodies(claw, tag)[-1]
    assert [t for t in _user_texts(last) if tag in t] == prompts
    assistant = [t for m in last["messages"] if m.get("role") == "assistant" for t in _user_blocks(m)]
    assert [t for t in assistant if tag in t] == [f"reply {i} {tag}" for i in range(1, 5)]

    out = claw.json("output", s["id"], "--full")
    for i in range(1, 6):
        assert f"reply {i} {tag}" in out["lines"], out["lines"]
    # (The store is written after the record is printed; journald may show it a moment later.)
    records = _journal_until(claw, s["unit"], lambda rs: len(of(rs, "waiting")) >= 5, what="five waiting records")
    assert len(of(records, "turn_end")) == 5 and len(of(records, "message_received")) == 4
    assert [r["question"] for r in of(records, "waiting")] == [False] * 5
    assert not of(records, "exit"), "the session must stay open between turns"


def test_hundred_messages_during_a_turn_arrive_once_in_order(claw: Claw, service: Service) -> None:
    tag = _tag()
    s = claw.launch(f"[[slow: 8]] a slow first turn {tag}", "--name", "busy")
    # The first turn is streaming from the API: everything posted now is queued behind it.
    wait_until(lambda: _bodies(claw, tag), timeout=30, what="the slow request")
    texts = [f"note {i:03d} {tag}" for i in range(100)]
    ids = [service.respond(s["id"], t, user_initiated=True).message_id for t in texts]
    posted_by = time.time()
    assert len(set(ids)) == 100

    records = _journal_until(claw, s["unit"], lambda rs: len(of(rs, "waiting")) >= 2, what="the second turn")
    first_end = of(records, "turn_end")[0]
    assert _epoch(first_end["ts"]) > posted_by, "the posting did not finish during the slow turn"
    received = of(records, "message_received")
    assert [r["messageId"] for r in received] == ids
    assert [r["text"] for r in received] == texts
    # All of them were delivered together after the first turn, before the second one ended.
    seqs = [r["seq"] for r in records]
    assert len(of(records, "turn_end")) == 2
    assert first_end["seq"] < received[0]["seq"] and received[-1]["seq"] < of(records, "turn_end")[1]["seq"]
    assert seqs == list(range(1, len(seqs) + 1))

    # The next API request: one user message, one text block per message, posted order, each exactly once.
    nxt = _bodies(claw, texts[0])
    assert nxt, "the messages never reached the API"
    body = nxt[0]
    # (Claude Code may append a system-role note, e.g. the budget left, after the newest user message.)
    newest = [m for m in body["messages"] if m.get("role") == "user"][-1]
    assert [t for t in _user_blocks(newest) if tag in t] == texts
    raw = json.dumps(body)
    assert all(raw.count(t) == 1 for t in texts)
    assert claw.wait(s["id"])["status"] == "completed"

    inbox = claw.state_dir / "inbox" / s["id"]
    assert list((inbox / "queue").iterdir()) == [] and list((inbox / "taken").iterdir()) == []
    assert len(list((inbox / "done").iterdir())) == 100


def test_interrupt_stops_the_turn_and_the_message_is_answered(claw: Claw) -> None:
    tag = _tag()
    s = claw.launch(f"[[slow: 30]] a very long story {tag}", "--name", "long-story")
    wait_until(lambda: _bodies(claw, tag), timeout=30, what="the slow request")
    t0 = time.time()
    sent = claw.json("respond", s["id"], f"[[text: stopped as asked {tag}]] stop that", "--interrupt")
    assert sent["interrupted"] is True and sent["status"] == "running"
    records = _journal_until(claw, s["unit"], lambda rs: of(rs, "interrupted"), timeout=10, what="interrupted")
    interrupted = of(records, "interrupted")[0]
    assert interrupted["reason"] == "message"
    assert _epoch(interrupted["ts"]) - t0 < 2.0, "the turn was not stopped within 2 s of the respond"
    end = of(records, "turn_end")[0]
    assert end["interrupted"] is True and end["seq"] < interrupted["seq"]

    records = _journal_until(claw, s["unit"], _has_text(f"stopped as asked {tag}"), timeout=30, what="the answer")
    received = of(records, "message_received")
    assert len(received) == 1 and received[0]["messageId"] == sent["messageId"] and received[0]["interrupt"] is True
    final = claw.wait(s["id"])
    assert final["status"] == "completed" and final["waitingFor"] == "input"
    assert time.time() - t0 < 20, "the slow turn ran on"


def test_interrupt_sent_before_the_turn_started_still_works(claw: Claw) -> None:
    tag = _tag()
    t0 = time.time()
    s = claw.launch(f"[[slow: 30]] another long story {tag}", "--name", "early")
    # Right after launch: the runner is still starting Claude Code, the turn has not begun.
    sent = claw.json("respond", s["id"], f"[[text: early stop {tag}]] stop", "--interrupt")
    records = _journal_until(claw, s["unit"], _has_text(f"early stop {tag}"), timeout=40, what="the answer")
    (posted,) = [json.loads(p.read_text()) for p in (claw.state_dir / "inbox" / s["id"] / "done").iterdir()]
    assert posted["id"] == sent["messageId"]
    assert posted["posted_ns"] / 1e9 < _epoch(of(records, "started")[0]["ts"]), "posted after the turn began"
    assert [r["reason"] for r in of(records, "interrupted")] == ["message"]
    assert of(records, "turn_end")[0]["interrupted"] is True
    assert [r["messageId"] for r in of(records, "message_received")] == [sent["messageId"]]
    assert time.time() - t0 < 25, "the interrupt was lost: the 30 s turn ran to its end"


# A `claude` that forwards everything to the real CLI except the first interrupt, which it acknowledges and
# drops: what the real CLI does with an interrupt that lands before its turn began (the SDK's ts#429).
SWALLOW_FIRST_INTERRUPT = """\
#!{python}
import json, subprocess, sys, threading

cli = subprocess.Popen([{real!r}, *sys.argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
lock = threading.Lock()


def out(data):
    with lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def pump():
    for line in cli.stdout:
        out(line)


reader = threading.Thread(target=pump, daemon=True)
reader.start()
swallowed = False
for line in sys.stdin.buffer:
    try:
        msg = json.loads(line)
    except ValueError:
        msg = None
    if not swallowed and isinstance(msg, dict) and (msg.get("request") or {{}}).get("subtype") == "interrupt":
        swallowed = True
        with open({mark!r}, "a") as f:
            f.write("swallowed\\n")
        ack = {{"subtype": "success", "request_id": msg["request_id"], "response": {{"still_queued": []}}}}
        out((json.dumps({{"type": "control_response", "response": ack}}) + "\\n").encode())
        continue
    cli.stdin.write(line)
    cli.stdin.flush()
cli.stdin.close()
reader.join()
sys.exit(cli.wait())
"""


def test_interrupt_that_does_nothing_is_retried(claw: Claw, tmp_path: Path) -> None:
    import claude_agent_sdk

    real = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    mark = tmp_path / "swallowed.txt"
    wrapper = tmp_path / "claude-swallowing"
    wrapper.write_text(SWALLOW_FIRST_INTERRUPT.format(python=sys.executable, real=str(real), mark=str(mark)))
    wrapper.chmod(0o755)
    claw.write_config(claudePath=str(wrapper))
    tag = _tag()
    s = claw.launch(f"[[slow: 30]] a story that must stop {tag}", "--name", "deaf-once")
    wait_until(lambda: _bodies(claw, tag), timeout=30, what="the slow request")
    t0 = time.time()
    claw.run("respond", s["id"], f"[[text: stopped at last {tag}]] stop", "--interrupt")
    records = _journal_until(claw, s["unit"], _has_text(f"stopped at last {tag}"), timeout=30, what="the answer")
    assert mark.read_text() == "swallowed\n", "the first interrupt did not reach the wrapper"
    interrupted = of(records, "interrupted")
    assert [r["reason"] for r in interrupted] == ["message"]
    # The first interrupt did nothing; the runner tried again after waiting for the turn to end.
    waited = _epoch(interrupted[0]["ts"]) - t0
    assert 1.5 < waited < 10, waited


def test_question_waits_and_finished_task_stays_open(claw: Claw) -> None:
    s = claw.launch("[[ask]] pick a plan", "--name", "asker")
    asked = claw.wait(s["id"])
    assert asked["status"] == "waiting" and asked["waitingFor"] == "question", asked
    waiting = of(_journal_until(claw, s["unit"], lambda rs: of(rs, "waiting")), "waiting")
    assert len(waiting) == 1 and waiting[0]["question"] is True
    assert waiting[0]["text"].endswith("Which option do you prefer?")
    listed = claw.json("sessions", "--status", "waiting")
    assert [x["id"] for x in listed["sessions"]] == [s["id"]]

    sent = claw.json("respond", "asker", "[[text: Plan A is done.]] A")
    assert sent["status"] == "running" and sent["autoResponds"] == 1
    done = claw.wait(s["id"])
    assert done["status"] == "completed" and done["waitingFor"] == "input" and done["reason"] == "task finished"
    assert done["completedAt"]
    waiting = of(_journal_until(claw, s["unit"], lambda rs: len(of(rs, "waiting")) >= 2), "waiting")
    assert [w["question"] for w in waiting] == [True, False]

    # Completed but open: a follow-up brings it back to running (its turn takes 3 s), then completed again.
    sent = claw.json("respond", "asker", "[[slow: 3]] [[text: Follow-up handled.]] one more thing")
    assert sent["status"] == "running"
    again = claw.json("sessions")["sessions"][0]
    assert again["status"] == "running" and again["waitingFor"] is None and again["completedAt"] is None
    done = claw.wait(s["id"])
    assert done["status"] == "completed" and done["waitingFor"] == "input"
    assert "Follow-up handled." in claw.json("output", s["id"])["lines"]
    assert done["numTurns"] == 3


def test_idle_timeout_closes_but_never_cuts_a_turn(claw: Claw) -> None:
    claw.write_config(idleTimeoutMinutes=0.05)  # 3 s
    tag = _tag()
    s = claw.launch(f"[[slow: 6]] [[text: slow but complete {tag}]] take your time", "--name", "idler")
    final = claw.json("wait", s["id"], "--ended", "--timeout", "60")
    assert final["status"] == "completed", final
    assert final["reason"].startswith("idle-timeout"), final["reason"]
    assert final["waitingFor"] is None
    records = _journal_until(claw, s["unit"], lambda rs: of(rs, "exit"), what="the exit record")
    # The 6 s turn outlived the 3 s idle timeout and still delivered its text.
    assert any(r["type"] == "text" and r["text"] == f"slow but complete {tag}" for r in records)
    end = of(records, "turn_end")[0]
    assert end["subtype"] == "success" and end["durationMs"] >= 5000
    exit_ = records[-1]
    assert exit_["type"] == "exit" and exit_["cause"] == "idle-timeout" and exit_["status"] == "completed"
    idle = _epoch(exit_["ts"]) - _epoch(of(records, "waiting")[0]["ts"])
    assert 2.5 <= idle < 10, idle
    line = fails(claw, "respond", s["id"], "too late", code=4)
    assert "takes no more messages" in line


def test_respond_refusals(claw: Claw) -> None:
    killed = claw.launch("[[slow: 30]] to be killed", "--name", "victim")
    failed = claw.launch("[[error: 400]] will fail", "--name", "broken")
    busy = claw.launch("[[slow: 30]] single busy", "--name", "single-busy", "--multi-turn-disabled")
    single_done = claw.launch("[[text: once]] single done", "--name", "single-done", "--multi-turn-disabled")
    claw.run("kill", killed["id"])
    assert claw.wait(failed["id"])["status"] == "failed"
    assert claw.json("wait", single_done["id"], "--ended")["status"] == "completed"
    wait_until(lambda: claw.json("sessions", "--status", "running")["count"] == 1, what="only single-busy running")

    # single-busy's own runner may still write its record (its turn runs on); the refusals must change nothing.
    def quiet_records() -> dict[str, bytes]:
        return {name: data for name, data in session_files(claw).items() if name != f"{busy['id']}.toml"}

    before_inbox, before_records = _inbox_files(claw), quiet_records()
    busy_responds = session(claw, "single-busy")["autoResponds"]
    assert "is killed; it takes no more messages" in fails(claw, "respond", "victim", "hello?", code=4)
    assert "is failed; it takes no more messages" in fails(claw, "respond", "broken", "hello?", code=4)
    assert "unknown session 'ghost'" in fails(claw, "respond", "ghost", "hello?", code=3)
    assert "single-turn" in fails(claw, "respond", "single-busy", "hello?", code=4)
    assert "it takes no more messages" in fails(claw, "respond", "single-done", "hello?", code=4)
    assert "it takes no more messages" in fails(claw, "respond", "victim", "x", "--interrupt", code=4)
    assert _inbox_files(claw) == before_inbox, "a refused message was queued"
    assert quiet_records() == before_records
    assert session(claw, "single-busy")["autoResponds"] == busy_responds
    json_out = claw.run("respond", "victim", "hello?", "--json", check=False)
    assert json_out.returncode == 4 and json.loads(json_out.stdout)["code"] == "state"


def test_auto_respond_cap(claw: Claw) -> None:
    claw.write_config(maxAutoResponds=2)
    s = claw.launch("[[text: first]] start", "--name", "chatty")
    claw.wait(s["id"])
    for n in (1, 2):
        sent = claw.json("respond", "chatty", f"[[text: auto {n}]] agent says {n}")
        assert sent["autoResponds"] == n
        claw.wait(s["id"])
    before = _inbox_files(claw)
    proc = claw.run("respond", "chatty", "[[text: auto 3]] agent again", check=False)
    assert proc.returncode == 5, proc
    line = proc.stderr.strip()
    # The whole line: it tells the agent how to go on (ask the user, then respond with userInitiated).
    assert line == (
        "clawunits: error: ⚠️ Auto-respond limit reached (2/2). Ask the user to provide the answer for session "
        "chatty. Then call claude_respond with their answer and set userInitiated: true to reset the counter."
    ), line
    assert _inbox_files(claw) == before
    assert claw.json("sessions")["sessions"][0]["autoResponds"] == 2

    # A person answering resets the count; agent responds are allowed again.
    sent = claw.json("respond", "chatty", "[[text: from a human]] human here", "--user-initiated")
    assert sent["autoResponds"] == 0
    claw.wait(s["id"])
    assert claw.json("respond", "chatty", "[[text: auto again]] agent")["autoResponds"] == 1
    done = claw.wait(s["id"])
    assert done["autoResponds"] == 1 and done["numTurns"] == 5
    lines = claw.json("output", s["id"], "--full")["lines"]
    assert "auto again" in lines and "auto 3" not in lines


def test_max_sessions_counts_live_sessions(claw: Claw) -> None:
    claw.write_config(maxSessions=2, queueLaunches=False)
    a = claw.launch("[[slow: 30]] busy one", "--name", "busy-one")
    claw.launch("[[slow: 30]] busy two", "--name", "busy-two")
    line = fails(claw, "launch", "third", "--workdir", str(claw.workdir), code=5)
    assert line == "clawunits: error: Max sessions reached (2). Kill a session first."
    assert claw.json("sessions")["count"] == 2, "the refused launch left a record"

    claw.run("kill", a["id"])
    c = claw.launch("[[text: quick]] quick one", "--name", "quick")
    assert claw.wait(c["id"])["status"] == "completed"
    # Completed but open for follow-ups does not count: a session that is only waiting for input uses no turn.
    d = claw.launch("[[text: also quick]] fourth", "--name", "fourth")
    assert claw.wait(d["id"])["status"] == "completed"
    e = claw.launch("[[slow: 30]] busy three", "--name", "busy-three")
    fails(claw, "launch", "sixth", "--workdir", str(claw.workdir), code=5)

    # A unit that died without its runner recording it (SIGKILL) is reconciled, not counted.
    subprocess.run(["systemctl", "--user", "kill", "--signal=SIGKILL", e["unit"]], env=claw.env, check=True)
    f = claw.launch("[[text: fits again]] sixth", "--name", "sixth")
    by_name = {x["name"]: x for x in claw.json("sessions")["sessions"]}
    assert by_name["busy-three"]["status"] == "failed" and "SIGKILL" in by_name["busy-three"]["reason"]
    assert by_name["busy-one"]["status"] == "killed" and by_name["busy-two"]["status"] == "running"
    assert claw.wait(f["id"])["status"] == "completed"


# -- the watchdog --------------------------------------------------------------------------------------


def test_watchdog_interrupts_a_silent_turn(claw: Claw) -> None:
    claw.write_config(stallTimeoutSec=3)
    tag = _tag()
    s = claw.launch(f"[[slow: 30]] silent for long {tag}", "--name", "stalled")
    t0 = time.time()
    continued = _has_text("Scripted reply: Continue where you left off.")
    records = _journal_until(
        claw, s["unit"], lambda rs: continued(rs) and of(rs, "waiting"), timeout=40, what="the continuation"
    )
    types = [r["type"] for r in records]
    dog = of(records, "watchdog")
    assert [d["action"] for d in dog] == ["interrupt"], dog
    assert dog[0]["silentSec"] >= 3
    assert [r["reason"] for r in of(records, "interrupted")] == ["watchdog"]
    assert types.index("watchdog") < types.index("interrupted") < types.index("waiting")
    assert of(records, "turn_end")[0]["interrupted"] is True
    assert time.time() - t0 < 25
    final = claw.wait(s["id"])
    assert final["status"] == "completed" and final["numTurns"] == 2
    # The continuation went to the same conversation: the request after the interrupt has the first prompt.
    assert any("Continue where you left off." in _user_texts(b) for b in _bodies(claw, tag))


def test_watchdog_restarts_a_hung_claude_code(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE), stallTimeoutSec=3)
    s = claw.launch("[[fake: hang]] hang forever", "--name", "hung")
    records = _journal_until(
        claw, s["unit"], _has_text("Fake reply: Continue where you left off."), timeout=60, what="the continuation"
    )
    dog = of(records, "watchdog")
    assert [d["action"] for d in dog] == ["interrupt", "restart"], dog
    assert [r["reason"] for r in of(records, "interrupted")] == ["restart"]
    types = [r["type"] for r in records]
    assert types.index("watchdog") < types.index("interrupted") < len(types) - 1 - types[::-1].index("text")
    # The restarted CLI resumed the same Claude session: no second `started` with another id.
    started = of(records, "started")
    assert len({r["claudeSessionId"] for r in started}) == 1
    final = claw.wait(s["id"])
    assert final["status"] == "completed" and final["waitingFor"] == "input"
    assert final["claudeSessionId"] == started[0]["claudeSessionId"]
