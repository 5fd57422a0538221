"""The launch parameters, stated once: ``launch`` takes them all and ``resume`` those that fit a continuation.

Each option's destination is the name of its ``LaunchRequest`` field, so a command's options become the request
without being listed again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from clawunits.modes import PERMISSION_MODES
from clawunits.notify_policy import NOTIFY_POLICIES

if TYPE_CHECKING:
    from clawunits.service.api import LaunchRequest

# dest -> (flags, click keyword arguments). Order is the order of `clawunits launch --help`.
LAUNCH_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "name": (("--name",), {"help": "Short kebab-case name (default: from the prompt)."}),
    "workdir": (
        ("--workdir",),
        {"help": "Absolute working directory (default: config defaultWorkdir, else the current directory)."},
    ),
    "model": (("--model",), {"help": "Model name (default: config defaultModel)."}),
    "max_budget_usd": (
        ("--max-budget-usd",),
        {"type": float, "help": "Budget in USD (default: config defaultBudgetUsd, 5)."},
    ),
    "system_prompt": (("--system-prompt",), {"help": "Text appended to Claude Code's system prompt."}),
    "allowed_tools": (("--allowed-tools",), {"help": "Comma-separated tools allowed without asking."}),
    "permission_mode": (
        ("--permission-mode",),
        {
            "type": click.Choice(PERMISSION_MODES),
            "help": "Permission mode (default: config permissionMode, bypassPermissions).",
        },
    ),
    "multi_turn_disabled": (
        ("--multi-turn-disabled",),
        {"is_flag": True, "help": "Fire-and-forget: end after the first turn."},
    ),
    "origin_channel": (("--channel",), {"help": "Origin channel for notifications (channel|target)."}),
    "resume": (("--resume",), {"help": "Resume a session: name, id or Claude session UUID."}),
    "fork": (("--fork",), {"is_flag": True, "help": "With --resume: continue in a new Claude session."}),
    "origin_agent": (
        ("--agent",),
        {"help": "The OpenClaw agent launching it (only it may respond or kill)."},
    ),
    "run_guards": (("--guards",), {"is_flag": True, "help": "Run the pre-launch guards of the claude_launch tool."}),
    "agent_workspace": (("--agent-workspace",), {"help": "The agent's workspace directory, for --guards."}),
    "memory_max": (
        ("--memory-max",),
        {"help": "Memory limit, e.g. 2G (default: config memoryMax, 4G; 'infinity': none)."},
    ),
    "cpu_quota": (
        ("--cpu-quota",),
        {"help": "CPU limit, e.g. 150% for 1.5 CPUs (default: config cpuQuota, 200%)."},
    ),
    "tasks_max": (("--tasks-max",), {"help": "Process and thread limit (default: config tasksMax, 1024)."}),
    "runtime_max": (
        ("--runtime-max",),
        {"help": "Stop the session after this long, e.g. 2h (default: config runtimeMax, 24h)."},
    ),
    "worktree": (("--worktree",), {"is_flag": True, "help": "Run in a new git worktree on branch clawunits/<name>."}),
    "base": (("--base",), {"help": "With --worktree: the branch to start from (default: the current branch)."}),
    "notify": (
        ("--notify",),
        {
            "type": click.Choice(NOTIFY_POLICIES),
            "help": "What the chat is told: all, status (one edited status message) or quiet (default: config).",
        },
    ),
    "priority": (
        ("--priority",),
        {"is_flag": True, "help": "Beyond maxSessions: queue it at the front of the launch queue."},
    ),
}


def launch_options(
    *names: str, help: dict[str, str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command with the named launch options (all of them when none are named); ``help`` overrides
    an option's help text where the command gives it another default."""
    chosen = names or tuple(LAUNCH_OPTIONS)
    texts = help or {}

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for dest in reversed(chosen):  # click applies decorators bottom-up
            flags, kwargs = LAUNCH_OPTIONS[dest]
            f = click.option(*flags, dest, **{**kwargs, "help": texts.get(dest, kwargs["help"])})(f)
        return f

    return decorate


def launch_request(prompt: str, opts: dict[str, Any], **fixed: Any) -> LaunchRequest:
    """The request a command's launch options make (``fixed`` values win over options)."""
    from clawunits.service.api import LaunchRequest

    values = {k: v for k, v in opts.items() if k in LAUNCH_OPTIONS}
    multi_turn = not values.pop("multi_turn_disabled", False)
    tools = values.pop("allowed_tools", None)
    if tools:
        values["allowed_tools"] = [t.strip() for t in tools.split(",") if t.strip()]
    values = {k: v for k, v in values.items() if v is not None}
    return LaunchRequest(prompt=prompt, multi_turn=multi_turn, **{**values, **fixed})
