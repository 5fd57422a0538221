"""Handing notifications to the running OpenClaw gateway: the plugin's delivery service sends them in-process
(the channel's outbound adapter, the agent's system events), so no process is started per message.

The notifier still decides everything (what, to whom, retries); the plugin delivers what it is handed. The
hand-over is a directory, ``<state>/notifier/gateway/`` (0700; files 0600, each written to a temp file and
renamed):

- ``lease``: the delivery service runs; its gateway's pid. Written at its start, removed at its stop.
- ``queue/NAME``: one item, ``{"id", "kind": "message"|"wake"|"edit", "texts", "channel", "account", "to",
  "sessionKey", "agentId", "messageId"}`` (``messageId``: the message an ``edit`` changes). NAME is
  ``<ns since the epoch>-<hash of id>.json``: sorted, the hand-over order.
- ``done/NAME``: the service's receipt, ``{"id", "ok", "error", "messageIds"}`` (the ids of the messages a
  ``message`` became, where the channel gives them), written before it removes ``queue/NAME``.

Exactly once: a receipt in ``done/`` stops the service from sending ``queue/NAME`` again, and the notifier
removes the receipt only once ``queue/NAME`` is gone. An item handed over stays handed over: while the
gateway is down it waits in ``queue/`` and goes out, in order, when the gateway is back. Only a gateway killed
between the channel accepting a message and the receipt being written repeats it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clawunits.notifier.channels import Channel
from clawunits.state.store import ensure_private_dir, write_atomically

log = logging.getLogger(__name__)

LEASE = "lease"
# In the key of an edit of a status message: nobody waits for its receipt after a restart (an edit is not in the
# outbox), so such a receipt is cleared as soon as it is read.
EDIT_MARK = ":edit:"


def handover_dir(state: Path) -> Path:
    """The hand-over directory under clawunits' state directory (the plugin learns it from ``config sync``)."""
    return state / "notifier" / "gateway"


@dataclass(frozen=True)
class Receipt:
    ok: bool
    error: str | None = None
    # The first message a ``message`` item became (the live status message keeps it to edit it).
    message_id: str | None = None


@dataclass(frozen=True)
class GatewayState:
    """What the hand-over directory says of the gateway: ``up``, ``down`` (a lease whose gateway is gone:
    items wait for it) or ``absent`` (no delivery service ever ran here: the ``openclaw`` CLI delivers)."""

    status: str
    pid: int | None = None
    queued: int = 0
    oldest_sec: float | None = None


