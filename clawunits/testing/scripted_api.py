"""A scripted Anthropic Messages API on loopback, for tests, benchmarks and the offline demo.

The real Claude Code CLI runs against it with ``ANTHROPIC_BASE_URL`` pointing here. What it answers is
decided by directives written in the user's prompt, so a test in one process can steer a CLI in another:

==============================  ===========================================================================
``[[text: SOMETHING]]``         reply exactly SOMETHING
``[[bash: COMMAND]]``           reply one ``Bash`` tool_use running COMMAND (stop_reason ``tool_use``)
``[[bash2: CMD1 ;; CMD2]]``     two Bash rounds: CMD1, then after its result CMD2 (no ``;;``: same twice)
``[[tool: NAME {json}]]``       reply one tool_use block NAME with that JSON object as input
``[[slow: SECONDS]]``           stream the reply in ~20 deltas spread over SECONDS
``[[long: N]]``                 reply a deterministic text of exactly N characters
``[[ask]]``                     reply ``I can do A or B. Which option do you prefer?``
``[[plan: P1 ;; P2 ...]]``      plan mode: write plan P1 to the plan file, call ``ExitPlanMode``; see below
``[[error: STATUS]]``           answer HTTP STATUS with an Anthropic error body and ``x-should-retry: false``
``[[error: STATUS retry]]``     the same with ``x-should-retry: true`` (the CLI retries ~10 times, minutes)
``[[error: STATUS once]]``      fail only the first request for this prompt (retryable), then reply normally
(none)                          reply ``Scripted reply: <first 80 chars of the prompt>``
==============================  ===========================================================================

Only the newest directive-bearing text counts (the CLI adds ``<system-reminder>`` blocks and merges an
interrupted prompt into the next one). A request whose newest user message carries ``tool_result`` blocks
is answered ``Tool result: <first non-empty line>`` unless a ``bash2`` round is still owed.
``[[text: …]]`` combined with a tool directive gives a text block followed by the tool_use block.

``[[plan: …]]`` plays a model in plan mode, as Claude Code 2.1 expects it: it writes the plan to the plan file
the CLI names in its plan-mode reminder (``Write``, the one edit plan mode allows), then calls ``ExitPlanMode``
(the CLI reads the plan from that file). Rejected (an error result), it writes the next plan (``;;``
separates them) with the first line of the feedback appended as ``(revised after: …)`` and asks again; with no
plan left it ends the turn quoting the feedback. Approved, it carries out the prompt's other directives
(``[[tool: Write …]]``, ``[[bash: …]]``, ``[[text: …]]``). Without a plan file in the request it passes the
plan in ``ExitPlanMode``'s input instead.

Run standalone with ``python -m clawunits.testing.scripted_api [--host 127.0.0.1] [--port 8765] [--log FILE]``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

INPUT_TOKENS = 100
OUTPUT_TOKENS = 10
SLOW_DELTAS = 20
ASK_TEXT = "I can do A or B. Which option do you prefer?"
INTERRUPTED_MARKER = "[Request interrupted by user"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
KNOWN = ("text", "bash2", "bash", "tool", "slow", "long", "ask", "error", "plan")
PLAN_TOOL = "ExitPlanMode"
# Where Claude Code's plan-mode reminder says the plan file is (new, existing, or after plan mode).
_PLAN_FILE = re.compile(r"(?:create your plan at|plan file already exists at|plan file is located at) (/\S+?\.md)\b")

_DIRECTIVE_START = re.compile(r"\[\[\s*(" + "|".join(KNOWN) + r")\s*(?::|(?=\]\]))", re.IGNORECASE)
_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|$)", re.DOTALL)
_WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
)


# ---------------------------------------------------------------------------------------------------------
# Directives and the reply plan


@dataclass
class Plan:
    """What to answer to one request."""

    text: str | None = None
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    slow: float = 0.0
    error_status: int | None = None
    error_mode: str = ""  # "" (no retry), "retry" (CLI may retry, all fail) or "once" (first attempt fails)
    key: str = ""  # identifies the prompt, for "once"

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tools else "end_turn"


def find_directives(text: str) -> list[tuple[str, str]]:
    """Return ``(name, argument)`` for each directive in ``text``, in order; names are lower case.

    An argument runs to the first ``]]``, except for ``tool`` whose JSON object is parsed whole (so it may
    itself contain ``]]``).
    """
    found: list[tuple[str, str]] = []
    pos = 0
    while (m := _DIRECTIVE_START.search(text, pos)) is not None:
        name = m.group(1).lower()
        start = m.end()
        if name == "tool":
            arg, end = _scan_tool(text, start)
        else:
            close = text.find("]]", start)
            if close < 0:
                break
            arg, end = text[start:close].strip(), close + 2
        if end < 0:
            pos = start
            continue
        found.append((name, arg))
        pos = end
    return found


def _scan_tool(text: str, start: int) -> tuple[str, int]:
    """Scan ``NAME {json}]]`` from ``start``; return the raw argument and the index after ``]]`` (or -1)."""
    brace = text.find("{", start)
    close = text.find("]]", start)
    if brace < 0 or (0 <= close < brace):
        return (text[start:close].strip(), close + 2) if close >= 0 else ("", -1)
    try:
        _, json_end = json.JSONDecoder().raw_decode(text, brace)
    except json.JSONDecodeError:
        return (text[start:close].strip(), close + 2) if close >= 0 else ("", -1)
    close = text.find("]]", json_end)
    if close < 0 or text[json_end:close].strip():
        return "", -1
    return text[start:json_end].strip(), close + 2


def parse_tool_arg(arg: str) -> tuple[str, dict[str, Any]]:
    """Split ``NAME {json}`` into the tool name and its input (``{}`` when absent or not an object)."""
    name, _, rest = arg.strip().partition(" ")
    rest = rest.strip()
    if "{" in name:  # "Name{...}" with no space
        name, _, tail = name.partition("{")
        rest = "{" + tail + (" " + rest if rest else "")
    try:
        data = json.loads(rest) if rest else {}
    except json.JSONDecodeError:
        data = {}
    return name or "Tool", data if isinstance(data, dict) else {"value": data}


def long_text(n: int) -> str:
    """A deterministic text of exactly ``n`` characters: NATO words, eight to a line."""
    parts: list[str] = []
    size = 0
    i = 0
    while size < n:
        word = _WORDS[i % len(_WORDS)]
        sep = "\n" if i % 8 == 7 else " "
        parts.append(word + sep)
        size += len(word) + 1
        i += 1
    return "".join(parts)[:n]


def bash_input(command: str) -> dict[str, Any]:
    return {"command": command, "description": "scripted"}


def plan_from_directives(directives: list[tuple[str, str]], prompt: str) -> Plan:
    """Turn the directives of one prompt into a plan for its first reply."""
    plan = Plan()
    text: str | None = None
    long_n: int | None = None
    ask = False
    for name, arg in directives:
        if name == "text":
            text = arg
        elif name == "bash":
            plan.tools.append(("Bash", bash_input(arg)))
        elif name == "bash2":
            plan.tools.append(("Bash", bash_input(split_bash2(arg)[0])))
        elif name == "tool":
            plan.tools.append(parse_tool_arg(arg))
        elif name == "slow":
            plan.slow = _number(arg, 0.0)
        elif name == "long":
            long_n = max(0, int(_number(arg, 0)))
        elif name == "ask":
            ask = True
        elif name == "plan":
            continue  # played by plan_mode_reply
        elif name == "error":
            plan.error_status = int(_number(arg, 500))
            plan.error_mode = next((w for w in arg.lower().split()[1:] if w in ("retry", "once")), "")
    if text is not None:
        plan.text = text
    elif long_n is not None:
        plan.text = long_text(long_n)
    elif ask:
        plan.text = ASK_TEXT
    elif not plan.tools:
        plan.text = "Scripted reply: " + prompt[:80]
    return plan


def split_bash2(arg: str) -> tuple[str, str]:
    first, sep, second = arg.partition(";;")
    return (first.strip(), second.strip()) if sep else (arg, arg)


def _number(arg: str, default: float) -> float:
    try:
        return float(arg.split()[0])
    except (ValueError, IndexError):
        return default


# ---------------------------------------------------------------------------------------------------------
# Reading the conversation


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _visible(text: str) -> str:
    """Text without ``<system-reminder>`` sections."""
    return _REMINDER.sub("", text).strip()


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def first_line(text: str, limit: int = 200) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def _newest_directive_text(blocks: list[dict[str, Any]]) -> tuple[str, list[tuple[str, str]]] | None:
    """The newest text block (by position) that carries directives, with them; None if there is none.

    A block holding several prompts (a merged interrupted prompt) is cut at its last
    ``[Request interrupted by user`` marker first, so only the newest prompt counts.
    """
    for block in reversed(blocks):
        if block.get("type") != "text":
            continue
        text = _visible(str(block.get("text", "")))
        cut = text.rfind(INTERRUPTED_MARKER)
        if cut >= 0:
            tail = text[cut:].partition("]")[2]
            if find_directives(tail):
                text = tail
        directives = find_directives(text)
        if directives:
            return text, directives
    return None


def _prompt_text(blocks: list[dict[str, Any]]) -> str:
    """The newest non-empty visible text of a user message (for the default reply)."""
    for block in reversed(blocks):
        if block.get("type") == "text":
            text = _visible(str(block.get("text", "")))
            if text and not text.startswith(INTERRUPTED_MARKER):
                return text
    return ""


def plan_for(body: dict[str, Any]) -> Plan:
    """Decide the reply to one ``/v1/messages`` request body."""
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return Plan(text="Scripted reply: ")
    blocks = _blocks(users[-1])
    results = [i for i, b in enumerate(blocks) if b.get("type") == "tool_result"]
    if not results:
        found = _newest_directive_text(blocks)
        if found is None:
            return plan_from_directives([], _prompt_text(blocks))
        if _has_plan(found[1]):
            return plan_mode_reply(body, found[1], found[0], [])
        plan = plan_from_directives(found[1], found[0])
        plan.key = f"{len(body.get('messages') or [])}:{found[0]}"
        return plan
    # A tool round came back. A directive text placed after the results is a new prompt.
    after = _newest_directive_text(blocks[results[-1] + 1 :])
    if after is not None:
        if _has_plan(after[1]):
            return plan_mode_reply(body, after[1], after[0], [])
        return plan_from_directives(after[1], after[0])
    reply = Plan(text="Tool result: " + first_line(_visible(_result_text(blocks[results[-1]]))))
    # Walk back to the prompt that started this tool loop; continue a bash2 if its second round is owed.
    rounds = 0
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "user":
            continue
        mblocks = _blocks(message)
        if any(b.get("type") == "tool_result" for b in mblocks):
            rounds += 1
        found = _newest_directive_text(mblocks)
        if found is None:
            continue
        if _has_plan(found[1]):
            return plan_mode_reply(body, found[1], found[0], messages[index + 1 :])
        bash2 = [arg for name, arg in found[1] if name == "bash2"]
        if bash2 and rounds < 2:
            return Plan(tools=[("Bash", bash_input(split_bash2(bash2[-1])[1]))])
        break
    return reply


def _has_plan(directives: list[tuple[str, str]]) -> bool:
    return any(name == "plan" for name, _ in directives)


def plan_file(body: dict[str, Any]) -> str | None:
    """The plan file Claude Code's newest plan-mode reminder names, if any."""
    found = _PLAN_FILE.findall(_all_text(body))
    return found[-1] if found else None


def _all_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    parts = [system] if isinstance(system, str) else [str(b.get("text", "")) for b in _blocks({"content": system})]
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            parts += [str(b.get("text", "")) for b in _blocks(message) if b.get("type") == "text"]
    return "\n".join(parts)


def plan_mode_reply(
    body: dict[str, Any], directives: list[tuple[str, str]], prompt: str, since: list[dict[str, Any]]
) -> Plan:
    """The next step of a ``[[plan: …]]`` prompt, from the tool rounds ``since`` it (see the module doc)."""
    variants = [v.strip() for v in next(arg for name, arg in directives if name == "plan").split(";;")]
    uses = {
        str(b.get("id")): b
        for m in since
        if m.get("role") == "assistant"
        for b in _blocks(m)
        if b.get("type") == "tool_use"
    }
    rounds = [
        (str(uses.get(str(b.get("tool_use_id")), {}).get("name", "")), b)
        for m in since
        if m.get("role") == "user"
        for b in _blocks(m)
        if b.get("type") == "tool_result"
    ]
    answers = [r for name, r in rounds if name == PLAN_TOOL]
    path = plan_file(body)

    def propose(text: str) -> Plan:
        if path:
            return Plan(tools=[("Write", {"file_path": path, "content": text})])
        return Plan(tools=[(PLAN_TOOL, {"plan": text})])

    if any(not r.get("is_error") for r in answers):
        # Approved: carry out the rest of the prompt, then report tool results as usual.
        if rounds[-1][0] == PLAN_TOOL:
            rest = [(n, a) for n, a in directives if n != "plan"]
            return plan_from_directives(rest, prompt) if rest else Plan(text="Plan approved.")
        return Plan(text="Tool result: " + first_line(_visible(_result_text(rounds[-1][1]))))
    if not rounds:
        return propose(variants[0])
    if rounds[-1][0] == PLAN_TOOL:
        feedback = _feedback(_result_text(rounds[-1][1]))
        if len(answers) >= len(variants):
            return Plan(text=f"Plan rejected: {feedback}")
        return propose(f"{variants[len(answers)]}\n\n(revised after: {feedback})")
    # The plan file was written: ask for approval (the CLI puts the file's text in the input).
    return Plan(tools=[(PLAN_TOOL, {})])


def _feedback(result: str) -> str:
    """The first line of what the user said in a rejection (the runner prefixes it with a line of its own)."""
    lines = [ln.strip() for ln in _visible(result).splitlines() if ln.strip()]
    said = [ln for ln in lines if not ln.startswith(("The user rejected", "Stay in plan mode"))]
    return (said or lines or [""])[0][:200]


# ---------------------------------------------------------------------------------------------------------
# Building the response


def _usage(output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _content(plan: Plan) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if plan.text is not None:
        blocks.append({"type": "text", "text": plan.text})
    for name, tool_input in plan.tools:
        blocks.append(
            {
                "type": "tool_use",
                "id": "toolu_scripted_" + uuid.uuid4().hex[:20],
                "name": name,
                "input": tool_input,
            }
        )
    return blocks


def message_json(plan: Plan, model: str) -> dict[str, Any]:
    """The non-streaming ``message`` object for ``plan``."""
    return {
        "id": "msg_scripted_" + uuid.uuid4().hex[:20],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content(plan),
        "stop_reason": plan.stop_reason,
        "stop_sequence": None,
        "usage": _usage(OUTPUT_TOKENS),
    }


def _chunks(text: str, pieces: int) -> list[str]:
    if not text:
        return [""]
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class SSEEvent:
    """One server-sent event, plus a delay to wait before sending it."""

    name: str
    data: dict[str, Any]
    delay: float = 0.0

    def encode(self) -> bytes:
        return f"event: {self.name}\ndata: {json.dumps(self.data)}\n\n".encode()


def sse_events(plan: Plan, model: str) -> Iterator[SSEEvent]:
    """The Anthropic streaming event sequence for ``plan``; ``plan.slow`` spreads the deltas over time."""
    message = message_json(plan, model)
    content = message.pop("content")
    message.update(content=[], stop_reason=None, usage=_usage(1))
    yield SSEEvent("message_start", {"type": "message_start", "message": message})
    yield SSEEvent("ping", {"type": "ping"})
    text_pieces = SLOW_DELTAS if plan.slow > 0 else max(1, min(50, len(plan.text or "") // 4000 + 1))
    n_deltas = sum(len(_chunks(b["text"], text_pieces)) if b["type"] == "text" else 1 for b in content)
    delay = plan.slow / max(1, n_deltas) if plan.slow > 0 else 0.0
    for index, block in enumerate(content):
        start: dict[str, Any]
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"], text_pieces)]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"])
            cut = len(raw) // 2
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in (raw[:cut], raw[cut:])]
        yield SSEEvent("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        for i, delta in enumerate(deltas):
            wait = delay if block["type"] == "text" or i == 0 else 0.0
            yield SSEEvent("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}, wait)
        yield SSEEvent("content_block_stop", {"type": "content_block_stop", "index": index})
    yield SSEEvent(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": OUTPUT_TOKENS},
        },
    )
    yield SSEEvent("message_stop", {"type": "message_stop"})


def error_body(status: int) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": f"scripted error {status}"}}


# ---------------------------------------------------------------------------------------------------------
# The server


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ScriptedAPI/1.0"
    timeout = 120
    api: ScriptedAPI  # set on the per-instance subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        self.api._record(self, body)
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/messages/count_tokens":
            self._send_json(200, {"input_tokens": INPUT_TOKENS})
        elif path == "/v1/messages" and isinstance(body, dict):
            self._messages(body)
        else:
            self._send_json(200, {})

    def _other(self) -> None:
        self.api._record(self, None)
        self._send_json(200, {}, with_body=self.command != "HEAD")

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other

    def _messages(self, body: dict[str, Any]) -> None:
        plan = plan_for(body)
        model = str(body.get("model") or "claude-sonnet-4-5")
        if plan.error_status is not None and plan.error_mode == "once" and not self.api._first_time(plan.key):
            plan.error_status = None
        if plan.error_status is not None:
            retry = "true" if plan.error_mode else "false"
            self._send_json(plan.error_status, error_body(plan.error_status), should_retry=retry)
        elif body.get("stream"):
            self._stream(plan, model)
        else:
            if plan.slow > 0:
                time.sleep(plan.slow)
            self._send_json(200, message_json(plan, model))

    def _common_headers(self) -> None:
        self.send_header("request-id", "req_scripted_" + uuid.uuid4().hex[:20])
        self.send_header("anthropic-organization-id", "00000000-0000-0000-0000-000000000000")

    def _send_json(
        self, status: int, payload: dict[str, Any], with_body: bool = True, should_retry: str | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._common_headers()
        if should_retry is not None:
            self.send_header("x-should-retry", should_retry)
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def _stream(self, plan: Plan, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self._common_headers()
        self.end_headers()
        try:
            for event in sse_events(plan, model):
                if event.delay > 0:
                    time.sleep(event.delay)
                self.wfile.write(event.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client went away (an interrupt); stop quietly
        self.close_connection = True


class ScriptedAPI:
    """A scripted Messages API served from a daemon thread; use as a context manager or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None) -> None:
        self.host = check_loopback(host)
        self.port = port
        self.log_path = Path(log_path) if log_path is not None else None
        self._requests: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every request so far: ``method``, ``path``, ``json``, ``headers``, ``time``."""
        with self._cond:
            return list(self._requests)

    def messages_requests(self) -> list[dict[str, Any]]:
        """Only the ``POST /v1/messages`` requests."""
        return [r for r in self.requests if r["method"] == "POST" and r["path"].split("?")[0] == "/v1/messages"]

    def start(self) -> ScriptedAPI:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"api": self})
        server_cls = _Server6 if ":" in self.host else ThreadingHTTPServer
        self._server = server_cls((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` requests arrived and return them; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._requests)} of {n} requests after {timeout} s")
                self._cond.wait(left)
            return list(self._requests)

    def _first_time(self, key: str) -> bool:
        """True the first time ``key`` is seen by this server."""
        with self._cond:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        headers = {k.lower(): ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in handler.headers.items()}
        entry = {
            "method": handler.command,
            "path": handler.path,
            "json": body,
            "headers": headers,
            "time": time.time(),
        }
        with self._cond:
            self._requests.append(entry)
            if self.log_path is not None:
                with self.log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")
            self._cond.notify_all()


def check_loopback(host: str) -> str:
    """Return ``host`` (``localhost`` becomes ``127.0.0.1``) or raise ValueError if it is not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f"refusing to listen on non-loopback host {host!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clawunits.testing.scripted_api", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port, 0 for any free one (default 8765)")
    parser.add_argument("--log", type=Path, default=None, help="append every request to FILE as JSON lines")
    args = parser.parse_args(argv)
    try:
        api = ScriptedAPI(args.host, args.port, args.log)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with api:
        print(f"listening on {api.url}", flush=True)
        while not stop.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
