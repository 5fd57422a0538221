"""Plan approval from chat: a session in ``--permission-mode plan`` whose Claude calls ExitPlanMode.

Real units running the real Claude Code CLI on the scripted API, whose ``[[plan: …]]`` directive plays the
model: it writes the plan to the plan file the CLI names, calls ExitPlanMode (the CLI hands the plan to the
runner's permission callback), and on a rejection writes the next plan. The plan goes to the origin channel
through the real notifier and a recording stand-in ``openclaw``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from conftest import Claw, of, wait_until
from notifier_harness import Recording, configure, running_notifier

from clawunits.systemd import journal
from clawunits.testing.directives import long_text


def _setup(claw: Claw, **options: Any) -> Recording:
    """The test's config (``openclaw`` is the stand-in)."""
    return configure(claw, **options)


def _journal(unit: str) -> list[dict[str, Any]]:
    """The unit's records as clawunits reads them (a record over 32 KiB is written in parts, joined here)."""
    return [r.to_json() for r in journal.read_after(unit).records if r.seq is not None]


def _records(claw: Claw, unit: str, type_: str, n: int = 1) -> list[dict[str, Any]]:
    """The unit's records once ``n`` of ``type_`` show (journald may lag behind the store)."""
    return wait_until(lambda: len(of(rs := _journal(unit), type_)) >= n and rs, what=f"{n} {type_} record(s)")


def _plan_waits(claw: Claw, sid: str, version: int) -> dict[str, Any]:
    """The session once it waits for approval of plan ``version``."""
    return wait_until(
        lambda: (
            (s := claw.json("sessions")["sessions"][0])["waitingFor"] == "plan" and s["planVersion"] == version and s
        ),
        timeout=90,
        what=f"plan v{version} to wait for approval",
    )


def _completed(claw: Claw) -> dict[str, Any]:
    """The session once its turn has finished (``wait`` would return at once: it is still waiting for the plan
    until the runner takes the answer)."""
    return wait_until(
        lambda: (r := claw.json("sessions")["sessions"][0])["status"] == "completed" and r,
        timeout=90,
        what="the turn to finish",
    )


def _plan_results(claw: Claw, marker: str) -> list[dict[str, Any]]:
    """The ExitPlanMode tool results Claude received, as the API saw them, in order."""
    seen: dict[str, dict[str, Any]] = {}
    for req in claw.api.messages_requests():
        body = req.get("json")
        if not body or marker not in json.dumps(body):
            continue
        uses = {
            b["id"]
            for m in body["messages"]
            if m.get("role") == "assistant" and isinstance(m.get("content"), list)
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") == "ExitPlanMode"
        }
        for m in body["messages"]:
            for b in m.get("content") if isinstance(m.get("content"), list) else []:
                if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("tool_use_id") in uses:
                    seen[b["tool_use_id"]] = b
    return list(seen.values())


def _text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content)


