"""Permission requests in ``--permission-mode default``: the real Claude Code CLI asks before running
``touch`` through the Bash tool; the runner turns that into a ``permission_request``, the session waits for
"permission", and the next message answers it (allow, deny [reason], any other text = deny with that reason,
or nothing within ``permissionTimeoutSec`` = deny)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import Claw, of, wait_until


def _journal(claw: Claw, unit: str) -> list[dict[str, Any]]:
    """The journal once the turn's final ``waiting`` record shows (journald may lag behind the store)."""
    return wait_until(lambda: (rs := claw.journal(unit)) and of(rs, "waiting") and rs, what="the waiting record")


def _tool_results(claw: Claw, marker: str) -> list[dict[str, Any]]:
    """tool_result blocks of the newest user message of each API request that mentions ``marker``."""
    out = []
    for req in claw.api.messages_requests():
        body = req.get("json")
        if not body or marker not in json.dumps(body):
            continue
        users = [m for m in body["messages"] if m.get("role") == "user"]
        content = users[-1]["content"] if users else []
        out += [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return out


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content)


def _ask_to_touch(claw: Claw, target: Path, name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Launch a session whose Bash call needs approval; return it, its permission request and its marker."""
    marker = uuid.uuid4().hex[:10]
    s = claw.launch(f"[[bash: touch {target}]] make the file {marker}", "--permission-mode", "default", "--name", name)
    waiting = claw.wait(s["id"], timeout=60)
    assert waiting["status"] == "waiting" and waiting["waitingFor"] == "permission", waiting
    requests = of(claw.journal(s["unit"]), "permission_request")
    assert len(requests) == 1, requests
    request = requests[0]
    # (The summary is cut to 80 characters.)
    assert request["tool"] == "Bash" and request["summary"].startswith(f"touch {str(target)[:60]}")
    assert waiting["pendingPermission"] == request["requestId"]
    assert not target.exists(), "the command ran before it was approved"
    text = claw.run("output", s["id"]).stdout
    assert f"permission needed [{request['requestId']}]: Bash" in text
    return s, request, marker


@pytest.mark.parametrize(
    ("answer", "allowed", "reason"),
    [
        ("deny not in this directory", False, "not in this directory"),
        ("allow", True, ""),
        ("yes", True, ""),
        ("Please use the staging copy instead", False, "Please use the staging copy instead"),
    ],
    ids=["deny-with-reason", "allow", "yes", "free-text"],
)
def test_permission_answer(claw: Claw, answer: str, allowed: bool, reason: str) -> None:
    target = claw.workdir / "approved.txt"
    s, request, marker = _ask_to_touch(claw, target, "asks-first")

    sent = claw.json("respond", s["id"], answer)
    # Answering a permission request does not start a new turn: the current one goes on.
    assert sent["status"] == "waiting"
    final = claw.wait(s["id"])
    assert final["status"] == "completed" and final["waitingFor"] == "input", final
    assert final["pendingPermission"] is None and final["numTurns"] == 1

    records = _journal(claw, s["unit"])
    received = of(records, "message_received")
    assert len(received) == 1 and received[0]["answers"] == request["requestId"]
    (ans,) = of(records, "permission_answer")
    assert ans["requestId"] == request["requestId"]
    assert ans["decision"] == ("allow" if allowed else "deny") and ans["reason"] == reason
    (result,) = of(records, "tool_result")
    assert result["isError"] is (not allowed)

    # What Claude got back, as the API saw it.
    results = _tool_results(claw, marker)
    assert len(results) == 1, results
    if allowed:
        assert target.exists()
        assert not results[0].get("is_error")
    else:
        assert not target.exists()
        assert results[0].get("is_error") is True
        assert reason in _result_text(results[0])
    # The answer was consumed: it is not delivered again as a new prompt.
    assert len(of(records, "turn_end")) == 1


def test_unanswered_permission_is_denied_after_the_timeout(claw: Claw) -> None:
    claw.write_config(permissionTimeoutSec=2)
    target = claw.workdir / "never.txt"
    s, _, marker = _ask_to_touch(claw, target, "nobody-answers")
    # `wait` returns for a waiting session; poll until the request has timed out and the turn ended.
    final = wait_until(
        lambda: (
            (r := claw.json("sessions")["sessions"][0])["waitingFor"] != "permission" and r["status"] != "running" and r
        ),
        timeout=30,
        what="the permission request to time out",
    )
    assert final["status"] == "completed", final
    records = _journal(claw, s["unit"])
    (ans,) = of(records, "permission_answer")
    assert ans["decision"] == "deny" and "no answer within 2 seconds" in ans["reason"]
    assert not of(records, "message_received")
    results = _tool_results(claw, marker)
    assert len(results) == 1 and results[0].get("is_error") is True
    assert "no answer within 2 seconds" in _result_text(results[0])
    assert not target.exists()


def test_message_queued_before_the_request_does_not_answer_it(claw: Claw) -> None:
    """Only a message posted after the request answers it; older mail is for the next turn."""
    target = claw.workdir / "later.txt"
    marker = uuid.uuid4().hex[:10]
    s = claw.launch(
        f"[[slow: 3]] [[bash: touch {target}]] slowly {marker}", "--permission-mode", "default", "--name", "queued"
    )
    wait_until(lambda: any(marker in json.dumps(r.get("json")) for r in claw.api.messages_requests()), what="request")
    early = claw.json("respond", s["id"], "[[text: the queued note]] allow")
    waiting = claw.wait(s["id"], timeout=30)
    assert waiting["waitingFor"] == "permission", waiting
    claw.run("respond", s["id"], "deny not now")
    records = []

    def settled() -> bool:
        records[:] = claw.journal(s["unit"])
        return len(of(records, "waiting")) >= 2

    wait_until(settled, timeout=30, what="the queued message's turn")
    (ans,) = of(records, "permission_answer")
    assert ans["decision"] == "deny" and ans["reason"] == "not now"
    assert not target.exists()
    # The early message was delivered as the next turn, not taken as the answer.
    received = of(records, "message_received")
    assert [r.get("answers") is None for r in received] == [False, True]
    assert received[1]["messageId"] == early["messageId"]
    assert any(r["type"] == "text" and r["text"] == "the queued note" for r in records)


def test_single_turn_session_can_still_be_approved(claw: Claw) -> None:
    target = claw.workdir / "single.txt"
    s = claw.launch(
        f"[[bash: touch {target}]] once", "--permission-mode", "default", "--multi-turn-disabled", "--name", "one-shot"
    )
    assert claw.wait(s["id"])["waitingFor"] == "permission"
    claw.run("respond", s["id"], "allow")
    final = claw.json("wait", s["id"], "--ended", "--timeout", "60")
    assert final["status"] == "completed" and target.exists()
    # The answer was the one message it took; now it takes none.
    proc = claw.run("respond", s["id"], "more?", check=False)
    assert proc.returncode == 4


@pytest.mark.parametrize("mode", ["default", "bypassPermissions"])
def test_ask_user_question_is_a_question_not_a_permission(claw: Claw, mode: str) -> None:
    """AskUserQuestion asks the user something: the session waits for a "question" with the questions shown,
    and the answer arrives as the next turn (never as an allow/deny)."""
    question = "Which colour should the button be?"
    tool_input = {
        "questions": [
            {
                "question": question,
                "header": "Colour",
                "options": [{"label": "red", "description": "warm"}, {"label": "blue", "description": "cool"}],
                "multiSelect": False,
            }
        ]
    }
    s = claw.launch(f"[[tool: AskUserQuestion {json.dumps(tool_input)}]] pick", "--permission-mode", mode)
    asked = claw.wait(s["id"])
    assert asked["status"] == "waiting" and asked["waitingFor"] == "question", asked
    records = _journal(claw, s["unit"])
    assert not of(records, "permission_request")
    (waiting,) = of(records, "waiting")
    assert waiting["question"] is True and waiting["asked"] == [question]

    sent = claw.json("respond", s["id"], "[[text: Blue it is.]] blue")
    assert sent["status"] == "running"
    done = claw.wait(s["id"])
    assert done["status"] == "completed" and done["waitingFor"] == "input", done
    records = wait_until(lambda: len(of(rs := claw.journal(s["unit"]), "waiting")) == 2 and rs, what="2nd turn")
    assert [r["question"] for r in of(records, "waiting")] == [True, False]
    assert not of(records, "permission_answer")
