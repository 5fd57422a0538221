"""``python -m clawunits.bootstrap up|down|status [--json] [--uid UID]``: the bootstrap as a command."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from clawunits.bootstrap import boot
from clawunits.bootstrap.boot import ensure_user_manager, probe, teardown, user_env
from clawunits.bootstrap.placement import user_cgroup
from clawunits.bootstrap.probe import Probe
from clawunits.bootstrap.state import Booted, load_state, save_state, state_path
from clawunits.errors import BootstrapError


def _describe_up(after: Probe, booted: Booted) -> list[str]:
    rd = booted.runtime_dir
    lines = [f"created {d}" for d in (*booted.dirs, *booted.trees)]
    if booted.cgroups:
        roots = dict.fromkeys(
            str(Path(c).parents[len(user_cgroup(booted.uid).parts) - 1])
            for c in booted.cgroups
            if c.endswith(f"/user@{booted.uid}.service")
        )
        lines.append(f"created cgroup {user_cgroup(booted.uid)} in {', '.join(roots)}")
    if booted.journald:
        lines.append(f"started journald (pid {booted.journald.pid}, log {booted.journald.log})")
    else:
        lines.append(f"using running journald (pid {after.journald_pid})")
    if booted.manager:
        lines.append(f"started user manager at {rd} (pid {booted.manager.pid}, log {booted.manager.log})")
    else:
        lines.append(f"using running user manager at {rd} (pid {after.manager_pid})")
    return lines


def _describe_status(p: Probe, saved: Booted | None) -> list[str]:
    def yes(ok: bool, text: str) -> str:
        return f"{'ok' if ok else 'MISSING':8}{text}"

    lines = [
        f"{'':8}pid 1 is {'systemd' if p.pid1_systemd else 'not systemd (container mode)'}",
        yes(p.runtime_dir_ok, f"runtime dir {p.runtime_dir} (uid {p.uid}, mode 0700)"),
        yes(p.journald, f"journald {f'(pid {p.journald_pid})' if p.journald else ''}".rstrip()),
        yes(
            p.manager_ready,
            f"user manager: {p.manager_state or 'not reachable'}"
            + (f" (pid {p.manager_pid}, cgroup {p.manager_cgroup})" if p.manager else ""),
        ),
        yes(p.user_bus, f"user bus {p.runtime_dir}/bus"),
    ]
    if saved and not saved.is_empty:
        procs = (("journald", saved.journald), ("manager", saved.manager))
        started = [f"{name} pid {proc.pid}" for name, proc in procs if proc]
        lines.append(f"{'':8}started by clawunits.bootstrap: {', '.join(started) or 'dirs only'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    summary = (boot.__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m clawunits.bootstrap", description=summary)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--uid", type=int, default=None, help="target user (default: the current one)")
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    uid = os.getuid() if args.uid is None else args.uid

    out: dict[str, Any]
    rc = 0
    try:
        if args.command == "up":
            booted = ensure_user_manager(uid, timeout=args.timeout, log_dir=args.log_dir)
            if not booted.is_empty:
                prev = load_state(uid)
                save_state(prev.merged(booted) if prev else booted)
            lines = _describe_up(probe(uid), booted)
            out = {"actions": lines, "booted": dataclasses.asdict(booted), "env": user_env(uid)}
        elif args.command == "down":
            saved = load_state(uid)
            lines = teardown(saved, timeout=args.timeout) if saved else []
            if saved:
                state_path(uid).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    state_path(uid).parent.rmdir()
            else:
                lines = [f"nothing to stop: clawunits.bootstrap started nothing for uid {uid}"]
            out = {"stopped": saved is not None, "actions": lines}
        else:
            p = probe(uid)
            lines = _describe_status(p, load_state(uid))
            rc = 0 if p.usable else 1
            out = {
                "usable": p.usable,
                "missing": p.missing(),
                "probe": dataclasses.asdict(p),
                "env": user_env(uid),
            }
    except (BootstrapError, OSError) as e:
        if isinstance(e, OSError):
            e = BootstrapError(f"{args.command} failed: {e}")
        if args.json:
            print(json.dumps({"error": e.message, "hint": e.hint}))
        else:
            print(f"error: {e.message}", file=sys.stderr)
            if e.hint:
                print(f"hint: {e.hint}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print("\n".join(lines))
    return rc
