"""``clawunits doctor``: checks what clawunits needs and says how to fix what is wrong."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from clawunits import proc
from clawunits.errors import CommandError, SystemdError
from clawunits.state.config import ConfigError, Settings, config_path, load_settings, state_dir

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def run_checks(env: dict[str, str] | None = None) -> list[Check]:
    """Every check, in the order a person would fix things."""
    env = dict(os.environ if env is None else env)
    try:
        settings: Settings | None = load_settings()
        config = Check("config", OK, f"{config_path()} is valid" if config_path().exists() else "defaults (no file)")
    except ConfigError as e:
        settings, config = None, Check("config", FAIL, e.message, e.hint or f"fix or remove {config_path()}")
    checks: list[Callable[[], Check]] = [
        _user_manager,
        _resource_limits,
        _journald,
        _linger,
        _state_dir,
        _session_files,
        lambda: config,
        lambda: _claude_cli(settings),
        lambda: _credentials(env),
        lambda: _openclaw(settings),
        _gateway_delivery,
        _notifier,
        _parked,
    ]
    return [check() for check in checks]


def _run(argv: list[str], timeout: float = 10) -> proc.Completed | None:
    """The command's outcome (a check reads its exit status), or None when it could not run or hung."""
    try:
        return proc.run(argv, check=False, timeout=timeout)
    except CommandError:
        return None


def _user_manager() -> Check:
    from clawunits.systemd.units import UserManager

    try:
        with UserManager() as m:
            m.list()
        return Check("user manager", OK, "systemd --user answers over D-Bus")
    except SystemdError as e:
        return Check("user manager", FAIL, e.message, e.hint or "")


def _resource_limits() -> Check:
    from clawunits.bootstrap.placement import resource_controllers
    from clawunits.bootstrap.probe import probe

    manager = probe().manager_pid
    if manager is None:
        return Check("resource limits", WARN, "no user manager to ask")
    missing = sorted({"memory", "pids", "cpu"} - resource_controllers(manager))
    if not missing:
        return Check("resource limits", OK, "memory, pids and cpu controllers: MemoryMax, TasksMax, CPUQuota hold")
    return Check(
        "resource limits",
        WARN,
        f"the user manager has no {', '.join(missing)} controller: those session limits are not enforced",
        "delegate them to user@.service (systemctl edit user@.service: [Service] Delegate=memory pids cpu); "
        "where clawunits.bootstrap started the manager: python -m clawunits.bootstrap down, then up",
    )


def _journald() -> Check:
    if not Path("/run/systemd/journal/stdout").exists():
        return Check(
            "journald", FAIL, "no journald socket at /run/systemd/journal/stdout", "python -m clawunits.bootstrap up"
        )
    res = _run(["journalctl", "-q", "-n", "1", "--no-pager", "-o", "cat"])
    if res is None or res.returncode != 0:
        return Check("journald", FAIL, "journalctl cannot read the journal", "add yourself to group systemd-journal")
    return Check("journald", OK, "journald runs and the journal is readable")


def _linger() -> Check:
    user = os.environ.get("USER") or str(os.getuid())
    res = _run(["loginctl", "show-user", user, "-p", "Linger", "--value"])
    if res is None or res.returncode != 0:
        return Check("linger", WARN, "no logind here (container?): the user manager lives as long as it was started")
    if res.stdout.strip() == "yes":
        return Check("linger", OK, "sessions outlive logout")
    return Check("linger", WARN, "sessions stop when you log out", f"loginctl enable-linger {user}")


def _state_dir() -> Check:
    root = state_dir()
    if not root.exists():
        return Check("state", OK, f"{root} will be created on first launch")
    mode = root.stat().st_mode & 0o777
    if mode & 0o077:
        return Check("state", WARN, f"{root} is mode {mode:o}, readable by others", f"chmod 700 {root}")
    return Check("state", OK, f"{root} (mode 700)")


def _session_files() -> Check:
    """Damaged session files (torn, garbage, a wrong type, an unknown status): every command skips them."""
    from clawunits.state.store import Store

    store = Store(state_dir())
    count = len(store.all())
    if store.newer and not store.skipped:
        listed = "; ".join(f"{path} ({why})" for path, why in store.newer.items())
        found = f"{len(store.newer)} session file(s) of a newer clawunits, skipped: {listed}"
        return Check("session files", WARN, found, "upgrade clawunits")
    if not store.skipped:
        return Check("session files", OK, f"{count} session record(s), all readable")
    listed = "; ".join(f"{path} ({why})" for path, why in store.skipped.items())
    moves = " && ".join(f"mv {path} {path}.damaged" for path in store.skipped)
    return Check(
        "session files",
        WARN,
        f"{len(store.skipped)} damaged session file(s), skipped by every command: {listed}",
        f"move them out of the way ({moves}) or delete them",
    )


