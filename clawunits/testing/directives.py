"""The scripted API's directives (``[[text: …]]``, ``[[bash: …]]``, …) and the reply plan they make."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

INPUT_TOKENS = 100
OUTPUT_TOKENS = 10
SLOW_DELTAS = 20
ASK_TEXT = "I can do A or B. Which option do you prefer?"
INTERRUPTED_MARKER = "[Request interrupted by user"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
KNOWN = ("text", "bash2", "bash", "tool", "slow", "long", "ask", "error", "plan", "limit")
# The usage windows `[[limit: …]]` knows, with the abbreviation Claude Code reads in per-window header names.
WINDOWS = {"five_hour": "5h", "seven_day": "7d"}
PLAN_TOOL = "ExitPlanMode"
# Where Claude Code's plan-mode reminder says the plan file is (new, existing, or after plan mode).
PLAN_FILE = re.compile(r"(?:create your plan at|plan file already exists at|plan file is located at) (/\S+?\.md)\b")

_DIRECTIVE_START = re.compile(r"\[\[\s*(" + "|".join(KNOWN) + r")\s*(?::|(?=\]\]))", re.IGNORECASE)
REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|$)", re.DOTALL)
_WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
)


@dataclass
class Plan:
    """What to answer to one request."""

    text: str | None = None
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    slow: float = 0.0
    error_status: int | None = None
    error_mode: str = ""  # "" (no retry), "retry" (CLI may retry, all fail) or "once" (first attempt fails)
    key: str = ""  # identifies the prompt, for "once"
    # `[[limit: …]]`: "warning" (a reply with the warning headers) or "rejected" (the usage window is exhausted
    # from now on for `limit_seconds`), the window, and the utilization (warning).
    limit: str | None = None
    limit_window: str = "five_hour"
    limit_value: float = 0.0

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tools else "end_turn"


def find_directives(text: str) -> list[tuple[str, str]]:
    """Return ``(name, argument)`` for each directive in ``text``, in order; names are lower case.

    An argument runs to the first ``]]``, except for ``tool`` whose JSON object is parsed whole (so it may
    itself contain ``]]``).
    """
    found: list[tuple[str, str]] = []
    pos = 0
    while (m := _DIRECTIVE_START.search(text, pos)) is not None:
        name = m.group(1).lower()
        start = m.end()
        if name == "tool":
            arg, end = _scan_tool(text, start)
        else:
            close = text.find("]]", start)
            if close < 0:
                break
            arg, end = text[start:close].strip(), close + 2
        if end < 0:
            pos = start
            continue
        found.append((name, arg))
        pos = end
    return found


def _scan_tool(text: str, start: int) -> tuple[str, int]:
    """Scan ``NAME {json}]]`` from ``start``; return the raw argument and the index after ``]]`` (or -1)."""
    brace = text.find("{", start)
    close = text.find("]]", start)
    if brace < 0 or (0 <= close < brace):
        return (text[start:close].strip(), close + 2) if close >= 0 else ("", -1)
    try:
        _, json_end = json.JSONDecoder().raw_decode(text, brace)
    except json.JSONDecodeError:
        return (text[start:close].strip(), close + 2) if close >= 0 else ("", -1)
    close = text.find("]]", json_end)
    if close < 0 or text[json_end:close].strip():
        return "", -1
    return text[start:json_end].strip(), close + 2


def parse_tool_arg(arg: str) -> tuple[str, dict[str, Any]]:
    """Split ``NAME {json}`` into the tool name and its input (``{}`` when absent or not an object)."""
    name, _, rest = arg.strip().partition(" ")
    rest = rest.strip()
    if "{" in name:  # "Name{...}" with no space
        name, _, tail = name.partition("{")
        rest = "{" + tail + (" " + rest if rest else "")
    try:
        data = json.loads(rest) if rest else {}
    except json.JSONDecodeError:
        data = {}
    return name or "Tool", data if isinstance(data, dict) else {"value": data}


def long_text(n: int) -> str:
    """A deterministic text of exactly ``n`` characters: NATO words, eight to a line."""
    parts: list[str] = []
    size = 0
    i = 0
    while size < n:
        word = _WORDS[i % len(_WORDS)]
        sep = "\n" if i % 8 == 7 else " "
        parts.append(word + sep)
        size += len(word) + 1
        i += 1
    return "".join(parts)[:n]


def bash_input(command: str) -> dict[str, Any]:
    return {"command": command, "description": "scripted"}


def plan_from_directives(directives: list[tuple[str, str]], prompt: str) -> Plan:
    """Turn the directives of one prompt into a plan for its first reply."""
    plan = Plan()
    text: str | None = None
    long_n: int | None = None
    ask = False
    for name, arg in directives:
        if name == "text":
            text = arg
        elif name == "bash":
            plan.tools.append(("Bash", bash_input(arg)))
        elif name == "bash2":
            plan.tools.append(("Bash", bash_input(split_bash2(arg)[0])))
        elif name == "tool":
            plan.tools.append(parse_tool_arg(arg))
        elif name == "slow":
            plan.slow = _number(arg, 0.0)
        elif name == "long":
            long_n = max(0, int(_number(arg, 0)))
        elif name == "ask":
            ask = True
        elif name == "plan":
            continue  # played by plan_mode_reply
        elif name == "limit":
            _limit(plan, arg)
        elif name == "error":
            plan.error_status = int(_number(arg, 500))
            plan.error_mode = next((w for w in arg.lower().split()[1:] if w in ("retry", "once")), "")
    if text is not None:
        plan.text = text
    elif long_n is not None:
        plan.text = long_text(long_n)
    elif ask:
        plan.text = ASK_TEXT
    elif not plan.tools:
        plan.text = "Scripted reply: " + prompt[:80]
    return plan


def split_bash2(arg: str) -> tuple[str, str]:
    first, sep, second = arg.partition(";;")
    return (first.strip(), second.strip()) if sep else (arg, arg)


def _number(arg: str, default: float) -> float:
    try:
        return float(arg.split()[0])
    except (ValueError, IndexError):
        return default


def _limit(plan: Plan, arg: str) -> None:
    """``warning WINDOW UTILIZATION`` or ``rejected WINDOW SECONDS`` (defaults: five_hour, 0.91 / 5 s)."""
    words = arg.lower().split()
    kind = words[0] if words else "rejected"
    plan.limit = "warning" if kind.startswith("warn") else "rejected"
    if len(words) > 1 and words[1] in WINDOWS:
        plan.limit_window = words[1]
    default = 0.91 if plan.limit == "warning" else 5.0
    plan.limit_value = _number(" ".join(words[2:]), default) if len(words) > 2 else default
