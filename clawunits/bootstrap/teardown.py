"""Undoing a boot: stop what it started, remove what it created, and touch nothing else."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

from clawunits.bootstrap.daemons import stop
from clawunits.bootstrap.placement import cgroup_pids
from clawunits.bootstrap.state import Booted


def teardown(booted: Booted, timeout: float = 15.0) -> list[str]:
    """Undo :func:`ensure_user_manager`: stop the manager, then journald, then remove what it created.

    Touches only what ``booted`` lists; cgroups and dirs that are not empty are kept. Returns what it did.
    """
    done: list[str] = []
    if booted.manager:
        done.append(f"user manager (pid {booted.manager.pid}): {stop(booted.manager, timeout)}")
        # Units the manager failed to stop, in the cgroup subtree we created for it.
        leaves = [c for c in booted.cgroups if c.endswith(f"/user@{booted.uid}.service")]
        for pid in set().union(*(cgroup_pids(Path(c)) for c in leaves)) - {os.getpid()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                done.append(f"killed leftover pid {pid}")
    if booted.journald:
        done.append(f"journald (pid {booted.journald.pid}): {stop(booted.journald, timeout)}")
    for cg in reversed(booted.cgroups):
        remove_cgroup(Path(cg), done)
    for tree in reversed(booted.trees):
        if Path(tree).exists():
            shutil.rmtree(tree, ignore_errors=True)
            done.append(f"removed {tree}" if not Path(tree).exists() else f"kept {tree} (could not remove)")
    for d in reversed(booted.dirs):
        _remove_dir(Path(d), done)
    return done


def remove_cgroup(top: Path, done: list[str]) -> None:
    """rmdir a cgroup bottom-up; children the manager left behind are ours too. Busy ones are kept."""
    if not top.exists():
        return
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
    done.append(f"kept cgroup {top} (not empty)" if top.exists() else f"removed cgroup {top}")


def _remove_dir(path: Path, done: list[str]) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        return
    except OSError as e:
        done.append(f"kept {path} ({e.strerror.lower() if e.strerror else 'not removable'})")
        return
    done.append(f"removed {path}")
