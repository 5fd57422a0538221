"""Settings: built-in defaults, overridden by the TOML config file (same keys as the plugin's config)."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from clawunits.errors import ClawunitsError, InvalidInput
from clawunits.modes import PERMISSION_MODES
from clawunits.plans import EXECUTION_MODES
from clawunits.senders import AGENT_RUN_POLICIES, check_sender
from clawunits.systemd.limits import Limits, parse_cpu_quota, parse_duration, parse_memory, parse_tasks


class ConfigError(ClawunitsError):
    """The config file is unreadable or holds a bad value."""

    exit_code = 2
    code = "config"


def state_dir() -> Path:
    """Where durable state lives: ``$CLAWUNITS_STATE_DIR``, else ``$XDG_STATE_HOME/clawunits``."""
    explicit = os.environ.get("CLAWUNITS_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "clawunits"


def config_path() -> Path:
    """``$CLAWUNITS_CONFIG``, else ``$XDG_CONFIG_HOME/clawunits/config.toml``."""
    explicit = os.environ.get("CLAWUNITS_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "clawunits" / "config.toml"


@dataclass(frozen=True)
class Settings:
    """Every option with its default. Keys in the TOML file use these camelCase names."""

    maxSessions: int = 5
    defaultBudgetUsd: float = 5.0
    defaultModel: str | None = None
    defaultWorkdir: str | None = None
    idleTimeoutMinutes: float = 30
    maxPersistedSessions: int = 50
    fallbackChannel: str | None = None
    agentChannels: dict[str, str] = field(default_factory=dict)
    permissionMode: str = "bypassPermissions"
    maxAutoResponds: int = 10
    skipSafetyChecks: bool = False
    # The Claude Code executable; empty means the CLI bundled with claude-agent-sdk.
    claudePath: str | None = None
    # Extra environment for sessions: fixed values, and names passed through from the caller.
    env: dict[str, str] = field(default_factory=dict)
    passEnv: list[str] = field(default_factory=list)
    # Seconds systemd waits after SIGTERM before SIGKILL; the CLI needs 5 s to flush its transcript.
    stopTimeoutSec: float = 15
    # A permission request (or a plan) nobody answers is denied after this long.
    permissionTimeoutSec: float = 600
    # The permission mode a plan-mode session continues in once its plan is approved.
    planApprovalMode: str = "acceptEdits"
    # A turn with no message from Claude Code for this long while no tool runs is interrupted (watchdog).
    stallTimeoutSec: float = 600
    # The openclaw executable the notifier delivers through when the gateway cannot take a message itself,
    # and where that gateway keeps its state and config (OPENCLAW_STATE_DIR, OPENCLAW_CONFIG_PATH, --profile):
    # the plugin's sync fills in the gateway's own when they are not set.
    openclawPath: str = "openclaw"
    openclawStateDir: str | None = None
    openclawConfigPath: str | None = None
    openclawProfile: str | None = None
    # Per-session resource limits (systemd spellings; "infinity" for none), overridable per launch.
    memoryMax: str = "4G"
    cpuQuota: str = "200%"
    tasksMax: int | str = 1024
    # A safety net, not a schedule: a session still running after this long is stopped and reported failed.
    runtimeMax: int | float | str = "24h"
    # clawunits-recover.service (`clawunits recover --boot`) resumes sessions a shutdown interrupted.
    recoverOnBoot: bool = True
    # Where ``launch --worktree`` creates worktrees (<dir>/<repo>/<session>); empty: <state dir>/worktrees.
    worktreeDir: str | None = None
    # Who may change sessions from a chat besides the gateway's owners (docs/SAFETY.md): channel|account|id.
    allowedSenders: list[str] = field(default_factory=list)
    # The person who launched a session may answer, interrupt and kill it even if no longer allowed.
    launchersAnswerOwnSessions: bool = False
    # Reads (sessions, output, stats) need the same authority as changes, not only the channel's admission.
    restrictReads: bool = False
    # An agent run with no requester (cron, heartbeat, a wake event): "allow" everything, or "read-only".
    agentRunsWithoutRequester: str = "allow"
    # A session launched by a person's chat command wakes no agent (the person is told in the chat); true: it
    # wakes the agent session of that chat too. Sessions an agent's tool launched always wake that agent.
    wakeAgentOnCommandLaunch: bool = False
    # How much a session tells its chat: all, status (one edited status message) or quiet; a session's own
    # (launch --notify, clawunits notify) wins, then notifyPolicyByChannel (a channel string or a channel name).
    notifyPolicy: str = "all"
    notifyPolicyByChannel: dict[str, str] = field(default_factory=dict)
    # A launch beyond maxSessions waits in the launch queue (status queued) and starts by itself when a slot
    # frees; false: it is refused, as before.
    queueLaunches: bool = True


_TYPES: dict[str, tuple[type, ...]] = {
    "maxSessions": (int,),
    "defaultBudgetUsd": (int, float),
    "defaultModel": (str,),
    "defaultWorkdir": (str,),
    "idleTimeoutMinutes": (int, float),
    "maxPersistedSessions": (int,),
    "fallbackChannel": (str,),
    "agentChannels": (dict,),
    "permissionMode": (str,),
    "maxAutoResponds": (int,),
    "skipSafetyChecks": (bool,),
    "claudePath": (str,),
    "env": (dict,),
    "passEnv": (list,),
    "stopTimeoutSec": (int, float),
    "permissionTimeoutSec": (int, float),
    "planApprovalMode": (str,),
    "stallTimeoutSec": (int, float),
    "openclawPath": (str,),
    "openclawStateDir": (str,),
    "openclawConfigPath": (str,),
    "openclawProfile": (str,),
    "memoryMax": (str, int),
    "cpuQuota": (str,),
    "tasksMax": (int, str),
    "runtimeMax": (str, int, float),
    "recoverOnBoot": (bool,),
    "worktreeDir": (str,),
    "allowedSenders": (list,),
    "launchersAnswerOwnSessions": (bool,),
    "restrictReads": (bool,),
    "agentRunsWithoutRequester": (str,),
    "wakeAgentOnCommandLaunch": (bool,),
    "notifyPolicy": (str,),
    "notifyPolicyByChannel": (dict,),
    "queueLaunches": (bool,),
}


# Plugin options that configure the plugin itself, not clawunits.
PLUGIN_ONLY = frozenset({"clawunitsPath", "timeoutMs", "maxOutputBytes"})


def write_settings(raw: dict[str, Any], path: Path | None = None) -> dict[str, Any]:
    """Merge a plugin config into clawunits' config file (atomic, 0600); returns what the file now holds.

    Options the plugin config sets replace the file's. Options it leaves unset keep the value a person wrote in
    the file; those an earlier sync wrote (listed in ``<config>.synced``) go, so they take their default again.
    A file that cannot be read is an error and is left as it is.
    """
    import json

    import tomli_w

    from clawunits.state.store import ensure_private_dir, write_atomically

    options = {k: v for k, v in raw.items() if k not in PLUGIN_ONLY and v is not None}
    settings_from_dict(options, source="plugin config")
    path = path or config_path()
    synced_before = set(_synced_keys(path))
    kept = {k: v for k, v in _read_raw(path).items() if k not in options and k not in synced_before}
    merged = {**kept, **options}
    settings_from_dict(merged, source=f"{path} merged with the plugin config")
    ensure_private_dir(path.parent)
    write_atomically(path, tomli_w.dumps(merged).encode())
    write_atomically(synced_path(path), json.dumps(sorted(options)).encode())
    return merged


def synced_path(path: Path) -> Path:
    """Where the names of the options the plugin's last sync wrote are kept."""
    return path.with_name(path.name + ".synced")


