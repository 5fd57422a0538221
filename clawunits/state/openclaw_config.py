"""Reading OpenClaw's own configuration (``openclaw.json``, JSON5) for the pre-launch guards.

Where it lives, as OpenClaw resolves it: ``$OPENCLAW_CONFIG_PATH``, else ``$OPENCLAW_STATE_DIR/openclaw.json``,
else ``<home>/.openclaw/openclaw.json`` where ``<home>`` is ``$OPENCLAW_HOME`` or the user's home.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clawunits.errors import ClawunitsError

PLUGIN_ID = "clawunits"


class OpenClawConfigError(ClawunitsError):
    exit_code = 2
    code = "openclaw-config"


def _set(value: str | None) -> str | None:
    return value if value and value.strip() and value not in ("undefined", "null") else None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = Path(_set(env.get("OPENCLAW_HOME")) or env.get("HOME") or Path.home()).expanduser()

    def user_path(p: str) -> Path:
        return home / p[2:] if p.startswith("~/") else Path(p)

    if explicit := _set(env.get("OPENCLAW_CONFIG_PATH")):
        return user_path(explicit)
    if state := _set(env.get("OPENCLAW_STATE_DIR")):
        return user_path(state) / "openclaw.json"
    return home / ".openclaw" / "openclaw.json"


def load(path: Path) -> dict[str, Any]:
    """The config as a dict ({} when the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise OpenClawConfigError(f"cannot read OpenClaw config {path}: {e.strerror}") from e
    try:
        data = loads_json5(text)
    except ValueError as e:
        raise OpenClawConfigError(f"OpenClaw config {path} is not valid JSON5: {e}") from e
    return data if isinstance(data, dict) else {}


_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)(?=\s*:)
  | (?P<other>.)
    """,
    re.S | re.X,
)


def loads_json5(text: str) -> Any:
    """The JSON5 that OpenClaw's config uses: comments, trailing commas, unquoted keys, single quotes."""
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        kind, tok = m.lastgroup, m.group()
        if kind == "comment":
            out.append(" ")
            continue
        if kind == "string" and tok.startswith("'"):
            tok = json.dumps(tok[1:-1].replace("\\'", "'"))
        elif kind == "ident":
            tok = json.dumps(tok)
        elif tok in ("}", "]"):
            last = len(out) - 1
            while last >= 0 and out[last].isspace():
                last -= 1
            if last >= 0 and out[last] == ",":
                out[last] = " "  # a trailing comma
        out.append(tok)
    return json.loads("".join(out))
