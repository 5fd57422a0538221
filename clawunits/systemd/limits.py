"""Per-session resource limits: parsed from config and launch options, applied as systemd unit properties.

Values use systemd's own spellings so a user can compare them with ``systemctl --user show``: sizes like
``512M`` or ``4G`` (MemoryMax=), a CPU share like ``150%`` (CPUQuota=), a task count (TasksMax=), a duration
like ``90m`` or ``24h`` (RuntimeMaxSec=), and ``infinity`` for no limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clawunits.errors import InvalidInput
from clawunits.systemd.cgroups import cgroup_paths

# The slice every session unit runs in (units/clawunits.slice); `systemctl --user status clawunits.slice`.
SESSION_SLICE = "clawunits.slice"
UNLIMITED = "infinity"
# systemd's "no limit" for uint64 properties.
_INFINITY = 2**64 - 1
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$", re.I)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_TIME_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?$")
_TIME_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
# Below these a session cannot even start Claude Code (node alone needs ~150 MB); a typo, not a choice.
MIN_MEMORY = 64 * 1024**2
MIN_TASKS = 16
MIN_RUNTIME_SEC = 1.0


@dataclass(frozen=True)
class Limits:
    """A session's limits; None means unlimited. Stored in the session record, applied to its unit."""

    memory_max: int | None = None  # bytes
    cpu_quota: float | None = None  # percent of one CPU
    tasks_max: int | None = None
    runtime_max_sec: float | None = None

    def unit_properties(self) -> dict[str, Any]:
        """D-Bus properties for StartTransientUnit (systemd maps MemoryMax to memory.limit_in_bytes on v1)."""
        return {
            "MemoryMax": self.memory_max if self.memory_max is not None else _INFINITY,
            # An unset quota is "infinity", as systemd reports it.
            "CPUQuotaPerSecUSec": int(self.cpu_quota * 10_000) if self.cpu_quota is not None else _INFINITY,
            "TasksMax": self.tasks_max if self.tasks_max is not None else _INFINITY,
            "RuntimeMaxUSec": int(self.runtime_max_sec * 1_000_000) if self.runtime_max_sec is not None else _INFINITY,
            # The whole unit goes when the kernel kills one of its processes for memory (cgroup v2 hosts).
            "OOMPolicy": "stop",
        }

    def describe(self) -> str:
        return ", ".join(
            f"{k}={v}"
            for k, v in (
                ("MemoryMax", format_size(self.memory_max)),
                ("CPUQuota", f"{self.cpu_quota:g}%" if self.cpu_quota is not None else UNLIMITED),
                ("TasksMax", self.tasks_max if self.tasks_max is not None else UNLIMITED),
                ("RuntimeMaxSec", format_duration(self.runtime_max_sec)),
            )
        )


def parse_memory(value: str | int | float, what: str = "memory limit") -> int | None:
    """``4G``, ``512M``, ``1073741824`` or ``infinity`` -> bytes (None for no limit)."""
    text = str(value).strip()
    if text.lower() == UNLIMITED:
        return None
    m = _SIZE_RE.match(text)
    if not m or isinstance(value, bool):
        raise InvalidInput(f"{what} {text!r} is not a size", hint="use e.g. 512M, 4G or infinity")
    size = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()])
    if size < MIN_MEMORY:
        raise InvalidInput(f"{what} {text!r} is below {format_size(MIN_MEMORY)}: Claude Code cannot run in it")
    return size


def parse_cpu_quota(value: str | int | float, what: str = "CPU quota") -> float | None:
    """``150%`` (1.5 CPUs) or ``infinity`` -> percent (None for no limit)."""
    text = str(value).strip()
    if text.lower() == UNLIMITED:
        return None
    number = text[:-1] if text.endswith("%") else ""
    try:
        percent = float(number)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a percentage", hint="use e.g. 50%, 200% or infinity") from None
    if not math.isfinite(percent) or percent < 1 or percent > 100_000:
        raise InvalidInput(f"{what} {text!r} must be between 1% and 100000%")
    return percent


def parse_tasks(value: str | int, what: str = "task limit") -> int | None:
    """A process/thread count or ``infinity`` (None for no limit)."""
    text = str(value).strip()
    if text.lower() == UNLIMITED:
        return None
    if isinstance(value, bool) or not text.isdigit():
        raise InvalidInput(f"{what} {text!r} is not a whole number", hint="use e.g. 512 or infinity")
    tasks = int(text)
    if tasks < MIN_TASKS:
        raise InvalidInput(f"{what} {tasks} is below {MIN_TASKS}: Claude Code cannot run with so few tasks")
    return tasks


def parse_duration(value: str | int | float, what: str = "runtime limit") -> float | None:
    """``3600``, ``90m``, ``24h``, ``2d`` or ``infinity`` -> seconds (None for no limit)."""
    text = str(value).strip()
    if text.lower() == UNLIMITED:
        return None
    m = _TIME_RE.match(text)
    if not m or isinstance(value, bool):
        raise InvalidInput(f"{what} {text!r} is not a duration", hint="use e.g. 3600, 90m, 24h or infinity")
    seconds = float(m.group(1)) * _TIME_UNITS[m.group(2)]
    if seconds < MIN_RUNTIME_SEC:
        raise InvalidInput(f"{what} {text!r} is under a second")
    return seconds


def format_size(size: int | None) -> str:
    if size is None:
        return UNLIMITED
    for unit in ("T", "G", "M", "K"):
        if size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return str(size)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return UNLIMITED
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % n == 0:
            return f"{int(seconds // n)}{unit}"
    return f"{seconds:g}s"


# ------------------------------------------------------------------------------------- out-of-memory kills


def oom_kill_counter() -> Path | None:
    """The file counting this process's cgroup's OOM kills: memory.events (cgroup v2) or memory.oom_control
    (v1 memory controller on hybrid hosts). None when no memory controller manages it."""
    paths = cgroup_paths()
    candidates = []
    if "memory" in paths:
        candidates.append(Path("/sys/fs/cgroup/memory", paths["memory"].lstrip("/"), "memory.oom_control"))
    if "" in paths:
        for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            candidates.append(Path(root, paths[""].lstrip("/"), "memory.events"))
    return next((c for c in candidates if c.exists()), None)


def read_oom_kills(counter: Path) -> int:
    """The ``oom_kill`` count in memory.events / memory.oom_control (0 when unreadable)."""
    try:
        for line in counter.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