def _synced_keys(path: Path) -> list[str]:
    import json

    try:
        keys = json.loads(synced_path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return []  # damaged: the file's options are kept, which loses nothing a person wrote
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read config {path}: {e}", hint="fix or remove the file") from e


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file if it exists and return validated settings."""
    path = path or config_path()
    return settings_from_dict(_read_raw(path), source=str(path))


def settings_from_dict(raw: dict[str, Any], source: str = "config") -> Settings:
    """Validate a mapping of options (unknown keys and wrong types are errors, not silently ignored)."""
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown option(s): {', '.join(unknown)}", hint=f"known: {', '.join(sorted(known))}"
        )
    for key, value in raw.items():
        types = _TYPES[key]
        if isinstance(value, bool) and bool not in types:
            raise ConfigError(f"{source}: {key} must be {types[0].__name__}, not a boolean")
        if not isinstance(value, types):
            raise ConfigError(f"{source}: {key} must be {types[0].__name__}, got {type(value).__name__}")
    settings = Settings(**raw)
    _check_ranges(settings, source)
    return settings


def _check_ranges(s: Settings, source: str) -> None:
    if s.maxSessions < 1:
        raise ConfigError(f"{source}: maxSessions must be at least 1")
    if not math.isfinite(s.defaultBudgetUsd) or s.defaultBudgetUsd <= 0:
        raise ConfigError(f"{source}: defaultBudgetUsd must be a positive number")
    if s.permissionMode not in PERMISSION_MODES:
        raise ConfigError(f"{source}: permissionMode must be one of {', '.join(PERMISSION_MODES)}")
    if s.planApprovalMode not in EXECUTION_MODES:
        raise ConfigError(f"{source}: planApprovalMode must be one of {', '.join(EXECUTION_MODES)}")
    for key in ("idleTimeoutMinutes", "stopTimeoutSec", "permissionTimeoutSec", "stallTimeoutSec"):
        value = getattr(s, key)
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{source}: {key} must be a positive number")
    for key in ("maxPersistedSessions", "maxAutoResponds"):
        if getattr(s, key) < 0:
            raise ConfigError(f"{source}: {key} must not be negative")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in {**s.env, **s.agentChannels}.items()):
        raise ConfigError(f"{source}: env and agentChannels map strings to strings")
    if s.worktreeDir and not Path(s.worktreeDir).expanduser().is_absolute():
        raise ConfigError(f"{source}: worktreeDir must be an absolute path")
    if not all(isinstance(n, str) for n in s.passEnv):
        raise ConfigError(f"{source}: passEnv is a list of variable names")
    _check_authority(s, source)
    _check_notify(s, source)
    try:
        session_limits(s)
    except InvalidInput as e:
        raise ConfigError(f"{source}: {e.message}", hint=e.hint) from None


def _check_authority(s: Settings, source: str) -> None:
    if s.agentRunsWithoutRequester not in AGENT_RUN_POLICIES:
        raise ConfigError(f"{source}: agentRunsWithoutRequester must be one of {', '.join(AGENT_RUN_POLICIES)}")
    for sender in s.allowedSenders:
        try:
            check_sender(sender)
        except InvalidInput as e:
            raise ConfigError(f"{source}: allowedSenders: {e.message}", hint=e.hint) from None


def _check_notify(s: Settings, source: str) -> None:
    from clawunits.notify_policy import NOTIFY_POLICIES

    by_channel = [(f"notifyPolicyByChannel[{k!r}]", v) for k, v in s.notifyPolicyByChannel.items()]
    for key, value in [("notifyPolicy", s.notifyPolicy), *by_channel]:
        if value not in NOTIFY_POLICIES:
            raise ConfigError(f"{source}: {key} must be one of {', '.join(NOTIFY_POLICIES)}, not {value!r}")


def session_limits(s: Settings) -> Limits:
    """The configured default limits of a session (raises InvalidInput on a bad value)."""
    return Limits(
        memory_max=parse_memory(s.memoryMax, "memoryMax"),
        cpu_quota=parse_cpu_quota(s.cpuQuota, "cpuQuota"),
        tasks_max=parse_tasks(s.tasksMax, "tasksMax"),
        runtime_max_sec=parse_duration(s.runtimeMax, "runtimeMax"),
    )
