"""Reaping: the processes a finished session left in its unit's cgroup are terminated."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from clawunits.systemd.cgroups import cgroup_paths


def reap_strays(grace: float = 2.0) -> int:
    """Terminate processes the session left in this unit's cgroup (e.g. ``sleep 600 &``); returns their count.

    A finished unit stays loaded (RemainAfterExit) so its result can be read, and systemd would let its
    leftover processes live on; the session is over, so they go.
    """
    procs = _cgroup_procs_file()
    if procs is None:
        return 0
    me = os.getpid()

    def others() -> list[int]:
        try:
            return [int(p) for p in procs.read_text().split() if int(p) != me]
        except OSError:
            return []

    strays = others()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in others():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while others() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not others():
            break
    return len(strays)


def _cgroup_procs_file() -> Path | None:
    paths = cgroup_paths()
    candidates = []
    if "" in paths:  # the cgroup2 hierarchy, mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified
        rel = paths[""].lstrip("/")
        candidates += [Path("/sys/fs/cgroup/unified") / rel, Path("/sys/fs/cgroup") / rel]
    if "name=systemd" in paths:
        candidates.append(Path("/sys/fs/cgroup/systemd") / paths["name=systemd"].lstrip("/"))
    for base in candidates:
        # Only ever reap inside a session unit's own cgroup, never a shared one.
        if base.name.startswith("clawunits-") and (base / "cgroup.procs").exists():
            return base / "cgroup.procs"
    return None
