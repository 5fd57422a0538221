"""Input checks of the operations: each value that comes from a front-end, with one clear message each."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from clawunits.errors import InvalidInput
from clawunits.modes import PERMISSION_MODES

MAX_PROMPT_BYTES = 256 * 1024
MAX_BUDGET_USD = 1000.0
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@\[\]/-]{0,99}$")
TOOL_RE = re.compile(r"^[A-Za-z0-9_.*:()\[\] /-]{1,200}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
AGENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$")


def check_agent(agent: str | None) -> str | None:
    if agent is not None and not AGENT_RE.match(agent):
        raise InvalidInput(f"invalid agent id {agent!r}")
    return agent


def check_message(message: str) -> str:
    if not message or not message.strip():
        raise InvalidInput("message is empty")
    if "\0" in message:
        raise InvalidInput("message contains a NUL byte")
    size = len(message.encode("utf-8", errors="surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidInput(f"message is {size} bytes; the limit is {MAX_PROMPT_BYTES}")
    return message


def check_prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise InvalidInput("prompt is empty")
    if "\0" in prompt:
        raise InvalidInput("prompt contains a NUL byte")
    size = len(prompt.encode("utf-8", errors="surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidInput(
            f"prompt is {size} bytes; the limit is {MAX_PROMPT_BYTES}",
            hint="put long material in a file in the workdir and refer to it",
        )
    return prompt


def check_workdir(workdir: str) -> str:
    if "\0" in workdir:
        raise InvalidInput("workdir contains a NUL byte")
    path = Path(workdir).expanduser()
    if not path.is_absolute():
        raise InvalidInput(f"workdir {workdir!r} is relative", hint="give an absolute path")
    if not path.exists():
        raise InvalidInput(f"workdir {workdir} does not exist")
    if not path.is_dir():
        raise InvalidInput(f"workdir {workdir} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidInput(f"workdir {workdir} is not readable")
    return str(path)


def check_model(model: str | None) -> str | None:
    if model is not None and not MODEL_RE.match(model):
        raise InvalidInput(f"invalid model name {model!r}", hint="e.g. sonnet, opus, claude-sonnet-4-5")
    return model


def check_budget(budget: float) -> float:
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not math.isfinite(budget):
        raise InvalidInput(f"budget must be a number, got {budget!r}")
    if budget <= 0:
        raise InvalidInput(f"budget must be positive, got {budget:g}")
    if budget > MAX_BUDGET_USD:
        raise InvalidInput(f"budget ${budget:g} is above the ${MAX_BUDGET_USD:g} limit")
    return float(budget)


def check_permission_mode(mode: str) -> str:
    if mode not in PERMISSION_MODES:
        raise InvalidInput(f"unknown permission mode {mode!r}", hint=f"one of: {', '.join(PERMISSION_MODES)}")
    return mode


def check_tool(tool: str) -> str:
    if not TOOL_RE.match(tool):
        raise InvalidInput(f"invalid tool name {tool!r}")
    return tool


def raw_uuid(ref: str | None) -> str | None:
    """``ref`` if it is a Claude session UUID (which a launch can resume without a record), else None."""
    return ref if ref and UUID_RE.match(ref) else None
