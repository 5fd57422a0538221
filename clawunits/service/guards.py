"""The five pre-launch guards of the ``claude_launch`` agent tool (the seed's, with its bugs fixed).

They make sure an orchestrating agent is set up to handle a session before it starts one: it knows how
autonomous to be, it will be woken up (a heartbeat, a non-empty HEARTBEAT.md), and notifications have a
channel. Each failure is a text addressed to the agent, saying exactly what to do. ``skipSafetyChecks``
turns them off. Other surfaces (chat commands, RPC, the CLI) do not run them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clawunits.errors import ClawunitsError
from clawunits.notifier.channels import agent_channel
from clawunits.state import openclaw_config
from clawunits.state.config import Settings

MIN_HEARTBEAT_SEC = 60
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
UNITS_SEC = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 60}

NO_RESTART = "Do NOT restart the gateway yourself: ask the user to run `openclaw gateway restart`."


class LaunchBlocked(ClawunitsError):
    """A guard refused the launch; the message tells the agent how to fix it."""

    exit_code = 8
    code = "launch-blocked"


@dataclass(frozen=True)
class GuardContext:
    """What the tool call knows: the agent's id and workspace, and the session's workdir."""

    workdir: str
    agent_id: str | None = None
    agent_workspace: str | None = None


def check_launch(ctx: GuardContext, settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """Run the guards in order; the first failure raises :class:`LaunchBlocked`."""
    if settings.skipSafetyChecks:
        return
    workspace = Path(ctx.agent_workspace or ctx.workdir)
    _autonomy_skill(workspace)
    agent_id = ctx.agent_id or _agent_from_channels(str(workspace), settings)
    if agent_id:
        path = openclaw_config.config_path(env)
        heartbeat = _heartbeat(openclaw_config.load(path), agent_id)
        _heartbeat_configured(heartbeat, agent_id, path)
        _heartbeat_interval(heartbeat, agent_id, path)
    _heartbeat_md(workspace)
    _agent_channel(ctx.workdir, settings)


def _autonomy_skill(workspace: Path) -> None:
    skill = workspace / "skills" / "claude-code-autonomy" / "SKILL.md"
    if skill.is_file():
        return
    raise LaunchBlocked(
        f"""ERROR: Launch blocked — no autonomy skill found.

Before launching Claude Code sessions you MUST ask the user how autonomously you may answer them. Ask, for
example: "How should I handle questions from Claude Code sessions? For example: 'Respond to everything
automatically except architecture choices', 'Always ask me before responding', or 'Handle everything
yourself, just notify me when done'."

Do NOT create the skill without asking. When the user has answered:
1. Write their answer, in their words, to {workspace}/skills/claude-code-autonomy/autonomy.md
2. Write {skill} with structured rules derived from it: what you answer yourself, what you forward to the
   user. Start it with a frontmatter block (`---`, `name: claude-code-autonomy`, `description: ...`, `---`):
   OpenClaw ignores a skill without a description. It must define these two message formats:
     👋 [session-name] Important question — needs your decision:
     > "question text"
     🤖 [session-name] finished:
     <summary of what was done>
   (🔔 and ↩️ notifications are sent by clawunits itself.)
