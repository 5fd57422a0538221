"""An OpenClaw agent calls the plugin's tools: a real agent run whose model is the scripted Messages API.

The gateway's default model is a custom ``anthropic-messages`` provider whose ``baseUrl`` is the loopback
scripted API (:func:`plugin_harness.scripted_model_config`). A plain chat message carrying a directive such as
``[[tool: claude_sessions {}]]`` makes the "model" answer with that tool_use; OpenClaw runs the plugin's tool
and sends its result back, which the scripted API answers ``Tool result: <first line>``. No real LLM, no
network: everything stays on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Claw, _stop_units, wait_until
from notifier_harness import NotifierUnit, install_openclaw
from plugin_harness import Gateway, free_port, gateway_env, provision, scripted_model_config

from clawunits.testing.scripted_api import ScriptedAPI

CLAWUNITS = Path(sys.executable).parent / "clawunits"
OTHER_CHANNEL = "telegram|other-bot|2002"
WEBCHAT_SENDER = "webchat|default|cli"  # how clawunits names the sender of a chat.send agent run's tool calls
AUTONOMY_SKILL = """---
name: claude-code-autonomy
description: How much to decide alone when a Claude Code session asks something.
---
# Autonomy
Answer routine questions yourself; forward architecture and destructive choices to the user.
"""


@dataclass
class AgentE2E:
    gw: Gateway
    claw: Claw
    api: ScriptedAPI
    ws_main: Path
    ws_other: Path  # agent other's workspace: ready for claude_launch, mapped in agentChannels


@pytest.fixture(scope="module")
def agent_e2e(
    tmp_path_factory: pytest.TempPathFactory,
    user_manager: dict[str, str],
    scripted_api: ScriptedAPI,
    claude_config_dir: Path,
) -> Iterator[AgentE2E]:
    assert CLAWUNITS.exists(), f"{CLAWUNITS}: the tests run from the virtualenv install.sh made"
    toolchain = provision()
    root = tmp_path_factory.mktemp("agent-e2e")
    home, tmp, ws_main, ws_other = (root / d for d in ("home", "tmp", "ws-main", "ws-other"))
    for d in (home, tmp, ws_main, ws_other):
        d.mkdir(parents=True)
    (ws_other / "skills" / "claude-code-autonomy").mkdir(parents=True)
    (ws_other / "skills" / "claude-code-autonomy" / "SKILL.md").write_text(AUTONOMY_SKILL)
    (ws_other / "HEARTBEAT.md").write_text("# Heartbeat\n- Answer waiting Claude Code sessions.\n")

    env = gateway_env(root, user_manager, scripted_api, claude_config_dir)
    claw = Claw(
        env=env,
        state_dir=root / "state",
        config_path=root / "config" / "config.toml",
        workdir=ws_other,
        api=scripted_api,
    )
    gw = Gateway(toolchain=toolchain, home=home, env=env, port=free_port(), token=uuid.uuid4().hex)

    proc = subprocess.run(
        [str(REPO / "install.sh"), "--plugin-only"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    config = gw.read_config()
    config.setdefault("gateway", {})["mode"] = "local"
    config["update"] = {"checkOnStart": False}
    config["agents"] = {
        "defaults": {"heartbeat": {"every": "60m", "target": "last"}},
        "entries": {"main": {"workspace": str(ws_main)}, "other": {"workspace": str(ws_other)}},
    }
    scripted_model_config(config, scripted_api.url)
    plugin_config = config["plugins"]["entries"]["clawunits"]["config"]
    # A chat.send agent run's tools get requesterSenderId "cli" and senderIsOwner false (OpenClaw 2026.9.6), so
    # clawunits refuses changes from it unless that sender is allowed.
    plugin_config.update(
        {"agentChannels": {str(ws_other): OTHER_CHANNEL}, "stopTimeoutSec": 10, "allowedSenders": [WEBCHAT_SENDER]}
    )
    gw.write_config(config)
    gw.start()
    e = AgentE2E(gw=gw, claw=claw, api=scripted_api, ws_main=ws_main, ws_other=ws_other)
    try:
        yield e
    finally:
        gw.stop()
        _stop_units(claw)


def tool_results(api: ScriptedAPI, since: int) -> list[tuple[str, dict[str, Any], str]]:
    """(tool name, tool input, result text) for each tool_use the scripted API answered and then got a result for."""
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    found: list[tuple[str, dict[str, Any], str]] = []
    for request in api.messages_requests()[since:]:
        for message in (request["json"] or {}).get("messages", []):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for block in content:
                if block.get("type") == "tool_use":
                    calls[block["id"]] = (block["name"], block.get("input") or {})
                elif block.get("type") == "tool_result" and block.get("tool_use_id") in calls:
                    result = block.get("content")
                    if isinstance(result, list):
                        result = "".join(b.get("text", "") for b in result if isinstance(b, dict))
                    entry = (*calls[block["tool_use_id"]], str(result))
                    if entry not in found:
                        found.append(entry)
    return found


def test_an_agent_run_calls_claude_sessions(agent_e2e: AgentE2E) -> None:
    before = len(agent_e2e.api.messages_requests())
    reply = agent_e2e.gw.chat("[[tool: claude_sessions {}]] list them", timeout=120)
    results = tool_results(agent_e2e.api, before)
    assert [(name, args) for name, args, _ in results] == [("claude_sessions", {})], json.dumps(
        agent_e2e.api.messages_requests()[before:], indent=1
    )[-6000:]
    assert "No sessions" in results[0][2] or "session" in results[0][2].lower(), results
    assert reply.startswith("Tool result: "), reply


def test_an_agent_run_launches_a_session(agent_e2e: AgentE2E) -> None:
    before = len(agent_e2e.api.messages_requests())
    args = {"prompt": "[[text: done]] hello", "name": "agent-launched"}
    reply = agent_e2e.gw.chat(
        f"[[tool: claude_launch {json.dumps(args)}]] go", session_key="agent:other:main", timeout=120
    )
    results = tool_results(agent_e2e.api, before)
    assert [name for name, _, _ in results] == ["claude_launch"], results
    assert results[0][2].startswith("Session launched successfully.\n  Name: agent-launched\n"), results
    assert reply.startswith("Tool result: Session launched successfully."), reply
    session = next(s for s in agent_e2e.claw.json("sessions", "--all")["sessions"] if s["name"] == "agent-launched")
    agent_e2e.claw.launched.append(session["unit"])
    assert session["originAgent"] == "other" and session["workdir"] == str(agent_e2e.ws_other)
    # Its questions and ends wake the agent session whose tool launched it.
    assert session["wakes"] == {"agentId": "other", "sessionKey": "agent:other:main"}
    assert agent_e2e.claw.wait("agent-launched")["status"] == "completed"


def test_a_session_an_agent_launched_wakes_that_agent_session_when_it_is_done(agent_e2e: AgentE2E) -> None:
    link, rec = install_openclaw(agent_e2e.claw)
    agent_e2e.claw.write_config(openclawPath=str(link), agentChannels={str(agent_e2e.ws_other): OTHER_CHANNEL},
                                allowedSenders=[WEBCHAT_SENDER], stopTimeoutSec=10)  # fmt: skip
    notifier = NotifierUnit(agent_e2e.claw, rec).start()
    try:
        args = {"prompt": "[[text: all tests pass]] run the tests", "name": "agent-woken"}
        agent_e2e.gw.chat(f"[[tool: claude_launch {json.dumps(args)}]] go", session_key="agent:other:main",
                          timeout=120)  # fmt: skip
        before = len(agent_e2e.api.messages_requests())
        session = next(s for s in agent_e2e.claw.json("sessions", "--all")["sessions"] if s["name"] == "agent-woken")
        agent_e2e.claw.launched.append(session["unit"])
        assert agent_e2e.claw.wait("agent-woken")["status"] == "completed"

        def woken() -> bool:
            requests = json.dumps(agent_e2e.api.messages_requests()[before:])
            return "Claude Code session completed" in requests and "agent-woken" in requests

        # The notifier hands the wake to the gateway, which runs a turn of that agent session (on the scripted API).
        wait_until(woken, timeout=90, what="the agent's turn on the wake event")
        assert rec.calls() == []  # in the gateway, not through the openclaw CLI
    finally:
        notifier.close()
