"""The notifier's side of the hand-over to the gateway (clawunits/notifier/gateway.py), step by step.

The delivery service's side is played here by a few lines that do what plugin/lib/delivery.js does (write a
receipt, then remove the item), so each crash point can be placed exactly; the real service is tested through a
real gateway in tests/test_gateway_delivery.py and in plugin/test/delivery.test.mjs.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from clawunits.notifier.channels import Channel
from clawunits.notifier.gateway import Handover, edit_payload, gateway_state, message_payload

PAYLOAD = message_payload(Channel("telegram", "1001", "main-bot"), ["hello"])


def queued(h: Handover) -> list[str]:
    return sorted(os.listdir(h.queue))


def serve(h: Handover, name: str, ok: bool = True, remove: bool = True) -> None:
    """What the delivery service does with one item: a receipt, then the item goes."""
    item = json.loads((h.queue / name).read_text())
    (h.done / name).write_text(json.dumps({"id": item["id"], "ok": ok, "error": None if ok else "chat not found"}))
    if remove:
        (h.queue / name).unlink()


async def deliver_served(h: Handover, item_id: str, **serve_args: bool) -> tuple[bool, str]:
    task = asyncio.create_task(h.deliver(item_id, PAYLOAD))
    await asyncio.sleep(0.01)
    [name] = queued(h)
    serve(h, name, **serve_args)
    h.poll()
    receipt = await asyncio.wait_for(task, 5)
    return receipt.ok, name


def test_an_item_is_handed_over_once_and_its_receipt_goes_when_settled(tmp_path: Path) -> None:
    async def run() -> None:
        h = Handover(tmp_path / "gateway")
        ok, name = await deliver_served(h, "key-1")
        assert ok and queued(h) == []
        assert os.listdir(h.done) == [name]  # kept until the outbox has recorded the end
        h.settle("key-1")
        assert os.listdir(h.done) == []
        assert oct((tmp_path / "gateway").stat().st_mode & 0o777) == "0o700"

    asyncio.run(run())


def test_a_restarted_notifier_waits_for_the_item_it_handed_over_instead_of_handing_it_over_again(
    tmp_path: Path,
) -> None:
    async def first_life() -> None:
        h = Handover(tmp_path / "gateway")
        task = asyncio.create_task(h.deliver("key-2", PAYLOAD))
        await asyncio.sleep(0.01)
        task.cancel()  # killed while the gateway had not answered

    async def second_life() -> None:
        h = Handover(tmp_path / "gateway")
        [name] = queued(h)
        task = asyncio.create_task(h.deliver("key-2", PAYLOAD))
        await asyncio.sleep(0.01)
        assert queued(h) == [name]  # the same item, not a second one
        serve(h, name)
        h.poll()
        assert (await asyncio.wait_for(task, 5)).ok

    asyncio.run(first_life())
    asyncio.run(second_life())


def test_a_receipt_read_by_a_notifier_that_then_died_is_found_by_the_next(tmp_path: Path) -> None:
    async def run() -> None:
        h = Handover(tmp_path / "gateway")
        task = asyncio.create_task(h.deliver("key-3", PAYLOAD))
        await asyncio.sleep(0.01)
        serve(h, queued(h)[0])
        task.cancel()  # died before reading the receipt: the outbox still has the item pending
        later = Handover(tmp_path / "gateway")
        later.settle_all_but({"key-3"})
        later.poll()
        assert (await asyncio.wait_for(later.deliver("key-3", PAYLOAD), 5)).ok
        assert queued(later) == []

    asyncio.run(run())


def test_a_refused_item_is_tried_again_as_a_new_item_and_a_closed_ones_receipt_goes_at_start(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        h = Handover(tmp_path / "gateway")
        ok, first = await deliver_served(h, "key-4", ok=False)
        assert not ok and os.listdir(h.done) == []  # nothing left behind: the next attempt is new
        ok, second = await deliver_served(h, "key-4")
        assert ok and second != first
        # A receipt whose item the outbox already closed (a crash right after) goes at the next start.
        Handover(tmp_path / "gateway").settle_all_but(set())
        assert os.listdir(h.done) == []

    asyncio.run(run())


def test_a_receipt_stays_while_the_service_has_not_removed_the_item(tmp_path: Path) -> None:
    async def run() -> None:
        h = Handover(tmp_path / "gateway")
        ok, name = await deliver_served(h, "key-5", remove=False)  # the gateway died between the two steps
        assert ok
        h.settle("key-5")
        assert os.listdir(h.done) == [name]  # it still keeps the service from sending the item again
        (h.queue / name).unlink()  # the service, started again, sees the receipt and removes the item
        h.poll()
        assert os.listdir(h.done) == []

    asyncio.run(run())


def test_the_lease_says_whether_a_gateway_takes_hand_overs(tmp_path: Path) -> None:
    root = tmp_path / "gateway"
    Handover(root)
    assert gateway_state(root).status == "absent"
    (root / "lease").write_text(f"{os.getpid()}\n")
    assert gateway_state(root).status == "up"
    (root / "lease").write_text("999999999\n")
    assert gateway_state(root).status == "down"


def test_an_edit_handed_over_by_an_earlier_life_has_its_receipt_cleared_and_its_id_read_from_a_receipt(
    tmp_path: Path,
) -> None:
    async def first_life() -> None:
        h = Handover(tmp_path / "gateway")
        edit = edit_payload(Channel("telegram", "1001", "main-bot"), "5001", "🟢 [x] running")
        task = asyncio.create_task(h.deliver("s1:status:edit:1:99", edit))
        await asyncio.sleep(0.01)
        assert json.loads((h.queue / queued(h)[0]).read_text())["messageId"] == "5001"
        task.cancel()  # the notifier dies with the edit handed over
        status = asyncio.create_task(h.deliver("s1:status", PAYLOAD))
        await asyncio.sleep(0.01)
        name = h._find("s1:status")
        assert name is not None
        item = json.loads((h.queue / name).read_text())
        (h.done / name).write_text(json.dumps({"id": item["id"], "ok": True, "messageIds": ["5001"]}))
        (h.queue / name).unlink()
        h.poll()
        receipt = await asyncio.wait_for(status, 5)
        assert receipt.ok and receipt.message_id == "5001"

    asyncio.run(first_life())

    async def second_life() -> None:
        h = Handover(tmp_path / "gateway")
        [name] = queued(h)  # the edit: the service sends it when it comes to it
        serve(h, name)
        h.poll()
        assert name not in os.listdir(h.done)  # nobody waits for an edit's receipt: cleared, not kept forever

    asyncio.run(second_life())