3. Call claude_launch again."""
    )


def _agent_from_channels(workspace: str, settings: Settings) -> str | None:
    """The seed's fallback: the account segment of the workspace's agentChannels value (channel|account|target)."""
    value = agent_channel(workspace, settings.agentChannels)
    parts = value.split("|") if value else []
    return parts[1] if len(parts) >= 3 and parts[1] else None


def _table(value: Any) -> dict[str, Any]:
    """``value`` if it is a table of the config, else an empty one."""
    return value if isinstance(value, dict) else {}


def _heartbeat(config: dict[str, Any], agent_id: str) -> Any:
    agents = _table(config.get("agents"))
    # OpenClaw 2026.9 keeps agents under agents.entries.<id>; older releases in an agents.list array.
    entries = _table(agents.get("entries"))
    entry = entries.get(agent_id)
    if isinstance(entry, dict) and entry.get("heartbeat") is not None:
        return entry["heartbeat"]
    for agent in agents.get("list") or []:
        if isinstance(agent, dict) and agent.get("id") == agent_id and agent.get("heartbeat") is not None:
            return agent["heartbeat"]
    defaults = _table(agents.get("defaults"))
    # The seed ignored agents.defaults.heartbeat, which OpenClaw applies to every agent.
    return defaults.get("heartbeat")


def _agent_index(agent_id: str) -> str:
    return f"agents.entries.{agent_id}"


def _heartbeat_configured(heartbeat: Any, agent_id: str, path: Path) -> None:
    if heartbeat is not None:
        return
    raise LaunchBlocked(
        f"""ERROR: Launch blocked — no heartbeat configured for this agent.

Agent "{agent_id}" has no heartbeat in {path}, so session wake events would never reach it.
Ask the user to add one, for example:
  openclaw config set '{_agent_index(agent_id)}.heartbeat' '{{"every": "60m", "target": "last"}}' --strict-json
or, for every agent:
  openclaw config set agents.defaults.heartbeat '{{"every": "60m", "target": "last"}}' --strict-json
Check it with: openclaw config get agents.list
{NO_RESTART}"""
    )


def _heartbeat_interval(heartbeat: Any, agent_id: str, path: Path) -> None:
    every = heartbeat.get("every") if isinstance(heartbeat, dict) else None
    seconds = _seconds(every)
    if seconds is None or seconds >= MIN_HEARTBEAT_SEC:
        return
    raise LaunchBlocked(
        f"""ERROR: Launch blocked — heartbeat interval too short ({every}).

Agent "{agent_id}" wakes every {every} ({path}). That floods the agent with turns; wake events from sessions
already wake it at once. Ask the user to set a long interval, for example:
  openclaw config set '{_agent_index(agent_id)}.heartbeat.every' '"60m"' --strict-json
{NO_RESTART}"""
    )


def _seconds(every: Any) -> float | None:
    if not isinstance(every, str):
        return None
    m = DURATION_RE.match(every)
    return float(m.group(1)) * UNITS_SEC[m.group(2)] if m else None


HEARTBEAT_TEMPLATE = """# Heartbeat
- If a Claude Code session is waiting for input (a 🔔 notification or a wake event), read it with
  claude_output and answer it with claude_respond, or forward the question to the user, following the
  claude-code-autonomy skill.
- If a Claude Code session finished (✅), summarize its result for the user.
- Otherwise reply HEARTBEAT_OK."""


def _heartbeat_md(workspace: Path) -> None:
    path = workspace / "HEARTBEAT.md"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    # Effectively empty: only blank lines and headings. (Line by line: the seed's regex could backtrack.)
    if any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        return
    raise LaunchBlocked(
        f"""ERROR: Launch blocked — no HEARTBEAT.md file found or file is effectively empty.

OpenClaw skips `system event --mode now` wakes when HEARTBEAT.md is empty or only headings (OpenClaw issue
#14527), so you would never hear from your sessions. Create {path} with real instructions, for example:

{HEARTBEAT_TEMPLATE}

Then call claude_launch again."""
    )


def _agent_channel(workdir: str, settings: Settings) -> None:
    if agent_channel(workdir, settings.agentChannels):
        return
    key = f"plugins.entries.{openclaw_config.PLUGIN_ID}.config.agentChannels"
    raise LaunchBlocked(
        f"""ERROR: Launch blocked — no agentChannels mapping found for workspace "{workdir}".

Notifications of this session would have no channel to go to. Ask the user to map the directory (or a parent
directory: the longest matching prefix wins) to the chat that should receive them:
  openclaw config set '{key}["{workdir}"]' '"channel|accountId|chatId"' --strict-json
(fallbackChannel does not satisfy this check.)
{NO_RESTART}"""
    )
