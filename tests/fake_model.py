"""A loopback OpenAI-compatible chat-completions model for OpenClaw agent turns, steered by the user's text.

OpenClaw is pointed at it as provider ``fake`` (``model_config``). The newest real user message decides:

- ``[[tool: NAME {json}]]``: call tool NAME with that JSON input; once the tool's result is in, reply
  ``Here is what the tool said: <its first line>``;
- anything else: reply ``Model reply: <the text>`` (what the person typed, without OpenClaw's envelope).

OpenClaw appends an internal context message (``<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>``) after the user's
turn; it is not the user's turn and is skipped. OpenClaw 2026.9.6 does not take a post-tool text starting
"Tool result:" as a final answer (it asks once more, without tools, for "the final user-visible answer"):
hence the wording above; should it ask anyway, the tool's line is repeated. Every request is kept in
``requests`` (its ``tools`` list is what the agent could call for that sender).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INTERNAL = "<<<BEGIN_OPENCLAW_INTERNAL"
TOOL_RE = re.compile(r"\[\[tool:\s*([A-Za-z0-9_.-]+)\s*(\{.*?\})?\s*\]\]", re.S)
MODEL_ID = "fake-1"
CTX_MARK = "⟦openclaw:ctx⟧"
FINALIZE = "did not produce a user-visible answer"


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def typed(text: str) -> str:
    """What the person typed, without OpenClaw's envelope (a dated ctx JSON block before, a Runtime line after)."""
    if CTX_MARK in text and "```\n\n" in text:
        text = text.split("```\n\n", 1)[1]
    return text.split("\n\nRuntime:", 1)[0].strip()


def answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message (``content`` or ``tool_calls``) for this history."""
    saw_tool_result: str | None = None
    for m in reversed(messages):
        role, text = m.get("role"), text_of(m.get("content"))
        if role == "tool" and saw_tool_result is None:
            saw_tool_result = text
        if role == "user" and not text.lstrip().startswith(INTERNAL):
            break
    else:
        text = ""
    if saw_tool_result is None and FINALIZE in text:
        # OpenClaw's text-only pass after a tool turn whose answer it did not count as final: say it again.
        saw_tool_result = next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "tool"), None)
    if saw_tool_result is not None:
        first = next((line for line in saw_tool_result.splitlines() if line.strip()), "")
        return {"role": "assistant", "content": f"Here is what the tool said: {first}"}
    if m := TOOL_RE.search(text):
        call = {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function"}
        call["function"] = {"name": m.group(1), "arguments": m.group(2) or "{}"}
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"role": "assistant", "content": f"Model reply: {typed(text)[:200]}"}


class FakeModel:
    """The server: ``start()``, then merge ``model_config()`` into openclaw.json."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def model_config(self) -> dict[str, Any]:
        """openclaw.json keys: the provider, the agents' default model, plugin tools listed directly."""
        model = {"id": MODEL_ID, "name": "Fake", "input": ["text"], "contextWindow": 128000, "maxTokens": 4096}
        provider = {"baseUrl": self.url, "apiKey": "x", "api": "openai-completions", "models": [model]}
        return {
            "models": {"providers": {"fake": provider}},
            "agents": {"defaults": {"model": {"primary": f"fake/{MODEL_ID}"}}},
            # Else plugin tools hide behind tool_search / tool_call.
            "tools": {"toolSearch": False},
        }

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        return sorted(t.get("function", {}).get("name", "") for t in request.get("tools") or [])

    def start(self) -> FakeModel:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._json({"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(request)
                message = answer(request.get("messages") or [])
                finish = "tool_calls" if message.get("tool_calls") else "stop"
                usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
                base = {"id": f"chatcmpl-{uuid.uuid4().hex[:8]}", "created": int(time.time()), "model": MODEL_ID}
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if request.get("stream"):
                        self._stream(base, message, finish, usage)
                    else:
                        choice = {"index": 0, "message": message, "finish_reason": finish}
                        self._json({**base, "object": "chat.completion", "choices": [choice], "usage": usage})

            def _json(self, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, base: dict[str, Any], message: dict[str, Any], finish: str, usage: Any) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                delta = {k: v for k, v in message.items() if v is not None}
                if "tool_calls" in delta:
                    delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
                chunk = {**base, "object": "chat.completion.chunk"}
                for data in (
                    {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                    {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage},
                ):
                    self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-model", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
