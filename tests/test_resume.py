"""Resuming and forking conversations: a new session (new id, new name) continues an earlier Claude session,
with its history, its workdir and model, and what is left of its lifetime budget."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

from conftest import Claw, fails, of, session_names, wait_until


def _texts(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    return [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]


def _last_request(claw: Claw, marker: str) -> dict[str, Any]:
    bodies = [r["json"] for r in claw.api.messages_requests() if r.get("json") and marker in json.dumps(r["json"])]
    assert bodies, f"no API request mentions {marker}"
    return bodies[-1]


def _said(body: dict[str, Any], role: str) -> str:
    return "\n".join(t for m in body["messages"] if m.get("role") == role for t in _texts(m))


def _resume(claw: Claw, *args: str) -> dict[str, Any]:
    data = json.loads(claw.run("resume", *args, "--json").stdout)
    claw.launched.append(data["unit"])
    return data


def _session(claw: Claw, ref: str) -> dict[str, Any]:
    return next(s for s in claw.json("sessions")["sessions"] if ref in (s["id"], s["name"]))


def test_resume_and_fork_continue_the_conversation(claw: Claw) -> None:
    word = f"zebra-{uuid.uuid4().hex[:8]}"
    original = claw.launch(
        f"[[text: noted {word}]] remember the word {word}", "--name", "original", "--model", "claude-sonnet-4-5"
    )
    first = claw.wait(original["id"])
    assert first["status"] == "completed" and first["costUsd"] > 0
    claude_id = first["claudeSessionId"]
    # The unit goes away (as if the machine had stopped it); the conversation is still on disk.
    subprocess.run(["systemctl", "--user", "stop", original["unit"]], env=claw.env, check=True, timeout=60)
    stopped = _session(claw, "original")
    assert stopped["status"] == "completed" and stopped["waitingFor"] is None

    # Resume by name, from a fresh CLI process, with no --workdir: it continues in the session's own.
    tag = uuid.uuid4().hex[:8]
    resumed = _resume(claw, "original", f"[[text: resumed {tag}]] which word did I ask you to remember?")
    assert resumed["id"] != original["id"] and resumed["name"] != "original"
    assert resumed["resumedFrom"] == original["id"] and resumed["forked"] is False
    assert resumed["workdir"] == str(claw.workdir) and resumed["model"] == "claude-sonnet-4-5"
    assert resumed["priorCostUsd"] == first["costUsd"] and resumed["budgetUsd"] == first["budgetUsd"]
    done = claw.wait(resumed["id"])
    assert done["status"] == "completed", done
    assert done["claudeSessionId"] == claude_id
    body = _last_request(claw, tag)
    assert word in _said(body, "user") and f"noted {word}" in _said(body, "assistant")
    assert body["model"] == "claude-sonnet-4-5"
    started = of(claw.journal(resumed["unit"]), "started")
    assert started and started[0]["resumedFrom"] == original["id"] and started[0]["forked"] is False
    assert started[0]["claudeSessionId"] == claude_id
    # The original record is left as it was.
    assert _session(claw, "original") == stopped

    # Fork: the same history, a new Claude session.
    ftag = uuid.uuid4().hex[:8]
    forked = _resume(claw, "original", f"[[text: forked {ftag}]] and the word again?", "--fork", "--name", "a-fork")
    assert forked["name"] == "a-fork" and forked["forked"] is True and forked["resumedFrom"] == original["id"]
    fdone = claw.wait(forked["id"])
    assert fdone["status"] == "completed"
    assert fdone["claudeSessionId"] and fdone["claudeSessionId"] != claude_id
    fbody = _last_request(claw, ftag)
    assert word in _said(fbody, "user")
    assert of(claw.journal(forked["unit"]), "started")[0]["forked"] is True

    # Resume by Claude session UUID: the newest session of that conversation, still open for follow-ups,
    # is closed first (two CLIs must never append to one transcript).
    assert _session(claw, resumed["id"])["waitingFor"] == "input"
    again = _resume(claw, claude_id, f"[[text: third {tag}]] still there?")
    assert again["resumedFrom"] == resumed["id"]
    closed = _session(claw, resumed["id"])
    assert closed["status"] == "completed" and closed["waitingFor"] is None
    wait_until(lambda: claw.journal(resumed["unit"])[-1]["type"] == "exit", what="the exit record")
    assert claw.wait(again["id"])["claudeSessionId"] == claude_id
    assert f"resumed {tag}" in _said(_last_request(claw, f"third {tag}"), "assistant")


def test_resume_refuses_a_session_still_at_work(claw: Claw) -> None:
    s = claw.launch("[[ask]] choose", "--name", "undecided")
    assert claw.wait(s["id"])["status"] == "waiting"
    line = fails(claw, "resume", "undecided", "hello", code=4, same=session_names)
    assert "is still waiting" in line and "--fork" in line
    fails(claw, "launch", "hello", "--resume", "undecided", code=4, same=session_names)
    # A fork leaves the original alone, so it is allowed.
    fork = _resume(claw, "undecided", "[[text: forked off]] go on", "--fork")
    assert claw.wait(fork["id"])["status"] == "completed"
    assert _session(claw, "undecided")["status"] == "waiting"
    assert "unknown session 'nobody'" in fails(claw, "resume", "nobody", code=3, same=session_names)


def test_lifetime_budget_spans_resumes(claw: Claw) -> None:
    s = claw.launch("[[text: spent some]] spend", "--name", "spender")
    first = claw.wait(s["id"])
    cost = first["costUsd"]
    assert cost > 0
    claw.run("kill", s["id"])  # close it for follow-ups

    # A lifetime budget of 1.5x what was spent: the resumed session may spend only half a turn more.
    budget = round(cost * 1.5, 6)
    r = _resume(claw, "spender", "[[text: over budget]] more", "--max-budget-usd", str(budget), "--name", "spender-2")
    assert r["priorCostUsd"] == cost and r["budgetUsd"] == budget
    final = claw.json("wait", r["id"], "--ended", "--timeout", "60")
    assert final["status"] == "failed" and final["reason"].startswith("budget exhausted"), final
    (exit_,) = wait_until(lambda: of(claw.journal(r["unit"]), "exit"), what="the exit record")
    assert exit_["cause"] == "budget"

    # Now the conversation has spent more than its budget: no resume, whichever way it is asked.
    line = fails(claw, "resume", "spender-2", "once more", code=5, same=session_names)
    assert "has spent" in line and f"${budget:g} budget" in line
    fails(
        claw, "launch", "once more", "--resume", "spender-2", "--workdir", str(claw.workdir), code=5, same=session_names
    )
    # A bigger budget lets it go on.
    more = _resume(claw, "spender-2", "[[text: fine now]] go", "--max-budget-usd", "1")
    assert more["priorCostUsd"] > budget
    assert claw.wait(more["id"])["status"] == "completed"


def test_resume_list(claw: Claw) -> None:
    empty = claw.run("resume", "--list").stdout
    assert "No resumable sessions" in empty
    a = claw.launch("[[text: a]] first list entry", "--name", "list-a", "--multi-turn-disabled")
    claw.wait(a["id"])
    b = claw.launch("[[text: b]] second list entry", "--name", "list-b", "--multi-turn-disabled")
    claw.wait(b["id"])
    busy = claw.launch("[[ask]] busy one", "--name", "list-busy")
    claw.wait(busy["id"])
    wait_until(lambda: claw.json("sessions", "--status", "completed")["count"] == 2, what="two completed")

    data = claw.json("resume", "--list")
    # Finished sessions only, newest first; the one waiting for an answer is not resumable yet.
    assert [x["name"] for x in data["sessions"]] == ["list-b", "list-a"] and data["count"] == 2
    assert all(x["claudeSessionId"] for x in data["sessions"])
    text = claw.run("resume", "--list").stdout
    assert text.startswith("Resumable sessions:")
    assert text.index("list-b — completed") < text.index("list-a — completed")
    assert f"Claude ID: {data['sessions'][0]['claudeSessionId']}" in text
    assert f"📁 {claw.workdir}" in text and "list-busy" not in text
    usage = claw.run("resume", check=False)
    assert usage.returncode == 2 and "--list" in usage.stderr
