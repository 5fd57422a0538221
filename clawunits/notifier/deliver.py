"""Delivery: the outbox's items go out through ``openclaw``, one FIFO per chat (and one for wake events), and
wake events are debounced per session."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clawunits.errors import ClawunitsError
from clawunits.notifier.channels import parse_channel, split_text
from clawunits.notifier.gateway import Handover, Receipt, edit_payload, message_payload, wake_payload
from clawunits.notifier.openclaw import OpenClaw
from clawunits.notifier.outbox import Item, Outbox

if TYPE_CHECKING:
    from clawunits.notifier.status import StatusBoard

log = logging.getLogger(__name__)

WAKE_DEBOUNCE_SEC = 5.0


class Delivery:
    """Sends what is enqueued and marks it sent in the outbox: handed to the running gateway when its plugin
    takes hand-overs (:mod:`clawunits.notifier.gateway`), else through the ``openclaw`` CLI."""

    def __init__(self, outbox: Outbox, openclaw: OpenClaw, handover: Handover | None = None) -> None:
        self.outbox = outbox
        self.openclaw = openclaw
        self.handover = handover
        self.queues: dict[str, asyncio.Queue[Item]] = {}
        self.workers: dict[str, asyncio.Task[None]] = {}
        # The live status messages (set by the notifier): told of a status message's id and of each edit.
        self.status: StatusBoard | None = None

    def enqueue(self, item: Item) -> None:
        """Per-channel FIFO: messages to one chat keep their order; a slow chat does not hold up others."""
        name = item.queue
        if name not in self.queues:
            self.queues[name] = asyncio.Queue()
            self.workers[name] = asyncio.create_task(self._deliver(name, self.queues[name]))
        self.queues[name].put_nowait(item)

    async def _deliver(self, name: str, queue: asyncio.Queue[Item]) -> None:
        while True:
            item = await queue.get()
            try:
                if item.edit_of is not None:
                    await self._edit(item)
                    continue
                if item.key not in self.outbox.pending:
                    continue  # already sent (queued twice) or superseded
                receipt = await self._send(item)
                if item.status_of and receipt.ok and self.status is not None:
                    # Its id is kept before the outbox closes it: a crash between finds the receipt again.
                    self.status.sent(item.status_of, item.channel or "", receipt.message_id)
                self.outbox.mark_sent(item.key, receipt.ok)
                if self.handover is not None:
                    self.handover.settle(item.key)
                if not receipt.ok:
                    log.error("giving up on %s to %s after retries", item.key, name)
            finally:
                queue.task_done()

    async def _edit(self, item: Item) -> None:
        """One attempt at an edit of a status message (a newer edit, or the next, supersedes a failed one)."""
        assert item.edit_of is not None
        if self.status is not None and not self.status.current(item):
            return  # a newer edit of the same message waits behind it
        channel = parse_channel(item.channel)
        if channel is None:
            return
        if self.handover is not None and self.handover.in_use():
            ok = (await self._hand_over(item, edit_payload(channel, item.edit_of, item.text), attempts=1)).ok
            self.handover.settle(item.key)
        else:
            ok = await self.openclaw.edit(channel, item.edit_of, item.text)
        if self.status is not None:
            self.status.edited(item, ok)

    async def _send(self, item: Item) -> Receipt:
        channel = parse_channel(item.channel) if item.channel is not None else None
        if item.channel is not None and channel is None:
            return Receipt(False, "no such channel")
        if self.handover is not None and self.handover.in_use():
            if channel is None:
                payload = wake_payload(item.text, item.session_key, item.agent_id)
            else:
                payload = message_payload(channel, split_text(item.text, channel))
            return await self._hand_over(item, payload)
        if channel is None:
            return Receipt(await self.openclaw.system_event(item.text, item.session_key))
        if item.status_of:
            sent, message_id = await self.openclaw.send_for_id(channel, item.text)
            return Receipt(sent, None, message_id)
        return Receipt(await self.openclaw.send(channel, item.text))

    async def _hand_over(self, item: Item, payload: dict[str, Any], attempts: int | None = None) -> Receipt:
        """To the gateway, retried with the CLI's pauses when the channel refuses it (a receipt with an error)."""
        assert self.handover is not None
        receipt = Receipt(False)
        for attempt in range(attempts or len(self.openclaw.backoff) + 1):
            if attempt:
                await asyncio.sleep(self.openclaw.backoff[attempt - 1])
            try:
                receipt = await self.handover.deliver(item.key, payload)
            except (OSError, ClawunitsError) as e:  # cannot hand it over (a full or read-only state directory)
                receipt = Receipt(False, getattr(e, "message", None) or str(e))
            if receipt.ok:
                return receipt
            log.warning("gateway delivery of %s failed (attempt %d): %s", item.key, attempt + 1, receipt.error)
        return receipt

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` for what is queued to go out, then stop the workers."""
        with_items = [q.join() for q in self.queues.values()]
        if with_items:
            try:
                await asyncio.wait_for(asyncio.gather(*with_items), timeout)
            except TimeoutError:
                log.warning("stopping with undelivered notifications; they go out on the next start")
        for task in self.workers.values():
            task.cancel()


@dataclass
class PendingWake:
    key: str
    text: str
    due: float


class Wakes:
    """Wake events of the orchestrating agent, debounced per session: at most one each 5 s, carrying the
    newest text."""

    def __init__(self, outbox: Outbox, enqueue: Callable[[Item], None]) -> None:
        self.outbox = outbox
        self.enqueue = enqueue
        self.pending: dict[str, PendingWake] = {}
        self.last_at: dict[str, float] = {}

    def add(self, sid: str, key: str, text: str, agent_id: str | None = None, session_key: str | None = None) -> None:
        if self.outbox.known(key):
            return
        previous = self.pending.get(sid)
        if previous is not None:
            # Superseded by a newer state of the same session before it went out.
            self.outbox.mark_sent(previous.key, superseded=True)
        due = max(time.monotonic(), self.last_at.get(sid, 0.0) + WAKE_DEBOUNCE_SEC)
        self.pending[sid] = PendingWake(key, text, due)
        self.outbox.add(Item(key, text, None, agent_id, session_key))

    def release(self) -> None:
        """Enqueue the wakes whose debounce has passed."""
        now = time.monotonic()
        for sid, wake in list(self.pending.items()):
            if wake.due <= now:
                del self.pending[sid]
                self.last_at[sid] = now
                item = self.outbox.pending.get(wake.key)
                if item is not None:
                    self.enqueue(item)
