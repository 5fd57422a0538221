"""How much disk a directory takes: ``du -sxB1`` (allocated blocks, each hard-linked file once, symbolic links
not followed, other file systems not entered). coreutils' du is faster than a walk in Python (about 50 ms for a
worktree of 20,000 files here, docs/PERFORMANCE.md), and ``stats`` sizes every worktree."""

from __future__ import annotations

import os

from clawunits import proc
from clawunits.errors import CommandError

DU_TIMEOUT_SEC = 60.0


def usage(path: str) -> int | None:
    """Bytes allocated under ``path``; None when it is not a directory or du cannot tell. Unreadable parts
    count as nothing (du says so and exits 1, but still prints the total it found)."""
    if not os.path.isdir(path) or os.path.islink(path):
        return None
    try:
        done = proc.run(["du", "-sxB1", "--", path], check=False, timeout=DU_TIMEOUT_SEC)
    except CommandError:
        return None
    first = done.stdout.split("\t", 1)[0].strip()
    return int(first) if first.isdigit() else None
