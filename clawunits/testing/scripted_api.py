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
``[[limit: warning W U]]``      reply normally, with the headers of usage window W (five_hour, seven_day) at
                                utilization U (default five_hour 0.91): Claude Code's ``allowed_warning``
``[[limit: rejected W S]]``     window W is exhausted for S seconds (default five_hour 5) from the first request
                                for this prompt: until then every request is refused with a 429 carrying the
                                ``rejected`` headers (Claude Code's usage-limit refusal), afterwards answered
(none)                          reply ``Scripted reply: <first 80 chars of the prompt>``
==============================  ===========================================================================

Claude Code reads the ``anthropic-ratelimit-unified-*`` headers only for a claude.ai subscription or a Claude
gateway token (``ANTHROPIC_AUTH_TOKEN``, a JWT whose ``aud`` is ``claude-gateway``, with ``ANTHROPIC_BASE_URL``
not api.anthropic.com): ``gateway_token()`` makes one for tests of usage limits.

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
import base64
import ipaddress
import json
import math
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from clawunits.testing.conversation import plan_for
from clawunits.testing.directives import INPUT_TOKENS, SECRET_HEADERS, WINDOWS, Plan
from clawunits.testing.replies import error_body, message_json, sse_events


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
        if plan.limit == "rejected" and self.api._first_time("limit:" + plan.key.partition(":")[2]):
            self.api.exhaust(plan.limit_window, plan.limit_value)
        headers: dict[str, str] = {}
        if plan.limit == "warning":
            headers = limit_headers(plan.limit_window, "allowed_warning", plan.limit_value, time.time() + 3600)
        if (exhausted := self.api.exhausted()) is not None:
            window, reset = exhausted
            refused = limit_headers(window, "rejected", 1.0, reset)
            refused["retry-after"] = str(max(1, math.ceil(reset - time.time())))
            self._send_json(429, error_body(429), should_retry="false", headers=refused)
        elif plan.error_status is not None:
            retry = "true" if plan.error_mode else "false"
            self._send_json(plan.error_status, error_body(plan.error_status), should_retry=retry)
        elif body.get("stream"):
            self._stream(plan, model, headers)
        else:
            if plan.slow > 0:
                time.sleep(plan.slow)
            self._send_json(200, message_json(plan, model), headers=headers)

    def _common_headers(self) -> None:
        self.send_header("request-id", "req_scripted_" + uuid.uuid4().hex[:20])
        self.send_header("anthropic-organization-id", "00000000-0000-0000-0000-000000000000")

    def _send_json(
        self,
        status: int,
        payload: dict[str, Any],
        with_body: bool = True,
        should_retry: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._common_headers()
        if should_retry is not None:
            self.send_header("x-should-retry", should_retry)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def _stream(self, plan: Plan, model: str, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self._common_headers()
        for name, value in headers.items():
            self.send_header(name, value)
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
        self._exhausted: dict[str, float] = {}  # usage window -> when it resets (epoch seconds)
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

    def exhaust(self, window: str, seconds: float) -> float:
        """Exhaust a usage window for ``seconds`` (rounded up to a whole second, as the headers carry it):
        every Messages request is refused with a 429 until then. Returns the reset time."""
        reset = float(math.ceil(time.time() + seconds))
        with self._cond:
            self._exhausted[window] = reset
        return reset

    def reset_limits(self) -> None:
        """Every usage window allows requests again (between tests sharing one server)."""
        with self._cond:
            self._exhausted.clear()

    def exhausted(self) -> tuple[str, float] | None:
        """The usage window exhausted now, with its reset time; None when every window allows requests."""
        now = time.time()
        with self._cond:
            for window, reset in self._exhausted.items():
                if reset > now:
                    return window, reset
        return None

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


def limit_headers(window: str, status: str, utilization: float, reset: float) -> dict[str, str]:
    """The ``anthropic-ratelimit-unified-*`` headers of a response, as Claude Code reads them: the overall
    status, reset and the window that decides it (``representative-claim``), and that window's own reading
    (``-5h-utilization``, ``-5h-reset``, ``-5h-status``, ``-5h-surpassed-threshold`` for a warning)."""
    abbr = WINDOWS[window]
    at = str(int(reset))
    headers = {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": at,
        "anthropic-ratelimit-unified-representative-claim": window,
        f"anthropic-ratelimit-unified-{abbr}-utilization": f"{utilization:g}",
        f"anthropic-ratelimit-unified-{abbr}-reset": at,
        f"anthropic-ratelimit-unified-{abbr}-status": status,
    }
    if status == "allowed_warning":
        headers[f"anthropic-ratelimit-unified-{abbr}-surpassed-threshold"] = "0.9" if window == "five_hour" else "0.75"
    return headers


def gateway_token() -> str:
    """An (unsigned) Claude gateway token: with it as ``ANTHROPIC_AUTH_TOKEN`` Claude Code reads the usage-limit
    headers, which it ignores for a plain API key."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'aud': 'claude-gateway', 'sub': 'scripted'})}.scripted"


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
