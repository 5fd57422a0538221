#!/usr/bin/env python3
"""Notifications through a real OpenClaw gateway and its Telegram channel, as a chat user gets them.

    python bench/bench_gateway_delivery.py [--runs 5] [--burst 20] [--cli-runs 3]

Everything is real but Telegram and the model: the gateway (openclaw, installed as the tests install it) with
its Telegram channel polling the loopback fake Bot API (tests/fake_telegram.py), the plugin installed by
install.sh, the notifier in its user unit, sessions on the real Claude Code CLI and the scripted Messages API.

  chat → ✅         ``/claude`` typed in a private chat → the ✅ of a session whose turn runs ~2 s (a 2 s Bash
                    tool) reaching the Bot API
  record → Bot API  a record's journal timestamp (``__REALTIME_TIMESTAMP``) → its message reaching the Bot API
                    (the ↩️ of ``started``, the ✅ of ``waiting``)
  burst             ``--burst`` sessions launched at once: ``openclaw`` processes started (the recording
                    stand-in counts them) and the peak memory (RSS) of the notifier and of the gateway
  CLI, beside it    ``chat → ✅`` again with the hand-over switched off (its lease removed), so the notifier runs
                    the real ``openclaw message send`` per message, as before

Needs the test toolchain (Node 24 and openclaw, fetched by the tests into ~/.cache/clawunits-test) and a user
manager (python -m clawunits.bootstrap up). Prints figures; it is not a test.
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
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fake_telegram import Chat  # noqa: E402
from notifier_harness import NotifierUnit, install_openclaw  # noqa: E402
from telegram_harness import ACCOUNT, OWNER, telegram_gateway  # noqa: E402

from clawunits.bootstrap import boot as bootstrap  # noqa: E402
from clawunits.notifier.gateway import handover_dir  # noqa: E402
from clawunits.testing.scripted_api import ScriptedAPI  # noqa: E402

DM = Chat.private(OWNER)


def chat_to_done(t, prompt: str) -> tuple[float, str]:
    """``/claude PROMPT`` in the DM → the ✅ at the Bot API: seconds, and the session's name."""
    after = t.bot.mark()
    began = time.time()
    t.command(DM, OWNER, f"/claude {prompt}")
    done = t.bot.wait_for_message(DM.id, after=after, timeout=300, contains="Completed")
    launched = t.bot.wait_for_message(DM.id, after=after, timeout=30, contains="Launched")
    name = (launched.text or "").split("]")[0].split("[")[-1]
    return done.at - began, name