class Handover:
    """The notifier's side of the hand-over directory. Each attempt at an item is one file, known by its NAME."""

    def __init__(self, root: Path) -> None:
        self.root = ensure_private_dir(root)
        self.queue = ensure_private_dir(root / "queue")
        self.done = ensure_private_dir(root / "done")
        self.waiting: dict[str, asyncio.Future[Receipt]] = {}
        # Receipts read before anyone waited for them (an item handed over by a notifier that then restarted).
        self.receipts: dict[str, Receipt] = {}
        # Attempts that are over for the notifier: their receipts go once the service has removed the item.
        self.settled: set[str] = set()

    def state(self) -> GatewayState:
        return gateway_state(self.root)

    def in_use(self) -> bool:
        """Hand items over (the gateway is up, or down but expected back) rather than run ``openclaw``."""
        return self.state().status != "absent"

    async def deliver(self, item_id: str, payload: dict[str, Any]) -> Receipt:
        """Hand one item over, unless an earlier life of the notifier did, and wait for its receipt however long
        the gateway is away. A failed attempt leaves nothing behind: the next one is a new file."""
        name = self._find(item_id) or self._hand_over(item_id, payload)
        receipt = self.receipts.pop(name, None)
        if receipt is None:
            future = self.waiting.setdefault(name, asyncio.get_running_loop().create_future())
            try:
                receipt = await future
            finally:
                self.waiting.pop(name, None)
        if not receipt.ok:
            self._settle_name(name)
        return receipt

    def settle(self, item_id: str) -> None:
        """The outbox has recorded the item's end: its receipt is no longer needed (removed now, or at a later
        poll once the service has removed the item; until then the receipt keeps it from going twice)."""
        name = self._find(item_id)
        if name is not None:
            self._settle_name(name)

    def settle_all_but(self, pending: set[str]) -> None:
        """At start: the receipts of items the outbox already closed (a crash right after it did) go."""
        for name in sorted(os.listdir(self.done)):
            receipt_id, _ = _read_receipt(self.done / name)
            if receipt_id is not None and receipt_id not in pending:
                self._settle_name(name)

    def poll(self) -> None:
        """Read the receipts the delivery service wrote: each wakes whoever waits for its attempt."""
        try:
            names = sorted(os.listdir(self.done))
        except OSError as e:  # the next poll tries again; the notifier's other work goes on
            log.warning("cannot read delivery receipts in %s: %s", self.done, e)
            return
        for name in names:
            if name.startswith("."):
                continue  # a receipt still being written
            if name in self.settled:
                self._remove_receipt(name)
                continue
            if name in self.receipts:
                continue
            receipt_id, receipt = _read_receipt(self.done / name)
            if receipt is None:
                continue
            future = self.waiting.get(name)
            if future is None and EDIT_MARK in (receipt_id or ""):
                self._settle_name(name)  # an edit handed over by an earlier life of the notifier
            elif future is None:
                self.receipts[name] = receipt
            elif not future.done():
                future.set_result(receipt)

    def _hand_over(self, item_id: str, payload: dict[str, Any]) -> str:
        name = f"{time.time_ns():020d}-{_digest(item_id)}.json"
        write_atomically(self.queue / name, json.dumps({"id": item_id, **payload}, ensure_ascii=False).encode())
        return name

    def _find(self, item_id: str) -> str | None:
        """The current attempt at ``item_id``: queued, or answered by a receipt not yet settled."""
        suffix = f"-{_digest(item_id)}.json"
        for directory in (self.queue, self.done):
            for name in sorted(os.listdir(directory)):
                if name.endswith(suffix) and name not in self.settled:
                    return name
        return None

    def _settle_name(self, name: str) -> None:
        self.receipts.pop(name, None)
        self.settled.add(name)
        self._remove_receipt(name)

    def _remove_receipt(self, name: str) -> None:
        if (self.queue / name).exists():
            return  # the service has yet to remove the item: its receipt still guards it
        with contextlib.suppress(FileNotFoundError):
            (self.done / name).unlink()
        self.settled.discard(name)


def message_payload(channel: Channel, texts: list[str]) -> dict[str, Any]:
    return {"kind": "message", "channel": channel.channel, "account": channel.account, "to": channel.target,
            "texts": texts}  # fmt: skip


def edit_payload(channel: Channel, message_id: str, text: str) -> dict[str, Any]:
    """An edit of a message the channel sent before: never sent as a new message, whatever happens."""
    return {**message_payload(channel, [text]), "kind": "edit", "messageId": message_id}


def wake_payload(text: str, session_key: str | None = None, agent_id: str | None = None) -> dict[str, Any]:
    return {"kind": "wake", "texts": [text], "sessionKey": session_key, "agentId": agent_id}


def gateway_state(root: Path) -> GatewayState:
    """Whether a gateway takes hand-overs here, and what waits for it (for the notifier and ``doctor``)."""
    queued, oldest = _queue_stats(root / "queue")
    try:
        pid = int((root / LEASE).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return GatewayState("absent", None, queued, oldest)
    return GatewayState("up" if _alive(pid) else "down", pid, queued, oldest)


def _queue_stats(queue: Path) -> tuple[int, float | None]:
    try:
        names = [n for n in os.listdir(queue) if not n.startswith(".")]
    except FileNotFoundError:
        return 0, None
    if not names:
        return 0, None
    try:
        oldest_ns = int(min(names).split("-", 1)[0])
    except ValueError:
        return len(names), None
    return len(names), max(0.0, (time.time_ns() - oldest_ns) / 1e9)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_receipt(path: Path) -> tuple[str | None, Receipt | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        log.warning("unreadable delivery receipt %s: %s", path.name, e)
        return None, None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None, None
    error = data.get("error")
    ids = data.get("messageIds")
    first = str(ids[0]) if isinstance(ids, list) and ids and ids[0] is not None else None
    return data["id"], Receipt(bool(data.get("ok")), str(error) if error else None, first)


def _digest(item_id: str) -> str:
    return hashlib.sha256(item_id.encode()).hexdigest()[:24]
