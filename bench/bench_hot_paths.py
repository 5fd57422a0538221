#!/usr/bin/env python3
"""Times the CLI's hot paths against their systemd/journald baselines and prints medians.

    python bench/bench_hot_paths.py [--runs 20] [--records 100000]

P1  `clawunits launch --json` until the unit runs, vs `systemd-run --user --no-block true` and `python3 -c pass`
P2  `clawunits output --lines 50` on a session of N records, vs `journalctl --user-unit U -n 50 -o cat`
P6  `clawunits --help`

Needs a running user manager and journald (python -m clawunits.bootstrap up). Sessions use the stand-in
CLI (tests/fake_claude.py), so no API is involved; the big session's records are printed at a pace below
journald's per-user rate limit (37,500 lines / 30 s here), so building it takes a while.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from clawunits import records  # noqa: E402
from clawunits.bootstrap import boot as bootstrap  # noqa: E402

PACE_LINES_PER_SEC = 1000
# Prints N records (two text, one tool_use) at a steady pace: python emit.py REPO N LINES_PER_SEC
EMITTER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from clawunits.records import RecordWriter
n, pace = int(sys.argv[2]), int(sys.argv[3])
w, t0 = RecordWriter(), time.monotonic()
for i in range(n):
    w.emit("text" if i % 3 else "tool_use", text=f"line {i} " * 4, tool="Bash", summary=f"cmd {i}")
    if i % 100 == 99:
        time.sleep(max(0.0, t0 + (i + 1) / pace - time.monotonic()))
"""


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, list[float]]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), samples


def report(label: str, median: float, baseline: float | None = None, goal: str = "") -> None:
    ratio = f"  ({median / baseline:.1f}x baseline)" if baseline else ""
    print(f"{label:<58} median {median:7.1f} ms{ratio}{'  goal ' + goal if goal else ''}", flush=True)


def make_env(tmp: Path) -> dict[str, str]:
    # Like a user's shell: bytecode caching on (some CI images set PYTHONDONTWRITEBYTECODE).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLAWUNITS_", "ANTHROPIC_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(bootstrap.user_env())
    config = tmp / "config.toml"
    config.write_text(f'claudePath = "{REPO / "tests" / "fake_claude.py"}"\nmaxSessions = 1000\n')
    env.update({"CLAWUNITS_STATE_DIR": str(tmp / "state"), "CLAWUNITS_CONFIG": str(config)})
    return env


def bench_launch(env: dict[str, str], work: Path, runs: int) -> list[str]:
    cli = [sys.executable, "-m", "clawunits"]
    py, _ = timed([sys.executable, "-c", "pass"], env, runs)
    sysrun, _ = timed(["systemd-run", "--user", "--no-block", "--collect", "-q", "true"], env, runs)
    units, samples = [], []
    for i in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run(
            [*cli, "launch", f"[[fake: sleep 0]] bench {i}", "--workdir", str(work), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append((time.perf_counter() - t0) * 1000)
        launched = json.loads(out.stdout)
        units.append(launched["unit"])
        # Let the runner finish starting (it imports the SDK: ~1.4 s of CPU) so launches are timed alone.
        subprocess.run([*cli, "wait", launched["id"], "--timeout", "60"], env=env, capture_output=True)
    report("python3 -c pass", py)
    report("systemd-run --user --no-block true", sysrun)
    report("P1 clawunits launch --json (unit running)", statistics.median(samples), sysrun, "<= 60 ms")
    return units


def build_big_session(env: dict[str, str], work: Path, n: int) -> str:
    """A unit whose output is n records, printed below the journald rate limit."""
    unit = f"clawunits-bench-big-{os.getpid()}.service"
    script = work / "emit.py"
    script.write_text(EMITTER)
    subprocess.run(
        [
            *("systemd-run", "--user", "-q", f"--unit={unit}", "-p", "RemainAfterExit=yes"),
            *(sys.executable, str(script), str(REPO), str(n), str(PACE_LINES_PER_SEC)),
        ],
        env=env,
        check=True,
    )
    print(f"building a session of {n} records in {unit} (~{n / PACE_LINES_PER_SEC:.0f} s) ...", flush=True)
    while True:
        time.sleep(2)
        state = subprocess.run(
            ["systemctl", "--user", "show", "-p", "SubState", "--value", unit], env=env, capture_output=True, text=True
        ).stdout.strip()
        if state != "running":
            break
    time.sleep(1)
    return unit


def register_session(env: dict[str, str], work: Path, unit: str) -> str:
    """A store record pointing at the big unit, so `clawunits output` can find it."""
    from clawunits.state.models import SessionRecord, Status
    from clawunits.state.store import Store

    store = Store(Path(env["CLAWUNITS_STATE_DIR"]))
    rec = SessionRecord(
        id="bigbig00",
        name="big",
        prompt="bench",
        workdir=str(work),
        unit=unit,
        created_at=records.utc_now_iso(),
        status=Status.COMPLETED,
        completed_at=records.utc_now_iso(),
    )
    store.save(rec)
    return rec.id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--records", type=int, default=100_000)
    args = ap.parse_args()
    bootstrap.ensure_user_manager()
    with tempfile.TemporaryDirectory(prefix="clawunits-bench-") as tmp_s:
        tmp = Path(tmp_s)
        env, work = make_env(tmp), tmp / "work"
        work.mkdir()
        cli = [sys.executable, "-m", "clawunits"]
        help_ms, _ = timed([*cli, "--help"], env, args.runs)
        report("P6 clawunits --help", help_ms, goal="<= 50 ms")
        units = bench_launch(env, work, args.runs)
        big = build_big_session(env, work, args.records)
        count = subprocess.run(
            ["journalctl", "-q", "--no-pager", f"_SYSTEMD_USER_UNIT={big}", "-o", "cat"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.count("\n")
        print(f"records in the journal: {count}")
        sid = register_session(env, work, big)
        jc, _ = timed(["journalctl", "--user-unit", big, "-n", "50", "-o", "cat"], env, args.runs)
        out, _ = timed([*cli, "output", sid, "--lines", "50"], env, args.runs)
        report("journalctl --user-unit U -n 50 -o cat", jc)
        report(f"P2 clawunits output --lines 50 ({count} records)", out, jc, "<= 60 ms")
        for unit in [*units, big]:
            subprocess.run(["systemctl", "--user", "stop", unit], env=env, capture_output=True)
            subprocess.run(["systemctl", "--user", "reset-failed", unit], env=env, capture_output=True)


if __name__ == "__main__":
    main()
