"""The claude_launch tool's pre-launch guards and how OpenClaw's config is found and read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawunits.service.guards import GuardContext, LaunchBlocked, check_launch
from clawunits.state.config import Settings
from clawunits.state.openclaw_config import config_path, loads_json5

WORKDIR_CHANNEL = {"/srv": "telegram|bot|42"}


def prepared_workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "skills" / "claude-code-autonomy").mkdir(parents=True)
    (ws / "skills" / "claude-code-autonomy" / "SKILL.md").write_text("---\nname: a\ndescription: b\n---\nrules")
    (ws / "HEARTBEAT.md").write_text("# Heartbeat\n- answer waiting sessions\n")
    return ws


def openclaw_home(tmp_path: Path, config: dict) -> dict[str, str]:
    home = tmp_path / "home"
    (home / ".openclaw").mkdir(parents=True, exist_ok=True)
    (home / ".openclaw" / "openclaw.json").write_text(json.dumps(config))
    return {"OPENCLAW_HOME": str(home), "HOME": "/nonexistent"}


def blocked(ctx: GuardContext, settings: Settings, env: dict[str, str]) -> str:
    with pytest.raises(LaunchBlocked) as e:
        check_launch(ctx, settings, env)
    return e.value.message


def test_a_prepared_agent_passes(tmp_path: Path) -> None:
    ws = prepared_workspace(tmp_path)
    env = openclaw_home(tmp_path, {"agents": {"entries": {"main": {"heartbeat": {"every": "60m"}}}}})
    check_launch(GuardContext("/srv/app", "main", str(ws)), Settings(agentChannels=WORKDIR_CHANNEL), env)


def test_each_guard_blocks_with_its_instructions_in_order(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    settings = Settings(agentChannels=WORKDIR_CHANNEL)
    env = openclaw_home(tmp_path, {})
    ctx = GuardContext("/srv/app", "main", str(ws))
    assert blocked(ctx, settings, env).startswith("ERROR: Launch blocked — no autonomy skill found.")
    ws = prepared_workspace(tmp_path)
    ctx = GuardContext("/srv/app", "main", str(ws))
    text = blocked(ctx, settings, env)
    assert text.startswith("ERROR: Launch blocked — no heartbeat configured for this agent.")
    assert "agents.entries.main.heartbeat" in text and "Do NOT restart the gateway" in text
    env = openclaw_home(tmp_path, {"agents": {"list": [{"id": "main", "heartbeat": {"every": "5s"}}]}})
    assert blocked(ctx, settings, env).startswith("ERROR: Launch blocked — heartbeat interval too short (5s).")
    env = openclaw_home(tmp_path, {"agents": {"defaults": {"heartbeat": {"every": "30m"}}}})
    (ws / "HEARTBEAT.md").write_text("# only a heading\n\n   \n")
    text = blocked(ctx, settings, env)
    assert text.startswith("ERROR: Launch blocked — no HEARTBEAT.md file found or file is effectively empty.")
    (ws / "HEARTBEAT.md").write_text("# Heartbeat\nreal content\n")
    text = blocked(GuardContext("/elsewhere", "main", str(ws)), settings, env)
    assert text.startswith('ERROR: Launch blocked — no agentChannels mapping found for workspace "/elsewhere".')


def test_skip_safety_checks_turns_them_off(tmp_path: Path) -> None:
    check_launch(GuardContext(str(tmp_path)), Settings(skipSafetyChecks=True), {})


def test_agent_from_agent_channels_when_the_context_has_none(tmp_path: Path) -> None:
    ws = prepared_workspace(tmp_path)
    env = openclaw_home(tmp_path, {"agents": {"entries": {"other": {"heartbeat": {"every": "1h"}}}}})
    settings = Settings(agentChannels={str(ws): "telegram|bot|1", "/srv": "telegram|bot|42"})
    text = blocked(GuardContext("/srv/app", None, str(ws)), settings, env)
    assert 'Agent "bot" has no heartbeat' in text


def test_heartbeat_md_of_only_headings_after_long_whitespace_is_quick(tmp_path: Path) -> None:
    ws = prepared_workspace(tmp_path)
    (ws / "HEARTBEAT.md").write_text(" " * 100_000 + "\n#" * 50_000)
    env = openclaw_home(tmp_path, {})
    assert "HEARTBEAT.md" in blocked(
        GuardContext("/srv/x", None, str(ws)), Settings(agentChannels=WORKDIR_CHANNEL), env
    )


def test_openclaw_config_location_follows_openclaw(tmp_path: Path) -> None:
    assert config_path({"HOME": "/h"}) == Path("/h/.openclaw/openclaw.json")
    assert config_path({"HOME": "/h", "OPENCLAW_HOME": "/oc"}) == Path("/oc/.openclaw/openclaw.json")
    assert config_path({"HOME": "/h", "OPENCLAW_STATE_DIR": "/state"}) == Path("/state/openclaw.json")
    assert config_path({"HOME": "/h", "OPENCLAW_STATE_DIR": "/s", "OPENCLAW_CONFIG_PATH": "/c.json"}) == Path("/c.json")
    assert config_path({"HOME": "/h", "OPENCLAW_HOME": "/oc", "OPENCLAW_CONFIG_PATH": "~/x.json"}) == Path("/oc/x.json")
    assert config_path({"HOME": "/h", "OPENCLAW_HOME": "undefined"}) == Path("/h/.openclaw/openclaw.json")


def test_json5_as_openclaw_writes_it() -> None:
    text = """{
      // comment
      agents: { entries: { main: { heartbeat: { every: '60m', }, }, }, },
      /* block */ "url": "http://a//b, }", n: 1.5e3, ok: true,
    }"""
    assert loads_json5(text) == {
        "agents": {"entries": {"main": {"heartbeat": {"every": "60m"}}}},
        "url": "http://a//b, }",
        "n": 1500.0,
        "ok": True,
    }
    with pytest.raises(ValueError):
        loads_json5("{ broken")
