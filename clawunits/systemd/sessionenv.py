"""The environment a session unit gets: an allow-list of the caller's variables plus configured extras.

A launch from a shell behaves like ``claude`` run in that shell (its Claude and Anthropic settings, PATH,
HOME), while nothing else of the caller's environment leaks into the unit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from clawunits.state.config import Settings

# Prefixes and names that configure Claude Code, its provider, and the process basics.
PASS_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "CLAWUNITS_", "AWS_", "VERTEX_", "LC_", "DISABLE_")
PASS_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "IS_SANDBOX",
        "DISABLE_TELEMETRY",
        "DISABLE_ERROR_REPORTING",
        "DISABLE_AUTOUPDATER",
        "DISABLE_BUG_COMMAND",
        "DISABLE_COST_WARNINGS",
        "DISABLE_NON_ESSENTIAL_MODEL_CALLS",
        "DISABLE_PROMPT_CACHING",
        "MAX_THINKING_TOKENS",
        "BASH_DEFAULT_TIMEOUT_MS",
        "BASH_MAX_TIMEOUT_MS",
        "MCP_TIMEOUT",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "GOOGLE_APPLICATION_CREDENTIALS",
    }
)
# Set by a Claude Code process around us; passing it on would make the session think it is nested.
NEVER_PASS = frozenset({"CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAWUNITS_STATE_DIR"})
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def wanted(name: str, extra_names: frozenset[str]) -> bool:
    if name in NEVER_PASS or not _NAME_RE.match(name):
        return False
    return name in PASS_NAMES or name in extra_names or name.startswith(PASS_PREFIXES)


def session_environment(caller: Mapping[str, str], settings: Settings, fixed: Mapping[str, str]) -> dict[str, str]:
    """The unit's environment: allowed caller variables, then ``settings.env``, then clawunits' ``fixed``."""
    extra_names = frozenset(settings.passEnv)
    env = {k: v for k, v in caller.items() if wanted(k, extra_names) and "\0" not in v}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(settings.env)
    env.update(fixed)
    return env
