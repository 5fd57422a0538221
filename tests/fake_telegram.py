"""A loopback fake of the Telegram Bot API, for a real OpenClaw gateway's real Telegram channel.

The gateway is pointed at it with ``channels.telegram.apiRoot``; it calls ``<apiRoot>/bot<TOKEN>/<method>``
with JSON, form or multipart bodies. The test acts as the chat users: ``user_says`` queues a ``message``
update that the gateway's ``getUpdates`` long poll returns, and everything the bot sends is recorded
(``sent``, ``wait_for_message``). Methods this fake does not know are answered ``{ok: true, result: true}``
and listed in ``unknown_methods``, so that a new OpenClaw release's calls show up instead of failing.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOT_ID = 7_000_000_001
BOT_USERNAME = "clawunits_test_bot"
TOKEN = f"{BOT_ID}:AAFakeTokenForClawunitsTests_0123456789"
COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?")
LONG_POLL_CAP = 25.0  # never hold a getUpdates longer than this, whatever timeout the bot asks for


@dataclass(frozen=True)
class User:
    """A Telegram user the test acts as."""

    id: int
    first_name: str
    username: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name, "language_code": "en"}
        if self.username:
            out["username"] = self.username
        return out


@dataclass(frozen=True)
class Chat:
    """A chat: private (id == the user's id) or a group/supergroup (negative id)."""

    id: int
    type: str = "private"
    title: str | None = None
    user: User | None = None  # the other party of a private chat

    @staticmethod
    def private(user: User) -> Chat:
        return Chat(id=user.id, type="private", user=user)

    @staticmethod
    def group(chat_id: int, title: str, supergroup: bool = True) -> Chat:
        assert chat_id < 0, "group chat ids are negative"
        return Chat(id=chat_id, type="supergroup" if supergroup else "group", title=title)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            out["title"] = self.title
        if self.user:
            out["first_name"] = self.user.first_name
            if self.user.username:
                out["username"] = self.user.username
        return out


@dataclass
class Sent:
    """A message the bot sent (``text`` follows later edits; ``edits`` keeps each edited text)."""

    index: int
    method: str
    chat_id: int | str
    message_id: int
    text: str | None
    reply_markup: Any
    params: dict[str, Any]
    at: float
    edits: list[str] = field(default_factory=list)


@dataclass
class Call:
    """One Bot API request, as received."""

    method: str
    params: dict[str, Any]
    at: float


def _coerce(value: str) -> Any:
    """Form fields carry JSON for objects/arrays and bare strings for the rest."""
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_body(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    params: dict[str, Any] = {k: _coerce(v) for k, v in urllib.parse.parse_qsl(query)}
    ctype = content_type.split(";")[0].strip().lower()
    if not body:
        return params
    if ctype == "application/json":
        params.update(json.loads(body))
    elif ctype == "application/x-www-form-urlencoded":
        params.update({k: _coerce(v) for k, v in urllib.parse.parse_qsl(body.decode())})
    elif ctype == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():
                params[name] = {"filename": part.get_filename(), "size": len(payload)}
            else:
                params[name] = _coerce(payload.decode(errors="replace"))
    return params


class FakeTelegram:
    """The fake Bot API server: start(), then point ``apiRoot`` at ``url``."""

    def __init__(self, token: str = TOKEN, bot_username: str = BOT_USERNAME) -> None:
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.bot_username = bot_username
        self.calls: list[Call] = []
        self.messages: list[Sent] = []
        self.unknown_methods: set[str] = set()
        self.commands: dict[str, Any] = {}  # setMyCommands by scope/language, as JSON keys
        self._updates: list[dict[str, Any]] = []
        self._confirmed = 0  # updates below this id were acknowledged by a later offset
        self._cond = threading.Condition()
        self._update_ids = itertools.count(100_001)
        self._message_ids = itertools.count(5001)
        self._chats: dict[int, Chat] = {}
        # Chats whose sends fail as Telegram refuses them ("blocked") or never answer ("hang", until released).
        self._faults: dict[str, str] = {}
        self._released = threading.Event()
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTelegram:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = fake._dispatch(path, self.headers.get("Content-Type", ""), body, query)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a poll the gateway gave up
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-telegram", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- acting as users -------------------------------------------------------------------------------

    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Clawunits Test", "username": self.bot_username}

    def user_says(self, chat: Chat, user: User, text: str) -> int:
        """Queue a ``message`` update from ``user`` in ``chat``; a leading /command gets its bot_command entity."""
        self._chats[chat.id] = chat
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": user.as_json(),
            "chat": chat.as_json(),
            "date": int(time.time()),
            "text": text,
        }
        if m := COMMAND_RE.match(text):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(m.group(0))}]
        return self.push_update({"message": message})

    def user_presses(self, user: User, message: Sent, data: str) -> int:
        """Queue a ``callback_query``: ``user`` pressed the inline button with callback ``data`` under ``message``."""
        chat = self._chat_json(message.chat_id)
        msg = {"message_id": message.message_id, "from": self.bot_user(), "chat": chat, "date": int(message.at)}
        if message.text is not None:
            msg["text"] = message.text
        query = {"id": str(next(self._update_ids)), "from": user.as_json(), "message": msg, "data": data}
        return self.push_update({"callback_query": {**query, "chat_instance": str(chat["id"])}})

    def push_update(self, payload: dict[str, Any]) -> int:
        """Queue any update (``payload`` without ``update_id``); returns its update_id."""
        with self._cond:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **payload})
            self._cond.notify_all()
        return update_id

    def pending_updates(self) -> list[int]:
        """The ids of updates no getUpdates offset has acknowledged yet."""
        with self._cond:
            return [u["update_id"] for u in self._updates if u["update_id"] >= self._confirmed]

    # -- what the bot did --------------------------------------------------------------------------------

    def fail_chat(self, chat_id: int, how: str) -> None:
        """Sends to ``chat_id`` from now on: ``blocked`` (403, as for a user who blocked the bot) or ``hang``
        (no answer until :meth:`release`)."""
        assert how in ("blocked", "hang")
        with self._cond:
            self._faults[str(chat_id)] = how
            self._released.clear()

    def release(self) -> None:
        """Faults end; hanging sends are answered (and recorded) now."""
        with self._cond:
            self._faults.clear()
        self._released.set()

    def mark(self) -> int:
        """An index for ``sent(after=...)`` / ``wait_for_message(after=...)``: only messages sent from now on."""
        with self._cond:
            return len(self.messages)

    def sent(self, chat_id: int | None = None, after: int = 0) -> list[Sent]:
        with self._cond:
            return [m for m in self.messages[after:] if chat_id is None or str(m.chat_id) == str(chat_id)]

    def methods_called(self) -> list[str]:
        with self._cond:
            return sorted({c.method for c in self.calls})

    def wait_for_message(
        self, chat_id: int | None = None, after: int = 0, timeout: float = 60, contains: str | None = None
    ) -> Sent:
        """The first message sent to ``chat_id`` at index >= ``after`` (with ``contains`` in its text)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages[after:]:
                    if chat_id is not None and str(m.chat_id) != str(chat_id):
                        continue
                    if contains is None or contains in (m.text or ""):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    shown = [(m.chat_id, m.text) for m in self.messages[after:]]
                    raise AssertionError(f"no message to {chat_id} within {timeout}s; sent since: {shown}")
                self._cond.wait(min(left, 1.0))

    # -- the Bot API --------------------------------------------------------------------------------------

    def _dispatch(self, path: str, content_type: str, body: bytes, query: str) -> tuple[int, dict[str, Any]]:
        m = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        if not m:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, method = m.groups()
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        try:
            params = parse_body(content_type, body, query)
        except ValueError as e:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {e}"}
        with self._cond:
            self.calls.append(Call(method=method, params=params, at=time.time()))
            fault = self._faults.get(str(params.get("chat_id"))) if method.startswith("send") else None
        if fault == "blocked":
            return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        if fault == "hang":
            self._released.wait(300)  # as a send Telegram never answers; this request's thread only
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            with self._cond:
                self.unknown_methods.add(method)
            return 200, {"ok": True, "result": True}
        with self._cond:
            result = handler(params)
            self._cond.notify_all()
        if isinstance(result, tuple):
            return result
        return 200, {"ok": True, "result": result}

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = min(float(params.get("timeout") or 0), LONG_POLL_CAP)
        deadline = time.monotonic() + timeout
        with self._cond:
            if offset:
                self._confirmed = max(self._confirmed, offset)
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while True:
                ready = [u for u in self._updates if u["update_id"] >= offset][:limit]
                left = deadline - time.monotonic()
                if ready or left <= 0 or self._stopping:
                    return ready
                self._cond.wait(left)

    def _chat_json(self, chat_id: Any) -> dict[str, Any]:
        try:
            chat = self._chats.get(int(chat_id))
        except (TypeError, ValueError):
            chat = None
        if chat is not None:
            return chat.as_json()
        cid = int(chat_id) if str(chat_id).lstrip("-").isdigit() else chat_id
        return {"id": cid, "type": "private" if isinstance(cid, int) and cid > 0 else "supergroup"}

    def _record(self, method: str, params: dict[str, Any], text: str | None) -> dict[str, Any]:
        sent = Sent(
            index=len(self.messages),
            method=method,
            chat_id=params.get("chat_id"),  # type: ignore[arg-type]
            message_id=next(self._message_ids),
            text=text,
            reply_markup=params.get("reply_markup"),
            params=params,
            at=time.time(),
        )
        self.messages.append(sent)
        out: dict[str, Any] = {
            "message_id": sent.message_id,
            "from": self.bot_user(),
            "chat": self._chat_json(sent.chat_id),
            "date": int(sent.at),
        }
        if text is not None:
            out["text"] = text
        if params.get("message_thread_id"):
            out["message_thread_id"] = params["message_thread_id"]
        if sent.reply_markup:
            out["reply_markup"] = sent.reply_markup
        return out

    def _find(self, params: dict[str, Any]) -> Sent | None:
        for m in reversed(self.messages):
            if str(m.chat_id) == str(params.get("chat_id")) and str(m.message_id) == str(params.get("message_id")):
                return m
        return None

    # Each _m_<method> runs under the lock and returns the result (or (status, answer) for an error).

    def _m_getMe(self, params: dict[str, Any]) -> Any:
        return {
            **self.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        self.commands[json.dumps([params.get("scope"), params.get("language_code")])] = params.get("commands")
        return True

    def _m_getMyCommands(self, params: dict[str, Any]) -> Any:
        return self.commands.get(json.dumps([params.get("scope"), params.get("language_code")]), [])

    def _m_deleteMyCommands(self, params: dict[str, Any]) -> Any:
        self.commands.pop(json.dumps([params.get("scope"), params.get("language_code")]), None)
        return True

    def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        return self._record("sendMessage", params, str(params.get("text", "")))

    def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        return self._record("sendPhoto", params, params.get("caption"))

    def _m_sendDocument(self, params: dict[str, Any]) -> Any:
        return self._record("sendDocument", params, params.get("caption"))

    def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        m = self._find(params)
        if m is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"}
        text = str(params.get("text", ""))
        if text == m.text and params.get("reply_markup") == m.reply_markup:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is not modified"}
        m.text = text
        m.edits.append(text)
        if "reply_markup" in params:
            m.reply_markup = params["reply_markup"]
        return {"message_id": m.message_id, "chat": self._chat_json(m.chat_id), "date": int(m.at), "text": text}

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        m = self._find(params)
        if m is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"}
        m.reply_markup = params.get("reply_markup")
        return {"message_id": m.message_id, "chat": self._chat_json(m.chat_id), "date": int(m.at), "text": m.text}

    def _m_deleteMessage(self, params: dict[str, Any]) -> Any:
        return True

    def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    def _m_setMessageReaction(self, params: dict[str, Any]) -> Any:
        return True

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    def _m_getChat(self, params: dict[str, Any]) -> Any:
        return self._chat_json(params.get("chat_id"))

    def _m_getChatMember(self, params: dict[str, Any]) -> Any:
        user_id = params.get("user_id")
        if str(user_id) == str(self.bot_id):
            return {"status": "administrator", "user": self.bot_user(), "can_be_edited": False}
        return {"status": "member", "user": {"id": int(user_id or 0), "is_bot": False, "first_name": "Member"}}