def record_to_bot(t, name: str, after_index: int) -> list[float]:
    """For a session's ``started`` and ``waiting`` records: journal timestamp → its message at the Bot API."""
    session = next(s for s in t.claw.json("sessions", "--all")["sessions"] if s["name"] == name)
    ident = session["unit"].removesuffix(".service")
    out = subprocess.run(["journalctl", "-q", "-o", "json", f"SYSLOG_IDENTIFIER={ident}"], capture_output=True,
                         text=True, env=t.claw.env, check=True).stdout  # fmt: skip
    stamps: dict[str, float] = {}
    for line in out.splitlines():
        entry = json.loads(line)
        try:
            rec = json.loads(entry["MESSAGE"])
        except (ValueError, TypeError):
            continue
        if rec.get("type") in ("started", "waiting") and rec["type"] not in stamps:
            stamps[rec["type"]] = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
    ours = [m for m in t.bot.sent(DM.id, after=after_index) if m.text and f"[{name}]" in m.text]
    sent = {(m.text or "").split("\n")[0]: m.at for m in ours}
    pairs = [("started", f"↩️ [{name}] Launched:"), ("waiting", f"✅ [{name}] Completed")]
    return [sent[head] - stamps[kind] for kind, head in pairs if kind in stamps and head in sent]


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def tree(pid: int) -> list[int]:
    """A process and its descendants."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--cli-runs", type=int, default=3)
    args = ap.parse_args()
    booted = bootstrap.ensure_user_manager()
    env = bootstrap.user_env()
    os.environ.update(env)
    root = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    api = ScriptedAPI(log_path=root / "requests.jsonl")
    api.start()
    (root / "state").mkdir()
    holder: dict[str, Path] = {}

    def configure(config: dict) -> None:
        plugin = config["plugins"]["entries"]["clawunits"]["config"]
        plugin["openclawPath"] = str(holder["openclaw"])
        plugin["maxSessions"] = args.burst + 5

    from conftest import Claw  # the tests' helper for a clawunits installation

    probe = Claw(env={}, state_dir=root / "state", config_path=root / "config" / "config.toml", workdir=root, api=api)
    holder["openclaw"], rec = install_openclaw(probe)
    try:
        with telegram_gateway(root, env, api, root / "claude-config", configure=configure) as t:
            # Node 24 first on its PATH, for the real openclaw of the CLI comparison.
            path = f"{Path(sys.executable).parent}:{t.claw.env['PATH']}"
            notifier = NotifierUnit(t.claw, rec, env={"PATH": path}).start()
            try:
                prompt = "[[bash: sleep 2]] [[text: done after two seconds]] wait two seconds"
                chat_to_done(t, "[[text: warm]] warm up")  # the first CLI start in a fresh config dir is slower
                took, lags = [], []
                for _ in range(args.runs):
                    mark = t.bot.mark()
                    seconds, name = chat_to_done(t, prompt)
                    took.append(seconds)
                    time.sleep(1)
                    lags += record_to_bot(t, name, mark)
                print(f"chat → ✅ (gateway):      median {statistics.median(took):.2f} s  "
                      f"(min {min(took):.2f}, max {max(took):.2f}, {len(took)} runs)")  # fmt: skip
                p90 = sorted(lags)[max(0, int(len(lags) * 0.9) - 1)]
                print(f"record → Bot API:        median {statistics.median(lags) * 1000:.0f} ms  "
                      f"(p90 {p90 * 1000:.0f} ms, {len(lags)} messages)")  # fmt: skip

                calls_before = len(rec.calls())
                gw_pid = t.gw.process.pid if t.gw.process else 0
                after = t.bot.mark()
                peak_notifier = peak_gateway = 0
                for k in range(args.burst):
                    t.claw.launch(f"[[text: burst {k}]] burst {k}", "--name", f"burst-{k}", "--multi-turn-disabled",
                                  "--channel", f"telegram|{ACCOUNT}|{OWNER.id}")  # fmt: skip
                deadline = time.monotonic() + 300
                while len([m for m in t.bot.sent(DM.id, after=after) if "burst-" in (m.text or "")]) < 2 * args.burst:
                    peak_notifier = max(peak_notifier, rss_kb(notifier.pids()))
                    peak_gateway = max(peak_gateway, rss_kb(tree(gw_pid)))
                    if time.monotonic() > deadline:
                        raise SystemExit("the burst's notifications did not all arrive")
                    time.sleep(0.2)
                print(f"burst of {args.burst} sessions: {2 * args.burst} messages, "
                      f"{len(rec.calls()) - calls_before} openclaw processes; peak RSS notifier "
                      f"{peak_notifier / 1024:.0f} MB, gateway {peak_gateway / 1024:.0f} MB")  # fmt: skip

                if args.cli_runs:
                    # As before: the notifier runs `openclaw message send` per message (the real CLI).
                    t.claw.write_config(openclawPath=str(t.gw.toolchain.openclaw), maxSessions=args.burst + 5,
                                        openclawStateDir=str(t.gw.state_dir))  # fmt: skip
                    (handover_dir(t.claw.state_dir) / "lease").unlink()
                    time.sleep(6)  # the notifier reads the changed config within 5 s
                    cli = [chat_to_done(t, prompt)[0] for _ in range(args.cli_runs)]
                    print(f"chat → ✅ (openclaw CLI): median {statistics.median(cli):.2f} s  "
                          f"(min {min(cli):.2f}, max {max(cli):.2f}, {len(cli)} runs)")  # fmt: skip
            finally:
                notifier.close()
    finally:
        api.stop()
        bootstrap.teardown(booted)


if __name__ == "__main__":
    main()
