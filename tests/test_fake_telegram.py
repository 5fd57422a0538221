"""The fake Bot API itself (no gateway): long polling, offsets, request encodings, recording."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from fake_telegram import TOKEN, Chat, FakeTelegram, User

ALICE = User(id=11, first_name="Alice")
GROUP = Chat.group(-100_555, "Team")


@pytest.fixture
def bot() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    try:
        yield fake
    finally:
        fake.stop()


def call(bot: FakeTelegram, method: str, body: bytes = b"", ctype: str = "application/json", token: str = TOKEN) -> Any:
    req = urllib.request.Request(f"{bot.url}/bot{token}/{method}", data=body, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def post(bot: FakeTelegram, method: str, **params: Any) -> Any:
    return call(bot, method, json.dumps(params).encode())


def test_get_me_and_a_wrong_token(bot: FakeTelegram) -> None:
    me = post(bot, "getMe")["result"]
    assert me["is_bot"] is True and me["id"] == int(TOKEN.split(":")[0]) and me["username"] == bot.bot_username
    assert call(bot, "getMe", b"{}", token="1:nope") == {"ok": False, "error_code": 401, "description": "Unauthorized"}


def test_a_long_poll_wakes_on_an_update_and_an_offset_confirms_it(bot: FakeTelegram) -> None:
    got: list[Any] = []
    poller = threading.Thread(target=lambda: got.append(post(bot, "getUpdates", timeout=20)))
    began = time.monotonic()
    poller.start()
    time.sleep(0.3)
    update_id = bot.user_says(Chat.private(ALICE), ALICE, "/claude_sessions@bot now")
    poller.join(10)
    assert time.monotonic() - began < 5
    [update] = got[0]["result"]
    assert update["update_id"] == update_id
    message = update["message"]
    assert message["chat"] == {"id": 11, "type": "private", "first_name": "Alice"} and message["from"]["id"] == 11
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": len("/claude_sessions@bot")}]
    # Not yet confirmed: served again; an offset past it drops it.
    assert [u["update_id"] for u in post(bot, "getUpdates")["result"]] == [update_id]
    assert post(bot, "getUpdates", offset=update_id + 1)["result"] == []
    assert bot.pending_updates() == []


def test_a_group_message_and_plain_text(bot: FakeTelegram) -> None:
    bot.user_says(GROUP, ALICE, "hello")
    [update] = post(bot, "getUpdates")["result"]
    assert update["message"]["chat"] == {"id": -100_555, "type": "supergroup", "title": "Team"}
    assert "entities" not in update["message"]


def test_sent_messages_in_any_encoding_are_recorded_and_edited(bot: FakeTelegram) -> None:
    mark = bot.mark()
    post(bot, "sendMessage", chat_id="11", text="one", reply_markup={"inline_keyboard": []})
    call(bot, "sendMessage", b"chat_id=-100555&text=two", "application/x-www-form-urlencoded")
    boundary = "XyZ"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n11\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nthree\r\n--{boundary}--\r\n'
    ).encode()
    call(bot, "sendMessage", multipart, f"multipart/form-data; boundary={boundary}")
    assert [m.text for m in bot.sent(11, after=mark)] == ["one", "three"]
    assert bot.sent(-100_555)[0].text == "two"
    first = bot.sent(11)[0]
    assert first.reply_markup == {"inline_keyboard": []}
    edited = post(bot, "editMessageText", chat_id=11, message_id=first.message_id, text="one, edited")
    assert edited["ok"] is True and bot.sent(11)[0].text == "one, edited" and first.edits == ["one, edited"]
    assert bot.wait_for_message(-100_555, after=mark, timeout=1).text == "two"
    with pytest.raises(AssertionError, match="no message to 99"):
        bot.wait_for_message(99, timeout=0.2)


def test_edits_answer_as_telegram_does(bot: FakeTelegram) -> None:
    """The live status message relies on these answers: the same text again is refused as "not modified" (OpenClaw
    counts that as done), an unknown message id is "not found", and only real changes are kept as edits."""
    sent = post(bot, "sendMessage", chat_id=12, text="🟢 [x] running")["result"]
    same = post(bot, "editMessageText", chat_id=12, message_id=sent["message_id"], text="🟢 [x] running")
    assert same == {"ok": False, "error_code": 400, "description": "Bad Request: message is not modified"}
    gone = post(bot, "editMessageText", chat_id=12, message_id=sent["message_id"] + 999, text="✅ [x] completed")
    assert gone["description"] == "Bad Request: message to edit not found"
    wrong_chat = post(bot, "editMessageText", chat_id=13, message_id=sent["message_id"], text="✅ [x] completed")
    assert wrong_chat["ok"] is False
    done = post(bot, "editMessageText", chat_id=12, message_id=sent["message_id"], text="✅ [x] completed")
    assert done["ok"] is True and done["result"]["message_id"] == sent["message_id"]
    [message] = bot.sent(12)
    assert message.text == "✅ [x] completed" and message.edits == ["✅ [x] completed"]


def test_unknown_methods_succeed_and_are_listed(bot: FakeTelegram) -> None:
    assert post(bot, "setChatMenuButton") == {"ok": True, "result": True}
    assert bot.unknown_methods == {"setChatMenuButton"}
    assert "setChatMenuButton" in bot.methods_called()


def test_a_button_press_is_a_callback_query(bot: FakeTelegram) -> None:
    post(bot, "sendMessage", chat_id=11, text="pick", reply_markup={"inline_keyboard": [[{"text": "A"}]]})
    bot.user_presses(ALICE, bot.sent(11)[0], "pick:a")
    [update] = post(bot, "getUpdates")["result"]
    query = update["callback_query"]
    assert query["data"] == "pick:a" and query["from"]["id"] == 11 and query["message"]["text"] == "pick"
