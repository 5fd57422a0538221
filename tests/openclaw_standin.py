#!/usr/bin/env python3
"""A recording stand-in for the `openclaw` CLI (the real one needs a running gateway).

Appends {"argv": [...], "t": <time>} to $OPENCLAW_RECORD for every call, then exits 0; `message send --json`
answers as the real one does, with the sent message's id (`{"action": "send", ..., "messageId": "<n>"}`, n the
call's number plus 9000). Faults on demand:
$OPENCLAW_FAIL_FIRST=N makes the first N calls exit 1; $OPENCLAW_SLEEP=S sleeps S seconds first;
$OPENCLAW_GATE=PATH holds every call, before it records anything, for as long as PATH exists, and creates
PATH.held.PID while it waits (a test closes the gate to choose exactly when no call can complete).
"""

import fcntl
import json
import os
import sys
import time

record = os.environ.get("OPENCLAW_RECORD", "/tmp/openclaw-record.jsonl")
sleep = float(os.environ.get("OPENCLAW_SLEEP", "0") or 0)
fail_first = int(os.environ.get("OPENCLAW_FAIL_FIRST", "0") or 0)
gate = os.environ.get("OPENCLAW_GATE", "")
if sleep:
    time.sleep(sleep)
if gate and os.path.exists(gate):
    # Tells the test this call is held and has recorded nothing yet.
    open(f"{gate}.held.{os.getpid()}", "w").close()
    while os.path.exists(gate):
        time.sleep(0.01)
with open(record + ".calls", "a+") as counter:
    fcntl.flock(counter, fcntl.LOCK_EX)
    counter.seek(0)
    calls = len(counter.read().splitlines())
    counter.write("x\n")
if calls < fail_first:
    print("openclaw stand-in: injected failure", file=sys.stderr)
    sys.exit(1)
with open(record, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.write(json.dumps({"argv": sys.argv[1:], "t": time.time()}) + "\n")
if sys.argv[1:3] == ["message", "send"] and "--json" in sys.argv:
    print(
        json.dumps(
            {
                "action": "send",
                "channel": "telegram",
                "dryRun": False,
                "handledBy": "plugin",
                "messageId": str(9000 + calls),
            }
        )
    )
