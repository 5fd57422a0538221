#!/usr/bin/env python3
"""P4: many sessions at once. Launch N sessions, then measure each runner's memory and the notifier's idle CPU.

    python bench/bench_concurrency.py [--sessions 50] [--parallel 4] [--idle 30]

1. Launch:  N `clawunits launch --json` calls (``--parallel`` at a time, as several agents would) of multi-turn
            sessions on the stand-in CLI (tests/fake_claude.py); prints the wall time until every launch had
            returned (each returns once its unit runs), then until every session waits for input (each runner
            imports claude-agent-sdk, ~1.4 s of CPU, on a 2-core machine).
2. Memory:  RSS (/proc/PID/status VmRSS) of every runner while all N wait for input: median and max; the
            stand-in CLI it drives is listed apart (the real Claude Code CLI is a separate cost).
3. Idle:    CPU (utime+stime) of the notifier, run as a transient user unit as in production, plus its
            ``journalctl -f`` child, over ``--idle`` seconds while the N sessions wait.

Needs a user manager and journald (python -m clawunits.bootstrap up). Prints figures; it is not a test.
Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from clawunits.bootstrap import boot as bootstrap  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def make_env(tmp: Path, sessions: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLAWUNITS_", "ANTHROPIC_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(bootstrap.user_env())
    config = tmp / "config.toml"
    config.write_text(
        f'claudePath = "{REPO / "tests" / "fake_claude.py"}"\nmaxSessions = {sessions + 10}\n'
        f'openclawPath = "{REPO / "tests" / "openclaw_standin.py"}"\npassEnv = ["PYTHONPATH"]\n'
    )
    env.update(
        {
            "CLAWUNITS_STATE_DIR": str(tmp / "state"),
            "CLAWUNITS_CONFIG": str(config),
            "PYTHONPATH": str(REPO),
            "OPENCLAW_RECORD": str(tmp / "openclaw.jsonl"),
        }
    )
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawunits", *args], env=env, capture_output=True, text=True)


def launch_all(env: dict[str, str], work: Path, n: int, parallel: int) -> tuple[list[dict[str, str]], float]:
    def one(i: int) -> dict[str, str]:
        out = cli(env, "launch", f"bench session {i}", "--name", f"p4-{i}", "--workdir", str(work),
                  "--channel", f"telegram|{1000 + i}", "--json")  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"launch {i} failed: {out.stderr}")
        return json.loads(out.stdout)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        launched = list(pool.map(one, range(n)))
    return launched, time.perf_counter() - t0


def all_waiting(env: dict[str, str], n: int) -> bool:
    data = json.loads(cli(env, "sessions", "--json").stdout)
    return sum(1 for s in data["sessions"] if s["waitingFor"] == "input") >= n


def unit_pids(env: dict[str, str], unit: str) -> list[int]:
    cg = subprocess.run(
        ["systemctl", "--user", "show", "-p", "ControlGroup", "--value", unit], env=env, capture_output=True, text=True
    ).stdout.strip()
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup", "/sys/fs/cgroup/systemd"):
        procs = Path(root, cg.lstrip("/"), "cgroup.procs")
        if cg and procs.exists():
            return [int(p) for p in procs.read_text().split()]
    return []


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_sec(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--idle", type=float, default=30.0)
    args = ap.parse_args()
    bootstrap.ensure_user_manager()
    tmp = Path(tempfile.mkdtemp(prefix="clawunits-bench-p4-"))
    work = tmp / "work"
    work.mkdir()
    env = make_env(tmp, args.sessions)
    notifier = f"clawunits-bench-notifier-{os.getpid()}.service"
    launched: list[dict[str, str]] = []
    try:
        subprocess.run(
            ["systemd-run", "--user", "-q", f"--unit={notifier}", "-p", "KillMode=mixed",
             *(f"--setenv={k}={env[k]}" for k in ("CLAWUNITS_STATE_DIR", "CLAWUNITS_CONFIG", "PYTHONPATH",
                                                    "OPENCLAW_RECORD")),
             sys.executable, "-m", "clawunits", "notifier"],
            env=env, check=True,
        )  # fmt: skip
        t0 = time.perf_counter()
        launched, launch_wall = launch_all(env, work, args.sessions, args.parallel)
        print(f"P4 launch {args.sessions} sessions ({args.parallel} at a time): all launched after {launch_wall:.2f} s")
        while not all_waiting(env, args.sessions):
            time.sleep(0.5)
        print(f"   every session waiting for input after {time.perf_counter() - t0:.2f} s")

        runners, clis = [], []
        for s in launched:
            for pid in unit_pids(env, s["unit"]):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                (runners if b"clawunits.runner" in cmd else clis).append(rss_mb(pid))
        print(
            f"P4 runner RSS, {len(runners)} runners waiting: median {statistics.median(runners):.1f} MB, "
            f"max {max(runners):.1f} MB, total {sum(runners):.0f} MB "
            f"(stand-in CLI: median {statistics.median(clis):.1f} MB)"
        )

        time.sleep(5)  # let the launch notifications drain
        pids = unit_pids(env, notifier)
        before = cpu_sec(pids)
        time.sleep(args.idle)
        used = cpu_sec(pids) - before
        print(f"P4 notifier CPU over {args.idle:.0f} s idle with {args.sessions} sessions waiting: "
              f"{used * 1000:.0f} ms ({used / args.idle * 100:.2f} % of a core)")  # fmt: skip
    finally:
        for s in launched:
            subprocess.run(["systemctl", "--user", "stop", "--no-block", s["unit"]], env=env, capture_output=True)
        subprocess.run(["systemctl", "--user", "stop", notifier], env=env, capture_output=True)
        for s in launched:
            subprocess.run(["systemctl", "--user", "reset-failed", s["unit"]], env=env, capture_output=True)


if __name__ == "__main__":
    main()
