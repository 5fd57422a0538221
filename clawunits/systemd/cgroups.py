"""Where a process sits in the cgroup hierarchies, read from ``/proc/PID/cgroup``."""

from __future__ import annotations

from pathlib import Path


def cgroup_paths(pid: int | str = "self") -> dict[str, str]:
    """Each hierarchy's cgroup path of ``pid``, keyed by controller: ``memory``, ``pids``, ``cpu`` … for cgroup
    v1 hierarchies (a joint ``cpu,cpuacct`` mount gives both keys), ``name=systemd`` for systemd's own v1
    hierarchy, and ``""`` for the cgroup2 one. Empty when the file cannot be read (the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return {}
    paths: dict[str, str] = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths
