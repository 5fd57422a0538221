"""The session runner: ``python -m clawunits.runner SESSION_ID`` is the ExecStart of every session unit.

It drives one Claude Code session through ``ClaudeSDKClient`` and prints one JSON record per line on
stdout, which journald keeps. It updates the session's store record as it goes (Claude session id, status,
cost) so listing sessions never has to read the journal.

Multi-turn: after each turn the runner prints ``waiting`` and takes the next messages from the session's
durable inbox (``clawunits respond`` posts there and wakes the runner with SIGWINCH, whose default action is
to do nothing, so an early signal cannot kill a runner that is still starting). The session ends after its
first turn when multi-turn is disabled, after ``idle_timeout_minutes`` without activity, on a fatal result
(budget, API error), or on SIGTERM (``clawunits kill``, ``systemctl --user stop``), which still prints ``exit``.
A SIGTERM nobody asked clawunits for while the user manager shuts down marks the session ``interrupted``;
``clawunits recover`` starts the runner again, which resumes the Claude session (``recovered`` record).

The runner's parts (this package) are the only modules that import claude-agent-sdk: ``session`` (the turn
loop), ``live`` (the state they share), ``events`` (SDK messages to records), ``permissions``, ``mail``,
``watchdog`` (stalls and resource limits), ``options``, ``answers`` and ``reaping``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from clawunits import records as R
from clawunits.records import RecordWriter, Redactor, shorten
from clawunits.runner.journal_stream import FdWriter, Reconnector
from clawunits.runner.mail import delivered_ids
from clawunits.runner.queueing import free_slot
from clawunits.runner.reaping import reap_strays
from clawunits.runner.session import Runner
from clawunits.state.config import state_dir
from clawunits.state.inbox import inbox_for
from clawunits.state.models import Status
from clawunits.state.store import Store


async def _main(session_id: str) -> int:
    store = Store(state_dir())
    # The session's own secrets (its API key above all) never reach the journal or the store.
    out = record_writer(Redactor.from_environ(os.environ))
    try:
        record = store.load(session_id)
    except Exception as e:  # noqa: BLE001 - no record, no session: say why in the journal and fail
        out.emit(R.ERROR, message=shorten(f"cannot load session {session_id}: {e}", 300))
        out.emit(R.EXIT, status=Status.FAILED.value, reason="session record unreadable", cause="crash", costUsd=0.0)
        return 1
    inbox = inbox_for(store.root, session_id)
    if inbox.in_flight():
        inbox.recover(delivered_ids(record.unit))
    runner = Runner(record, store, out, inbox)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, runner.live.stop.set)
    loop.add_signal_handler(signal.SIGWINCH, runner.mail.wake.set)
    outcome = runner.finish(await runner.run())
    reap_strays()
    free_slot(store)
    return 1 if outcome.status is Status.FAILED else 0


def record_writer(redactor: Redactor) -> RecordWriter:
    """The record writer on stdout; when stdout is a journald stream, one that survives a journald restart."""
    reconnect = Reconnector.for_stdout()
    if reconnect is None:
        return RecordWriter(redactor=redactor)
    return RecordWriter(FdWriter(1), redactor, on_broken=reconnect)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m clawunits.runner SESSION_ID", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(_main(args[0])))
