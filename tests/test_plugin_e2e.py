"""The OpenClaw plugin end to end, in a real gateway.

A real ``openclaw`` (Node 24, both from the npm registry, cached) runs a gateway on loopback with the plugin
installed by ``install.sh --plugin-only``. Its RPC methods are called with ``openclaw gateway call``, its tools
through ``tools.invoke``, its chat commands through ``chat.send`` + ``chat.history``. Behind them the plugin
runs the real clawunits CLI, which starts real session units running the real Claude Code CLI against the
loopback scripted Messages API. Nothing is skipped: if provisioning fails, the tests fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Claw, _stop_units, unit_property, wait_until
from plugin_harness import Gateway, free_port, gateway_env, provision
from test_worktree import make_repo

from clawunits.testing.scripted_api import ScriptedAPI

CLAWUNITS = Path(sys.executable).parent / "clawunits"
ASK = "I can do A or B. Which option do you prefer?"
MAIN_CHANNEL = "telegram|main-bot|1001"
OTHER_CHANNEL = "telegram|other-bot|2002"
AUTONOMY_SKILL = """---
name: claude-code-autonomy
description: How much to decide alone when a Claude Code session asks something.
---
# Autonomy
Answer routine questions yourself; forward architecture and destructive choices to the user.
"""


@dataclass
class E2E:
    gw: Gateway
    claw: Claw
    ws_main: Path  # agent main's workspace: guards not satisfied at first
    ws_other: Path  # agent other's workspace: ready for claude_launch, mapped in agentChannels
    project: Path  # a project of agent main, mapped in agentChannels
    unmapped: Path  # a directory no agentChannels entry covers

    def session(self, ref: str) -> dict[str, Any]:
        """The session as the clawunits CLI itself reports it (not through the plugin)."""
        for s in self.claw.json("sessions", "--all")["sessions"]:
            if ref in (s["id"], s["name"]):
                return s
        raise AssertionError(f"no session {ref}")

    def wait(self, ref: str, timeout: float = 90) -> dict[str, Any]:
        return self.claw.json("wait", ref, "--timeout", str(timeout))

    def unit_state(self, unit: str) -> str:
        return unit_property(self.claw, unit, "ActiveState")


HAND_WRITTEN_OPENCLAW = "/opt/openclaw/bin/openclaw"


@pytest.fixture(scope="module")
def e2e(
    tmp_path_factory: pytest.TempPathFactory,
    user_manager: dict[str, str],
    scripted_api: ScriptedAPI,
    claude_config_dir: Path,
) -> Iterator[E2E]:
    assert CLAWUNITS.exists(), f"{CLAWUNITS}: the tests run from the virtualenv install.sh made"
    toolchain = provision()
    root = tmp_path_factory.mktemp("plugin-e2e")
    home, tmp = root / "home", root / "tmp"
    ws_main, ws_other, project, unmapped = (root / d for d in ("ws-main", "ws-other", "projects/app", "scratch"))
    for d in (home, tmp, ws_main, ws_other, project, unmapped):
        d.mkdir(parents=True)
    # Agent other's workspace passes every pre-launch guard.
    (ws_other / "skills" / "claude-code-autonomy").mkdir(parents=True)
    (ws_other / "skills" / "claude-code-autonomy" / "SKILL.md").write_text(AUTONOMY_SKILL)
    (ws_other / "HEARTBEAT.md").write_text("# Heartbeat\n- Answer waiting Claude Code sessions.\n")

    env = gateway_env(root, user_manager, scripted_api, claude_config_dir)
    claw = Claw(
        env=env,
        state_dir=root / "state",
        config_path=root / "config" / "config.toml",
        workdir=project,
        api=scripted_api,
    )
    gw = Gateway(toolchain=toolchain, home=home, env=env, port=free_port(), token=uuid.uuid4().hex)

    # Installed as users install it.
    proc = subprocess.run(
        [str(REPO / "install.sh"), "--plugin-only"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OpenClaw plugin: installed" in proc.stdout

    config = gw.read_config()
    config.setdefault("gateway", {})["mode"] = "local"
    config["update"] = {"checkOnStart": False}
    config["agents"] = {
        "defaults": {"heartbeat": {"every": "60m", "target": "last"}},
        "entries": {"main": {"workspace": str(ws_main)}, "other": {"workspace": str(ws_other)}},
    }
    plugin_config = config["plugins"]["entries"]["clawunits"]["config"]
    plugin_config.update(
        {
            "agentChannels": {str(project.parent): MAIN_CHANNEL, str(ws_other): OTHER_CHANNEL},
            "skipSafetyChecks": False,
            "stopTimeoutSec": 10,
        }
    )
    gw.write_config(config)
    # What a person wrote in clawunits' own config before the plugin came: the sync keeps it.
    claw.config_path.parent.mkdir(parents=True, exist_ok=True)
    claw.config_path.write_text(f'openclawPath = "{HAND_WRITTEN_OPENCLAW}"\n')
    gw.start()
    e = E2E(gw=gw, claw=claw, ws_main=ws_main, ws_other=ws_other, project=project, unmapped=unmapped)
    try:
        yield e
    finally:
        gw.stop()
        _stop_units(claw)


def text_of(result: dict[str, Any]) -> str:
    assert result["ok"] is True, result
    return result["output"]["content"][0]["text"]


# ------------------------------------------------------------------------------------------------ install


def test_installed_plugin_is_loaded_with_its_skill_and_synced_config(e2e: E2E) -> None:
    installed = e2e.gw.state_dir / "extensions" / "clawunits"
    assert (installed / "index.js").is_file() and (installed / "openclaw.plugin.json").is_file()
    assert (installed / "skills" / "claude-code-orchestration" / "SKILL.md").is_file()
    assert not (installed / "test").exists() and not (installed / "testing").exists()
    assert e2e.gw.read_config()["plugins"]["entries"]["clawunits"]["config"]["clawunitsPath"] == str(CLAWUNITS)

    log = e2e.gw.log_tail(200_000)
    listening = next(line for line in log.splitlines() if "http server listening" in line)
    assert "clawunits" in listening

    # The service synced the plugin config into clawunits' own config file.
    # The file exists before the sync (a person's openclawPath): wait for what the sync writes.
    synced = wait_until(lambda: (c := tomllib.loads(e2e.claw.config_path.read_text())) and "agentChannels" in c and c)
    assert synced["agentChannels"] == {str(e2e.project.parent): MAIN_CHANNEL, str(e2e.ws_other): OTHER_CHANNEL}
    assert synced["stopTimeoutSec"] == 10 and synced["skipSafetyChecks"] is False
    assert "clawunitsPath" not in synced
    assert synced["openclawPath"] == HAND_WRITTEN_OPENCLAW  # unset in the plugin config: the file's value stays
    assert "maxSessions" not in synced  # OpenClaw passes no schema defaults: clawunits' own apply
    # Where this gateway keeps its state, for the notifier's openclaw calls: filled in by the plugin.
    assert synced["openclawStateDir"] == str(e2e.gw.state_dir)

    skills = e2e.gw.call("skills.status", {"agentId": "main"})["skills"]
    skill = next(s for s in skills if s["name"] == "claude-code-orchestration")
    assert skill["eligible"] is True and skill["missing"]["bins"] == [], skill

    commands = {c.get("name") for c in e2e.gw.call("commands.list", {}).get("commands", [])}
    expected = {"claude", "claude_sessions", "claude_fg", "claude_bg", "claude_kill", "claude_respond"}
    assert expected | {"claude_resume", "claude_stats"} <= commands, commands


# ------------------------------------------------------------------------------------------------ RPC


def test_rpc_methods_drive_a_real_session(e2e: E2E) -> None:
    gw = e2e.gw
    launched = gw.call(
        "claude-code.launch",
        {
            "prompt": "[[ask]] pick an option",
            "name": "rpc-ask",
            "workdir": str(e2e.project),
            "originChannel": "telegram|555",
        },
    )
    assert launched["name"] == "rpc-ask" and launched["status"] in ("starting", "running")
    assert launched["originChannel"] == "telegram|555" and launched["originAgent"] is None
    unit = launched["unit"]
    e2e.claw.launched.append(unit)
    assert e2e.unit_state(unit) in ("active", "activating")

    waiting = e2e.wait("rpc-ask")
    assert waiting["status"] == "waiting" and waiting["waitingFor"] == "question"
    out = gw.call("claude-code.output", {"session": "rpc-ask"})
    assert out["lines"][-1] == ASK and out["status"] == "waiting" and out["result"]["subtype"] == "success"
    assert set(out) >= {"id", "name", "status", "costUsd", "durationMs", "duration", "lines", "lineCount", "result"}

    answered = gw.call(
        "claude-code.respond", {"id": launched["id"], "message": "[[text: Going with A.]]", "user_initiated": True}
    )
    assert answered["status"] == "running" and answered["autoResponds"] == 0 and answered["messageId"]
    assert e2e.wait("rpc-ask")["status"] == "completed"
    assert "Going with A." in gw.call("claude-code.output", {"id": "rpc-ask", "lines": 3})["lines"]

    fg = gw.call("claude-code.fg", {"session": "rpc-ask", "channel": "telegram|555", "lines": 5})
    assert fg["foreground"] is True and fg["channel"] == "telegram|555"
    assert fg["message"].startswith("Session rpc-ask [") and "Going with A." in fg["message"]
    bg = gw.call("claude-code.bg", {"channel": "telegram|555"})
    assert bg["count"] == 1 and bg["sessions"][0]["name"] == "rpc-ask"

    killed = gw.call("claude-code.kill", {"session": "rpc-ask"})
    assert killed["alreadyFinished"] is True and "No action needed" in killed["message"]
    wait_until(lambda: e2e.unit_state(unit) in ("inactive", "failed", ""), timeout=30, what=f"{unit} to stop")

    # snake_case parameters, a single-turn session with its own budget.
    single = gw.call(
        "claude-code.launch",
        {"prompt": "say hi once", "workdir": str(e2e.project), "multi_turn_disabled": True, "max_budget_usd": 1.5},
    )
    e2e.claw.launched.append(single["unit"])
    assert single["multiTurn"] is False and single["budgetUsd"] == 1.5

    listed = gw.call("claude-code.sessions", {"status": "all"})
    assert listed["count"] == len(listed["sessions"]) >= 2
    assert {"rpc-ask", single["name"]} <= {s["name"] for s in listed["sessions"]}
    assert {"id", "name", "status", "workdir", "model", "costUsd", "claudeSessionId", "startedAt"} <= set(
        listed["sessions"][0]
    )
    assert e2e.wait(single["id"])["status"] == "completed"

    stats = gw.call("claude-code.stats")
    assert stats["totalLaunched"] >= 2 and stats["totalCostUsd"] > 0
    assert stats["display"].startswith("📊") and set(stats["sessionsByStatus"]) >= {"completed", "killed", "failed"}

    resumable = gw.call("claude-code.resume", {"list": True})
    assert {"rpc-ask", single["name"]} <= {s["name"] for s in resumable["sessions"]}
    resumed = gw.call(
        "claude-code.resume",
        {"session": "rpc-ask", "prompt": "[[text: resumed fine]]", "fork_session": True, "name": "rpc-fork"},
    )
    e2e.claw.launched.append(resumed["unit"])
    assert resumed["resumedFrom"] == launched["id"] and resumed["forked"] is True
    assert resumed["workdir"] == str(e2e.project)
    assert e2e.wait("rpc-fork")["status"] == "completed"
    assert "resumed fine" in gw.call("claude-code.output", {"session": "rpc-fork"})["lines"]

    # Errors come back as RPC errors with the CLI's code and text.
    code, err = gw.call_raw("claude-code.output", {"session": "no-such-session"})
    assert code != 0 and err["ok"] is False
    assert err["error"]["code"] == "not-found" and "unknown session 'no-such-session'" in err["error"]["message"]
    code, err = gw.call_raw("claude-code.launch", {"name": "x"})
    assert code != 0 and err["error"]["message"] == "Missing required parameter: prompt"


# ------------------------------------------------------------------------------------------------ tools


def test_claude_launch_guards_block_until_the_workspace_is_ready(e2e: E2E) -> None:
    gw = e2e.gw

    def launch(**args: Any) -> dict[str, Any]:
        return gw.invoke("claude_launch", {"prompt": "[[text: guarded work done]]", **args}, agent="main")

    blocked = launch()
    assert blocked["ok"] is False
    assert blocked["error"]["message"].startswith("ERROR: Launch blocked — no autonomy skill found.")
    skill = e2e.ws_main / "skills" / "claude-code-autonomy" / "SKILL.md"
    assert str(skill) in blocked["error"]["message"]

    skill.parent.mkdir(parents=True)
    skill.write_text(AUTONOMY_SKILL)
    (e2e.ws_main / "HEARTBEAT.md").write_text("# Heartbeat\n\n")  # headings only: effectively empty
    blocked = launch(workdir=str(e2e.project))
    assert blocked["error"]["message"].startswith("ERROR: Launch blocked — no HEARTBEAT.md file found")

    (e2e.ws_main / "HEARTBEAT.md").write_text("# Heartbeat\n- Check waiting Claude Code sessions.\n")
    blocked = launch(workdir=str(e2e.unmapped))
    assert blocked["error"]["message"].startswith(
        f'ERROR: Launch blocked — no agentChannels mapping found for workspace "{e2e.unmapped}".'
    )
    assert all(s["originAgent"] != "main" for s in e2e.claw.json("sessions")["sessions"])

    ok = launch(workdir=str(e2e.project), name="guarded")
    text = text_of(ok)
    details = ok["output"]["details"]
    e2e.claw.launched.append(details["unit"])
    assert text.startswith("Session launched successfully.\n  Name: guarded\n")
    # An agent's tool names the next steps as tools (the seed's wording), rendered by the CLI.
    assert f"  Dir: {e2e.project}\n" in text and "  Mode: multi-turn (use claude_respond to send" in text
    assert text.endswith("\n\nUse claude_sessions to check status, claude_output to see output.")
    assert details["originAgent"] == "main"
    # The project has its own agentChannels entry: clawunits routes by it, no origin channel is forced.
    assert details["originChannel"] is None
    assert e2e.wait("guarded")["status"] == "completed"


def test_tools_act_for_their_agent_only(e2e: E2E) -> None:
    gw = e2e.gw
    launched = gw.invoke("claude_launch", {"prompt": "[[ask]] other's question", "name": "other-ask"}, agent="other")
    details = launched["output"]["details"]
    e2e.claw.launched.append(details["unit"])
    # The workdir defaults to the agent's workspace; the launch went through the guards.
    assert details["workdir"] == str(e2e.ws_other) and details["originAgent"] == "other"
    assert e2e.wait("other-ask")["status"] == "waiting"

    mine = gw.invoke("claude_sessions", {}, agent="other")["output"]["details"]
    assert [s["name"] for s in mine["sessions"]] == ["other-ask"]
    theirs = gw.invoke("claude_sessions", {"status": "all"}, agent="main")
    assert "other-ask" not in text_of(theirs)
    assert all(s["originAgent"] == "main" for s in theirs["output"]["details"]["sessions"])

    refused = gw.invoke("claude_respond", {"session": "other-ask", "message": "A"}, agent="main")
    assert refused["ok"] is False
    assert refused["error"]["message"] == f"session other-ask [{details['id']}] belongs to agent 'other', not 'main'"
    refused = gw.invoke("claude_kill", {"session": "other-ask"}, agent="main")
    assert refused["ok"] is False and "belongs to agent 'other'" in refused["error"]["message"]

    out = text_of(gw.invoke("claude_output", {"session": "other-ask", "lines": 10}, agent="other"))
    assert out.startswith("Session: other-ask [") and "| Status: WAITING |" in out and out.endswith(ASK)

    fg = gw.invoke("claude_fg", {"session": "other-ask", "lines": 5}, agent="other")
    assert fg["output"]["details"]["channel"] == OTHER_CHANNEL and fg["output"]["details"]["foreground"] is True
    assert text_of(fg).startswith("Session other-ask [") and "Use claude_bg to detach." in text_of(fg)

    replied = gw.invoke(
        "claude_respond", {"session": "other-ask", "message": "[[text: Took B.]]", "userInitiated": True}, agent="other"
    )
    assert text_of(replied).startswith("Message sent to session other-ask [")
    assert text_of(replied).endswith("Use claude_output to see the response.")
    assert e2e.wait("other-ask")["status"] == "completed"
    assert (
        "Took B."
        in gw.invoke("claude_output", {"session": "other-ask", "full": True}, agent="other")["output"]["details"][
            "lines"
        ]
    )

    bg = gw.invoke("claude_bg", {}, agent="other")
    assert text_of(bg) == f"Moved to background: other-ask [{details['id']}]"

    killed = gw.invoke("claude_kill", {"session": "other-ask"}, agent="other")
    assert text_of(killed) == f"Session other-ask [{details['id']}] is already completed. No action needed."

    stats = gw.invoke("claude_stats", {}, agent="other")
    assert text_of(stats).startswith("📊") and stats["output"]["details"]["totalLaunched"] >= 1


# ------------------------------------------------------------------------------------------------ chat commands


def test_chat_commands(e2e: E2E) -> None:
    gw = e2e.gw
    reply = gw.chat("/claude --name chatty [[ask]] say hi")
    # A command shows the CLI's text for chat: the seed's short reply.
    assert reply.startswith("Session launched.\n  Name: chatty\n  ID: "), reply
    assert reply.endswith('\n  Prompt: "[[ask]] say hi"\n  Status: starting'), reply
    session = e2e.session("chatty")
    e2e.claw.launched.append(session["unit"])
    # The origin channel comes from the command's context: webchat, sender cli.
    assert session["originChannel"] == "webchat|cli" and session["originAgent"] is None
    assert e2e.wait("chatty")["status"] == "waiting"

    listing = gw.chat("/claude_sessions")
    assert "💬 chatty [" in listing and "— WAITING (" in listing

    fg = gw.chat("/claude_fg chatty")
    assert fg.startswith("Session chatty [") and ASK in fg and fg.endswith("Use /claude_bg to detach.")

    sent = gw.chat("/claude_respond chatty [[text: Noted, A it is.]]")
    assert sent.startswith("Message sent to chatty [") and sent.endswith('\n  "[[text: Noted, A it is.]]"'), sent
    assert e2e.wait("chatty")["status"] == "completed"

    assert gw.chat("/claude_bg").startswith("Moved to background: chatty [")
    assert gw.chat("/claude_kill chatty").endswith("is already completed. No action needed.")

    resumable = gw.chat("/claude_resume --list")
    assert resumable.startswith("Resumable sessions:") and "  chatty — completed " in resumable
    resumed = gw.chat("/claude_resume chatty [[text: picked up again]]")
    assert resumed.startswith("Session launched.") and "\n  Resumed from: " in resumed, resumed
    name = resumed.split("Name: ", 1)[1].split("\n", 1)[0]
    e2e.claw.launched.append(e2e.session(name)["unit"])
    assert e2e.wait(name)["status"] == "completed"

    assert gw.chat("/claude_stats").startswith("📊 clawunits stats")
    assert gw.chat("/claude_kill no-such-session") == "⚠️ unknown session 'no-such-session'"


# ------------------------------------------------------------------------------------------------ worktrees


def test_worktree_sessions_through_tools_commands_and_rpc(e2e: E2E) -> None:
    gw = e2e.gw
    repo = make_repo(e2e.project.parent / "wt-repo")  # under a mapped directory: the guards pass
    prompt = "[[bash: echo hi > hello.txt]] greet"
    launched = gw.invoke(
        "claude_launch", {"prompt": prompt, "name": "wt-tool", "workdir": str(repo), "worktree": True}, agent="other"
    )
    details = launched["output"]["details"]
    e2e.claw.launched.append(details["unit"])
    tree = Path(details["worktree"]["path"])
    assert details["worktree"]["branch"] == "clawunits/wt-tool" and details["workdir"] == str(tree)
    assert "\n  Worktree: branch clawunits/wt-tool from main\n" in text_of(launched)
    assert e2e.wait("wt-tool")["status"] == "completed"
    assert (tree / "hello.txt").is_file() and not (repo / "hello.txt").exists()

    view = gw.invoke("claude_worktree", {"session": "wt-tool"}, agent="other")
    assert view["output"]["details"]["diffStat"]["files"][0]["path"] == "hello.txt"
    assert "Branch: clawunits/wt-tool (from main; merged into main)" in text_of(view) and "hello.txt" in text_of(view)
    assert "hello.txt | " in gw.chat("/claude_worktree wt-tool")
    assert gw.call("claude-code.worktree", {"session": "wt-tool"})["status"] == [{"code": "??", "path": "hello.txt"}]

    kept = gw.invoke("claude_kill", {"session": "wt-tool", "remove_worktree": True}, agent="other")
    assert "Worktree kept: the worktree has 1 uncommitted change(s)" in text_of(kept) and tree.is_dir()
    (tree / "hello.txt").unlink()
    assert "Worktree removed: removed " in gw.chat("/claude_kill --remove-worktree wt-tool")
    assert not tree.exists()

    rpc = gw.call(
        "claude-code.launch",
        {"prompt": "[[text: ok]] x", "workdir": str(repo), "worktree": True, "base": "main", "name": "wt-rpc"},
    )
    e2e.claw.launched.append(rpc["unit"])
    assert rpc["worktree"]["base"] == "main" and e2e.wait("wt-rpc")["status"] == "completed"
    killed = gw.call("claude-code.kill", {"session": "wt-rpc", "removeWorktree": True})
    assert killed["worktree"]["removed"] is True and not Path(rpc["worktree"]["path"]).exists()

    code, err = gw.call_raw(
        "claude-code.launch", {"prompt": "x", "workdir": str(e2e.unmapped), "worktree": True, "name": "wt-none"}
    )
    assert code != 0 and err["error"]["code"] == "invalid-input"
    assert f"workdir {e2e.unmapped} is not in a git repository" in err["error"]["message"]


# ------------------------------------------------------------------------------------------------ config


def test_config_set_reaches_clawunits(e2e: E2E) -> None:
    e2e.gw.openclaw("config", "set", "plugins.entries.clawunits.config.maxSessions", "3")

    def synced() -> bool:
        return tomllib.loads(e2e.claw.config_path.read_text()).get("maxSessions") == 3

    wait_until(synced, timeout=60, what="maxSessions = 3 in clawunits' config")
    shown = e2e.claw.json("config", "show")
    assert shown["settings"]["maxSessions"] == 3
    assert json.loads(json.dumps(shown["settings"]["agentChannels"]))[str(e2e.ws_other)] == OTHER_CHANNEL
