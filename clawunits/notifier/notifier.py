"""The notifier: follows every session's records in the journal and turns them into notifications.

``clawunits notifier`` runs as the user service ``clawunits-notifier.service``. Sessions do not depend on it:
it only reads the journal and the store. Stopped, it misses nothing; started again, it continues from its
journal cursor and delivers what happened meanwhile.

Exactly once: every notification gets a deterministic key (the journal cursor of the record that caused it,
or ``<session>:end`` for a session's end, ``<session>:end:<n>`` after its n-th recovery) and goes through a
durable outbox (``notifier/outbox.jsonl``): ``add`` is written before the journal cursor moves past its
record, ``sent`` right after delivery. After a crash, records after the saved cursor are read again and their
notifications deduplicated by key; added but unsent ones are sent. Only a crash in the instant between
delivery and writing ``sent`` can repeat one. Delivery itself is handed to the running gateway where its plugin
takes hand-overs (:mod:`clawunits.notifier.gateway`), with the same guarantee across crashes of either side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from clawunits.notifier.decide import Decider
from clawunits.notifier.deliver import Delivery, Wakes
from clawunits.notifier.follow import Follower
from clawunits.notifier.gateway import Handover, handover_dir
from clawunits.notifier.openclaw import OpenClaw
from clawunits.notifier.outbox import Outbox
from clawunits.notifier.status import StatusBoard
from clawunits.notifier.streaming import ForegroundStream
from clawunits.records import utc_now_iso
from clawunits.service.api import Service
from clawunits.service.foreground import Foreground, cursor_seqnum
from clawunits.state.config import ConfigError, config_path, load_settings
from clawunits.state.models import SessionRecord, parse_ts
from clawunits.state.store import ensure_private_dir, write_atomically

log = logging.getLogger(__name__)

REMINDER_CHECK_SEC = 60.0
DEATH_CHECK_SEC = 5.0
# A launch writes the record, then starts the unit (its start job may take up to 10 s).
CURSOR_SAVE_SEC = 0.5


class Notifier:
    """Follows the journal, decides notifications, delivers them once: the parts wired together, and the
    timers that drive them."""

    def __init__(self, service: Service, openclaw: OpenClaw | None = None) -> None:
        self.svc = service
        self.store = service.store
        self.settings = service.settings
        self.dir = ensure_private_dir(self.store.root / "notifier")
        self.outbox = Outbox(self.dir / "outbox.jsonl")
        self.own_openclaw = openclaw is None  # built from the settings, so rebuilt when they change
        self.handover = Handover(handover_dir(self.store.root))
        self.delivery = Delivery(self.outbox, openclaw or OpenClaw.from_settings(self.settings), self.handover)
        self.config_stamp = _stamp(config_path())
        self.stream = ForegroundStream(Foreground(self.store), self.outbox, self.delivery.enqueue)
        self.wakes = Wakes(self.outbox, self.delivery.enqueue)
        self.since = _read(self.dir / "since") or self._first_start()
        self.board = StatusBoard(self.dir / "status.json", self.store, self.outbox, self.delivery.enqueue)
        self.delivery.status = self.board
        self.decider = Decider(
            self.store, self.settings, self.outbox, self.stream, self.wakes, self.delivery.enqueue, self.since,
            self.board,
        )  # fmt: skip
        self.follower = Follower(_read(self.dir / "cursor"), parse_ts(self.since), self.decider.on_record)

    def _first_start(self) -> str:
        now = utc_now_iso()
        write_atomically(self.dir / "since", now.encode())
        return now

    async def run(self, stop: asyncio.Event) -> None:
        self.handover.settle_all_but(set(self.outbox.pending))
        for item in list(self.outbox.pending.values()):
            self.delivery.enqueue(item)
        tasks = [
            asyncio.create_task(self.follower.run()),
            asyncio.create_task(self._tick()),
            asyncio.create_task(self._periodic()),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.stream.flush(force=True)
            self._save_cursor()
            await self.delivery.drain(timeout=10.0)
            self.outbox.close()

    async def _tick(self) -> None:
        last_save = time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            self.stream.flush()
            self.wakes.release()
            self.board.flush()
            self.handover.poll()
            if self.follower.cursor_dirty and time.monotonic() - last_save >= CURSOR_SAVE_SEC:
                self._save_cursor()
                last_save = time.monotonic()

    def _save_cursor(self) -> None:
        # Only once everything its records produced is in the outbox: it is written synchronously above,
        # except foreground text still being coalesced in memory, which holds the cursor back before it.
        f = self.follower
        if not (f.cursor_dirty and f.cursor):
            return
        held = self.stream.held_cursors()
        known = [c for c in held if c is not None]
        if len(known) < len(held):
            return  # nothing before that text to resume from yet: keep the saved position
        cursor = min(known, key=cursor_seqnum) if known else f.cursor
        write_atomically(self.dir / "cursor", cursor.encode())
        f.cursor_dirty = bool(held)  # saved again once the buffers are flushed

    async def _periodic(self) -> None:
        """Checks that need systemd and the store, one at a time (the bus connection is not thread-safe)."""
        last_reminder = time.monotonic()
        while True:
            await asyncio.sleep(DEATH_CHECK_SEC)
            try:
                records: list[SessionRecord] = await asyncio.to_thread(self.svc.sessions)
            except Exception:  # the user manager may be briefly unreachable (logged)
                log.exception("could not check sessions")
                continue
            self.decider.report_deaths(records)
            self.board.refresh(records)
            self._reload_settings()
            if time.monotonic() - last_reminder >= REMINDER_CHECK_SEC:
                last_reminder = time.monotonic()
                self.decider.remind(records)

    def _reload_settings(self) -> None:
        """Settings changed in the config file (by hand, or synced from the plugin's config) apply without a
        restart: routes, fallback channel, the openclaw executable and where its gateway keeps its state."""
        stamp = _stamp(config_path())
        if stamp == self.config_stamp:
            return
        self.config_stamp = stamp
        try:
            settings = load_settings()
        except ConfigError as e:  # the running settings stay until the file is fixed
            log.error("config not reloaded: %s", e.message)
            return
        self.settings = self.decider.settings = settings
        if self.own_openclaw:
            self.delivery.openclaw = OpenClaw.from_settings(settings)
        log.info("config reloaded from %s", config_path())


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