def _claude_cli(settings: Settings | None) -> Check:
    path = settings.claudePath if settings and settings.claudePath else _bundled_claude()
    if not path or not Path(path).exists():
        return Check("claude cli", FAIL, "no Claude Code executable found", "pip install claude-agent-sdk (bundles it)")
    res = _run([path, "--version"], timeout=30)
    if res is None or res.returncode != 0:
        return Check("claude cli", FAIL, f"{path} --version failed", "reinstall claude-agent-sdk")
    return Check("claude cli", OK, f"{path}: {res.stdout.strip()}")


def _bundled_claude() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(next(iter(spec.submodule_search_locations))) / "_bundled" / "claude")


def _credentials(env: dict[str, str]) -> Check:
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        if env.get(var):
            return Check("credentials", OK, f"{var} is set (sessions launched from this environment get it)")
    creds = Path(env.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude") / ".credentials.json"
    if creds.exists():
        return Check("credentials", OK, f"logged in ({creds})")
    return Check("credentials", FAIL, "no API key and no Claude login", "export ANTHROPIC_API_KEY=... or run: claude")


def _openclaw(settings: Settings | None) -> Check:
    binary = settings.openclawPath if settings else "openclaw"
    found = shutil.which(binary)
    if not found:
        return Check(
            "openclaw",
            WARN,
            f"{binary!r} not found: notifications cannot be delivered",
            "set openclawPath in the config",
        )
    return Check("openclaw", OK, found)


# Messages waiting this long for the gateway mean it is down or its channel hangs.
DELIVERY_LATE_SEC = 60.0


def _gateway_delivery() -> Check:
    """Whether the running gateway takes the notifier's messages, and whether any wait for it too long."""
    from clawunits.notifier.gateway import gateway_state, handover_dir

    where = handover_dir(state_dir())
    g = gateway_state(where)
    waiting = f"{g.queued} message(s) waiting, the oldest for {g.oldest_sec or 0:.0f} s" if g.queued else "none waiting"
    if g.status == "absent":
        return Check("gateway delivery", OK, "no gateway has taken messages here: the openclaw CLI delivers them")
    if g.status == "down":
        return Check(
            "gateway delivery",
            WARN,
            f"the gateway (pid {g.pid}) that took messages is not running; {waiting}",
            f"start the OpenClaw gateway; without the plugin for good, remove {where / 'lease'} (the CLI delivers)",
        )
    if g.queued and (g.oldest_sec or 0) > DELIVERY_LATE_SEC:
        return Check(
            "gateway delivery",
            WARN,
            f"gateway pid {g.pid} runs but a channel is slow or hangs: {waiting}",
            "see the gateway's log ([plugins] clawunits: delivery of … failed)",
        )
    return Check("gateway delivery", OK, f"gateway pid {g.pid} delivers in-process; {waiting}")


def _notifier() -> Check:
    res = _run(["systemctl", "--user", "is-active", "clawunits-notifier.service"])
    state = res.stdout.strip() if res else "unknown"
    if state == "active":
        return Check("notifier", OK, "clawunits-notifier.service is active")
    return Check(
        "notifier",
        WARN,
        f"clawunits-notifier.service is {state}: no notifications",
        "./install.sh, or systemctl --user enable --now clawunits-notifier.service",
    )


def _parked() -> Check:
    """Sessions parked at a usage limit each need their resume timer (a reboot takes transient timers)."""
    from clawunits.state.models import Status
    from clawunits.state.store import Store
    from clawunits.systemd import resume_timer

    parked = [r for r in Store(state_dir()).all() if r.status is Status.LIMITED]
    if not parked:
        return Check("usage limits", OK, "no session parked at a usage limit")
    pattern = resume_timer.PREFIX + "*.timer"
    res = _run(["systemctl", "--user", "list-units", "--all", "--no-legend", "--plain", pattern])
    timers = {line.split()[0] for line in res.stdout.splitlines() if line.strip()} if res else set()
    suffixes = (".timer", resume_timer.RETRY + ".timer")
    missing = [r for r in parked if not {resume_timer.stem(r) + t for t in suffixes} & timers]
    if not missing:
        return Check("usage limits", OK, f"{len(parked)} session(s) parked, each with its resume timer")
    listed = ", ".join(f"{r.name} [{r.id}]" for r in missing)
    return Check(
        "usage limits",
        WARN,
        f"parked at a usage limit without a resume timer: {listed}",
        "clawunits recover --boot (arms the timers again, resumes those whose reset passed), or clawunits unpark "
        + missing[0].name,
    )


def render(checks: list[Check]) -> str:
    marks = {OK: "✅", WARN: "⚠️", FAIL: "❌"}
    lines = []
    for c in checks:
        lines.append(f"{marks[c.status]} {c.name}: {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"   fix: {c.fix}")
    return "\n".join(lines)
