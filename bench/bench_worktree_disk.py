#!/usr/bin/env python3
"""Times what `clawunits stats` and `clawunits worktree` pay to size worktrees on disk.

    python bench/bench_worktree_disk.py [--worktrees 3] [--files 20000] [--runs 5]

Builds N directories of F small files each (a worktree with node_modules is tens of thousands) and prints the
median time of clawunits' disk.usage (du -sxB1) per directory, and of a Python os.scandir walk for comparison.
Warm page cache: the second and later runs, as for a person who asks `stats` twice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from clawunits.service import disk  # noqa: E402


def build(root: Path, files: int) -> None:
    for i in range(files):
        d = root / f"pkg{i // 200}"
        d.mkdir(exist_ok=True)
        (d / f"f{i}.js").write_bytes(b"x" * (i % 3000))


def walk(path: str) -> int:
    total, stack = 0, [path]
    while stack:
        for entry in os.scandir(stack.pop()):
            st = entry.stat(follow_symlinks=False)
            total += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return total


def median_ms(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worktrees", type=int, default=3)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for n in range(args.worktrees):
            d = Path(tmp) / f"wt{n}"
            d.mkdir()
            build(d, args.files)
            dirs.append(str(d))
        disk.usage(dirs[0])  # warm the page cache
        du = median_ms(lambda: [disk.usage(d) for d in dirs], args.runs)
        py = median_ms(lambda: [walk(d) for d in dirs], args.runs)
        size = sum(disk.usage(d) or 0 for d in dirs)
        print(f"{args.worktrees} worktrees x {args.files} files ({size / 2**20:.0f} MiB)")
        print(f"  disk.usage (du -sxB1), all: median {du:.0f} ms")
        print(f"  Python scandir walk, all:   median {py:.0f} ms")


if __name__ == "__main__":
    main()
