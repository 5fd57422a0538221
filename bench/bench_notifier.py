#!/usr/bin/env python3
"""Notifier latency (record in the journal -> ``openclaw message send``) and its CPU use while idle.

    python bench/bench_notifier.py [--sessions 15] [--idle 30]

Runs the real notifier as a transient user unit, as in production, with the recording stand-in ``openclaw``
(tests/openclaw_standin.py) and sessions on the stand-in CLI (tests/fake_claude.py), one at a time so every
notification is measured alone, not behind a queue. Each single-turn session gives two events:

  launched   its ``started`` record  -> the "↩️ [NAME] Launched:" send
  completed  its ``exit`` record     -> the "✅ [NAME] Completed" send

Latency is from the record's journal ``__REALTIME_TIMESTAMP`` (when journald stored it; also shown from the
record's own ``ts``, when the runner wrote it) to the stand-in's ``t``, which it takes once Python has
started it: the stand-in's own start-up (measured alone, printed as a baseline) is part of every figure.
Idle CPU is utime+stime of the notifier and its ``journalctl -f`` child over ``--idle`` seconds
(/proc/PID/stat); it follows every stdout line of the user's units, so other activity on the machine counts.
Needs a user manager and journald (python -m clawunits.bootstrap up). Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from clawunits.bootstrap import boot as bootstrap  # noqa: E402
from clawunits.state.models import parse_ts  # noqa: E402

STANDIN = REPO / "tests" / "openclaw_standin.py"
FAKE_CLAUDE = REPO / "tests" / "fake_claude.py"
CLI = [sys.executable, "-m", "clawunits"]


def make_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWUNITS_", "ANTHROPIC_", "OPENCLAW_"))}
    env.update(bootstrap.user_env())
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "openclaw").symlink_to(STANDIN)
    config = tmp / "config.toml"
    config.write_text(f'claudePath = "{FAKE_CLAUDE}"\nopenclawPath = "{bin_dir / "openclaw"}"\nmaxSessions = 100\n')
    env.update(
        {
            "CLAWUNITS_STATE_DIR": str(tmp / "state"),
            "CLAWUNITS_CONFIG": str(config),
            "OPENCLAW_RECORD": str(tmp / "record.jsonl"),
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def start_notifier(env: dict[str, str], unit: str) -> None:
    keep = ("CLAWUNITS_STATE_DIR", "CLAWUNITS_CONFIG", "OPENCLAW_RECORD", "PYTHONPATH")
    setenv = [f"--setenv={k}={env[k]}" for k in keep]
    setenv.append(f"--setenv=PATH={Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    subprocess.run(
        ["systemd-run", "--user", "-q", "--collect", f"--unit={unit}", *setenv, *CLI, "notifier"],
        env=env,
        check=True,
    )


def sends(record: Path) -> list[dict]:
    try:
        lines = record.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def wait_for(predicate, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError


def journal_records(env: dict[str, str], unit: str) -> list[tuple[dict, float, str]]:
    out = subprocess.run(
        [
            "journalctl",
            "-q",
            "--no-pager",
            f"SYSLOG_IDENTIFIER={unit.removesuffix('.service')}",
            "-o",
            "json",
            "--output-fields=MESSAGE",
        ],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    found = []
    for line in out.splitlines():
        entry = json.loads(line)
        try:
            found.append((json.loads(entry["MESSAGE"]), int(entry["__REALTIME_TIMESTAMP"]) / 1e6, entry["__CURSOR"]))
        except (ValueError, TypeError, KeyError):
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def unit_pids(env: dict[str, str], unit: str) -> list[int]:
    cgroup = subprocess.run(
        ["systemctl", "--user", "show", "-p", "ControlGroup", "--value", unit], env=env, capture_output=True, text=True
    ).stdout.strip()
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup", "/sys/fs/cgroup/systemd"):
        procs = Path(root) / cgroup.lstrip("/") / "cgroup.procs"
        if cgroup and procs.exists():
            return [int(p) for p in procs.read_text().split()]
    return []


def summary(label: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(f"{label:<58} median {statistics.median(ms):6.0f} ms  p90 {p90:6.0f} ms  max {ms[-1]:6.0f} ms  (n={len(ms)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=15)
    ap.add_argument("--idle", type=float, default=30.0)
    args = ap.parse_args()
    booted = bootstrap.ensure_user_manager()
    unit = f"cu-bench-notifier-{os.getpid()}.service"
    units: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="clawunits-bench-notifier-") as tmp_s:
            tmp = Path(tmp_s)
            env, work = make_env(tmp), tmp / "work"
            work.mkdir()
            record = Path(env["OPENCLAW_RECORD"])

            # The stand-in's own start-up, part of every latency below.
            base = []
            # With the notifier unit's PATH, so `#!/usr/bin/env python3` finds the same interpreter.
            path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
            probe_env = {**env, "OPENCLAW_RECORD": str(tmp / "probe.jsonl"), "PATH": path}
            for _ in range(10):
                t0 = time.time()
                subprocess.run([str(tmp / "bin" / "openclaw"), "message", "send"], env=probe_env, check=True)
                base.append(sends(Path(probe_env["OPENCLAW_RECORD"]))[-1]["t"] - t0)

            # Baseline: a bare `journalctl -f` on the same entries, noting when each line reaches it.
            arrivals: dict[str, float] = {}
            follower = subprocess.Popen(
                [
                    "journalctl",
                    "-f",
                    "-q",
                    "-a",
                    "--no-pager",
                    "-o",
                    "json",
                    "--output-fields=MESSAGE",
                    f"_UID={os.getuid()}",
                    "_TRANSPORT=stdout",
                    "--lines=0",
                ],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )

            def follow() -> None:
                assert follower.stdout is not None
                for line in follower.stdout:
                    arrivals.setdefault(json.loads(line)["__CURSOR"], time.time())

            threading.Thread(target=follow, daemon=True).start()
            start_notifier(env, unit)
            wait_for(lambda: (tmp / "state" / "notifier" / "since").exists())
            from_journal: list[float] = []
            from_ts: list[float] = []
            to_follower: list[float] = []
            after_follower: list[float] = []
            for i in range(args.sessions):
                name = f"bench-{i}"
                out = subprocess.run(
                    [
                        *CLI,
                        "launch",
                        f"bench {i}",
                        "--name",
                        name,
                        "--workdir",
                        str(work),
                        "--multi-turn-disabled",
                        "--channel",
                        "telegram|1",
                        "--json",
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                s = json.loads(out.stdout)
                units.append(s["unit"])
                done = wait_for(lambda n=name: [c for c in sends(record) if f"✅ [{n}] Completed" in c["argv"][-1]])
                launched = next(c for c in sends(record) if f"↩️ [{name}] Launched:" in c["argv"][-1])
                recs = {r["type"]: (r, t, c) for r, t, c in journal_records(env, s["unit"])}
                for kind, call in (("started", launched), ("exit", done[0])):
                    rec, stored, cursor = recs[kind]
                    from_journal.append(call["t"] - stored)
                    from_ts.append(call["t"] - parse_ts(rec["ts"]).timestamp())
                    if cursor in arrivals:
                        to_follower.append(arrivals[cursor] - stored)
                        after_follower.append(call["t"] - arrivals[cursor])
                time.sleep(0.3)

            print(f"notifier latency over {len(from_journal)} events ({args.sessions} sessions, one at a time):")
            summary("  stand-in openclaw start-up alone (baseline)", base)
            summary("  journal __REALTIME_TIMESTAMP -> openclaw send", from_journal)
            summary("  record ts (runner wrote it) -> openclaw send", from_ts)
            summary("  journal -> a bare `journalctl -f` (baseline)", to_follower)
            summary("  that bare follower -> openclaw send (notifier's share)", after_follower)
            follower.terminate()

            # Idle: no session runs; wait for the notifier's queues to empty, then measure.
            time.sleep(3)
            pids = unit_pids(env, unit)
            c0, t0 = [cpu_seconds([p]) for p in pids], time.monotonic()
            time.sleep(args.idle)
            c1, t1 = [cpu_seconds([p]) for p in pids], time.monotonic()
            total = sum(c1) - sum(c0)
            parts = ", ".join(
                f"{Path(f'/proc/{p}/comm').read_text().strip()} {(b - a) * 1000:.0f} ms"
                for p, a, b in zip(pids, c0, c1, strict=True)
            )
            print(
                f"idle CPU over {t1 - t0:.0f} s: {total * 1000:.0f} ms = {total / (t1 - t0) * 100:.2f}% of one core"
                f" ({parts})"
            )
    finally:
        for u in [unit, *units]:
            subprocess.run(["systemctl", "--user", "stop", u], capture_output=True)
            subprocess.run(["systemctl", "--user", "reset-failed", u], capture_output=True)
        bootstrap.teardown(booted)


if __name__ == "__main__":
    main()
