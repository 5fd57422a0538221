"""How much disk a directory takes, as ``du`` counts it: allocated blocks, each hard-linked file once, symbolic
links not followed, other file systems not entered (a worktree's build may mount or link anything)."""

from __future__ import annotations

import os


def usage(path: str) -> int | None:
    """Bytes allocated under ``path``; None when it is not a directory. Unreadable parts count as nothing."""
    try:
        top = os.lstat(path)
    except OSError:
        return None
    if not os.path.isdir(path) or os.path.islink(path):
        return None
    seen: set[tuple[int, int]] = set()
    total = top.st_blocks * 512
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_dev != top.st_dev:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return total