def test_approved_plan_is_announced_then_carried_out_in_accept_edits(claw: Claw) -> None:
    """The whole plan reaches the chat (split at the channel's size, a record split in journal parts), the
    session waits, and ``approve`` lets it work on without asking: its Write needs no permission."""
    rec = _setup(claw)
    target = claw.workdir / "hello.txt"
    plan = "Write hello.txt.\n\n" + long_text(40_000)  # over the 32 KiB a journal line may hold
    write = json.dumps({"file_path": str(target), "content": "hello from the plan\n"})
    prompt = f"[[plan: {plan}]] [[tool: Write {write}]] greet"
    with running_notifier(claw, rec) as n:
        s = claw.launch(prompt, "--permission-mode", "plan", "--channel", "telegram|777", "--name", "planner")
        waiting = _plan_waits(claw, s["id"], 1)
        assert waiting["status"] == "waiting" and waiting["permissionMode"] == "plan"
        records = _records(claw, s["unit"], "plan")
        (proposed,) = of(records, "plan")
        assert proposed["plan"] == plan and proposed["version"] == 1
        assert proposed["requestId"] == waiting["pendingPermission"]
        assert proposed["planFile"].endswith(".md")
        assert not target.exists(), "plan mode wrote outside its plan file"
        # The plan record is over a journal line's size: it was written in parts.
        assert any(r["type"] == "part" for r in claw.journal(s["unit"]))
        listing = claw.run("sessions").stdout
        assert "waiting for plan approval (approve / reject <feedback>): plan v1" in listing

        wait_until(lambda: any("Plan ready" in t for t in rec.texts("777")), what="the plan notification")
        n.settle(s["unit"], wakes=False)
        sent = rec.texts("777")
        header, footer = "📋 [planner] Plan ready:\n", "\n\nReply approve, or reject with what to change (plan v1)."
        chunks = [t for t in sent if not t.startswith("↩️")]
        assert len(chunks) >= 10 and all(len(t) <= 4096 for t in chunks)
        assert chunks[0].startswith(header + "Write hello.txt.") and chunks[-1].endswith(footer.strip())
        # Every word of the plan arrives, in order (splitting only moves line breaks).
        assert " ".join(" ".join(chunks).split()) == " ".join((header + plan + footer).split())
        wake = wait_until(lambda: rec.event_texts("plan (v1)"), what="the agent's wake event")
        assert f"claude_respond(session='{s['id']}', message='approve', planVersion=1)" in wake[0]

        sent_answer = claw.json("respond", s["id"], "approve")
        assert sent_answer["status"] == "waiting"  # the answer goes to the turn in progress
        done = _completed(claw)
        assert done["status"] == "completed" and done["waitingFor"] == "input", done
    assert target.read_text() == "hello from the plan\n"
    assert done["permissionMode"] == "acceptEdits" and done["pendingPermission"] is None
    records = _records(claw, s["unit"], "waiting")
    (answer,) = of(records, "plan_answer")
    assert answer == {**answer, "decision": "approved", "mode": "acceptEdits", "version": 1}
    # acceptEdits allows the Write without asking; the runner never saw a permission request.
    assert not of(records, "permission_request")
    assert [r["tool"] for r in of(records, "tool_use")] == ["Write", "ExitPlanMode", "Write"]
    assert len(of(records, "turn_end")) == 1
    # The received answer is the normal form naming the plan it answered.
    assert [r["text"] for r in of(records, "message_received")] == ["approve v1"]
    assert "📋 plan v1 approved: continuing in acceptEdits" in claw.run("output", s["id"]).stdout


def test_rejected_plan_feedback_reaches_claude_and_a_stale_answer_is_refused(claw: Claw) -> None:
    _setup(claw)
    marker = uuid.uuid4().hex[:10]
    s = claw.launch(
        f"[[plan: Plan A: edit the parser ;; Plan B: edit the parser, with tests]] refactor {marker}",
        "--permission-mode", "plan", "--name", "replanner",
    )  # fmt: skip
    _plan_waits(claw, s["id"], 1)
    # An approval it cannot read is refused, not taken as a yes or a no.
    bad = claw.run("respond", s["id"], "approve but add tests", check=False)
    assert bad.returncode == 2 and "reject <feedback>" in bad.stderr and "Traceback" not in bad.stderr

    claw.run("respond", s["id"], "reject please add tests first\nand keep the API")
    v2 = _plan_waits(claw, s["id"], 2)
    assert v2["permissionMode"] == "plan"
    records = _records(claw, s["unit"], "plan", 2)
    first, second = of(records, "plan")
    assert first["plan"] == "Plan A: edit the parser" and first["version"] == 1
    assert second["version"] == 2 and second["requestId"] == v2["pendingPermission"]
    assert second["plan"] == "Plan B: edit the parser, with tests\n\n(revised after: please add tests first)"
    (rejected,) = of(records, "plan_answer")
    assert rejected["decision"] == "rejected" and rejected["feedback"] == "please add tests first\nand keep the API"
    # Claude got the whole feedback as the (error) result of its ExitPlanMode call.
    (result,) = _plan_results(claw, marker)
    assert result.get("is_error") is True
    assert "please add tests first\nand keep the API" in _text(result) and "v1" in _text(result)

    # Answers to plan v1 are stale now: refused, nothing changes, nothing is queued.
    for args in (("approve v1",), ("--plan-version", "1", "approve"), ("reject v1 no",)):
        stale = claw.run("respond", s["id"], *args, "--json", check=False)
        assert stale.returncode == 4, stale
        error = json.loads(stale.stdout)
        assert error["code"] == "state" and "plan v1" in error["error"] and "stale" in error["error"]
        assert "approve v2" in error["hint"]
    keys = ("status", "waitingFor", "planVersion", "pendingPermission", "autoResponds", "lastActivityAt")
    now = claw.json("sessions")["sessions"][0]
    assert {k: now[k] for k in keys} == {k: v2[k] for k in keys}
    assert not list((claw.state_dir / "inbox" / s["id"] / "queue").glob("*.json"))

    claw.run("respond", s["id"], "--plan-version", "2", "approve default")
    done = _completed(claw)
    assert done["status"] == "completed" and done["permissionMode"] == "default", done
    records = _records(claw, s["unit"], "waiting")
    assert [(a["version"], a["decision"]) for a in of(records, "plan_answer")] == [(1, "rejected"), (2, "approved")]
    assert of(records, "plan_answer")[1]["mode"] == "default"
    assert not _plan_results(claw, marker)[1].get("is_error")
    # Answered: a late answer to it is refused too.
    late = claw.run("respond", s["id"], "approve v2", check=False)
    assert late.returncode == 4 and "no longer waiting for approval" in late.stderr


