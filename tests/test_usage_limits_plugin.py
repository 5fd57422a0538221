"""Usage limits through the OpenClaw plugin in a real gateway: a parked session seen, resumed early and killed
from the agent tools, the chat commands and the gateway RPC (the gateway fixture of test_plugin_e2e)."""

from __future__ import annotations

from conftest import wait_until
from test_plugin_e2e import E2E, e2e, text_of
from test_usage_limits import stop_timers

__all__ = ["e2e"]  # the module-scoped gateway fixture, shared with test_plugin_e2e's


def test_a_parked_session_from_tools_chat_and_rpc(e2e: E2E) -> None:
    try:
        parked_from_everywhere(e2e)
    finally:
        stop_timers(e2e.claw)


def parked_from_everywhere(e2e: E2E) -> None:
    gw, claw = e2e.gw, e2e.claw
    claw.api.reset_limits()
    # A plain API key: Claude Code reports the refused request as a bare 429, which parks for 5 minutes.
    launched = gw.invoke("claude_launch", {"prompt": "[[error: 429]] go", "name": "parked"}, agent="other")
    sid = launched["output"]["details"]["id"]
    claw.launched.append(launched["output"]["details"]["unit"])
    wait_until(lambda: e2e.session(sid)["status"] == "limited", timeout=60, what="parked")

    listed = gw.invoke("claude_sessions", {"status": "limited"}, agent="other")
    assert [s["id"] for s in listed["output"]["details"]["sessions"]] == [sid]
    assert "usage limit (rate_limit) reached; resumes at" in text_of(listed)
    chat = gw.chat("/claude_sessions")
    assert "⏸️ parked [" in chat and "— LIMITED (" in chat and "usage limit (rate_limit) reached" in chat
    assert "⏸️ parked [" in gw.chat("/claude_stats")
    rpc = gw.call("claude-code.sessions", {"status": "limited"})
    assert [s["limitWindow"] for s in rpc["sessions"]] == ["rate_limit"]
    assert gw.call("claude-code.stats")["parked"][0]["id"] == sid
    dry = gw.call("claude-code.recover", {"session": sid, "dryRun": True})
    assert dry["sessions"][0]["action"] == "would-recover"

    # Resumed early by its agent: the window is still exhausted for that conversation, so it parks again.
    resumed = gw.invoke("claude_recover", {"session": "parked"}, agent="other")
    assert resumed["output"]["details"]["sessions"][0]["action"] == "resumed"
    wait_until(
        lambda: (d := e2e.session(sid))["status"] == "limited" and d["limitResumes"] == 1,
        timeout=60,
        what="parked again",
    )
    killed = gw.invoke("claude_kill", {"session": "parked"}, agent="other")
    assert killed["output"]["details"]["status"] == "killed"
    assert e2e.session(sid)["status"] == "killed"