def test_unanswered_plan_times_out_and_claude_stops_planning(claw: Claw) -> None:
    _setup(claw, permissionTimeoutSec=2)
    marker = uuid.uuid4().hex[:10]
    s = claw.launch(f"[[plan: The only plan]] idle {marker}", "--permission-mode", "plan", "--name", "unanswered")
    done = wait_until(
        lambda: (r := claw.json("sessions")["sessions"][0])["status"] == "completed" and r,
        timeout=60,
        what="the plan to time out and the turn to end",
    )
    assert done["waitingFor"] == "input" and done["permissionMode"] == "plan" and done["planVersion"] == 1
    records = _records(claw, s["unit"], "waiting")
    (answer,) = of(records, "plan_answer")
    assert answer["decision"] == "timeout" and answer["reason"] == "no answer within 2 seconds"
    (result,) = _plan_results(claw, marker)
    assert result.get("is_error") is True and "Do not call ExitPlanMode again" in _text(result)
    assert len(of(records, "plan")) == 1  # no new plan: it waits for the user
    late = claw.run("respond", s["id"], "approve v1", check=False)
    assert late.returncode == 4 and "no longer waiting for approval" in late.stderr


def test_plan_answers_to_sessions_without_a_plan(claw: Claw) -> None:
    _setup(claw)
    missing = claw.run("respond", "no-such-session", "approve", check=False)
    assert missing.returncode == 3 and "Traceback" not in missing.stderr
    s = claw.launch("[[text: done]] nothing to plan", "--name", "no-plan")
    claw.wait(s["id"])
    before = claw.json("sessions")["sessions"][0]
    for args in (("approve v1",), ("--plan-version", "1", "approve")):
        proc = claw.run("respond", s["id"], *args, check=False)
        assert proc.returncode == 4 and "has proposed no plan" in proc.stderr, proc
    bad = claw.run("respond", s["id"], "--plan-version", "0", "approve", check=False)
    assert bad.returncode == 2
    after = claw.json("sessions")["sessions"][0]
    assert after["status"] == before["status"] and after["autoResponds"] == before["autoResponds"]
    # A plain "approve" to a session that waits for no plan is an ordinary message.
    assert claw.json("respond", s["id"], "approve")["status"] == "running"
    killed = claw.json("kill", s["id"])
    finished = claw.run("respond", s["id"], "approve", check=False)
    assert finished.returncode == 4 and "takes no more messages" in finished.stderr, (killed, finished)
