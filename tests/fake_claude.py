#!/usr/bin/env python3
"""A stand-in ``claude`` executable for fault injection (pass it to claude-agent-sdk as ``cli_path``).

It speaks the SDK's stream-json protocol like Claude Code 2.1.330: the initialize handshake, per prompt a
``system/init``, assistant message(s) and exactly one ``result``; interrupt, set_model and set_permission_mode
are answered at once (stdin is read on its own thread). The reply is ``Fake reply: <first 80 chars>``.

Fault modes, chosen by directives in the prompt text (several may be combined):

``[[fake: crash]]``         print an assistant text, then exit 3 mid-turn with no result
``[[fake: hang]]``          print init, then never answer (control requests still acked; interrupt and stdin
                            EOF ignored) until killed
``[[fake: huge N]]``        one assistant text block of N bytes on a single stdout line
``[[fake: sleep S]]``       wait S seconds before the reply (an interrupt ends the turn early)
``[[fake: ignore-term]]``   ignore SIGTERM from now on (the turn itself answers normally)
``[[fake: stderr N]]``      print N lines to stderr
``[[fake: error]]``         an API-error style result (subtype success, is_error true, api_error_status 400)
``[[fake: argv]]``          reply with the JSON list of the command-line arguments
``[[fake: env NAME]]``      reply with the value of environment variable NAME
``[[fake: spawn]]``         leave background children behind as tools do: ``sleep 600 &`` from a shell, a
                            ``setsid nohup`` double fork, and a dev server (``python3 -m http.server``); the
                            reply is ``spawned PID PID PID``

``--max-budget-usd`` is honoured as the real CLI does (the turn that crosses it ends ``error_max_budget_usd``,
later turns fail at once). Costs are +0.001 per completed turn, cumulative for the process.
On stdin EOF it finishes queued turns and exits 0 (1 if the last result was an error, as the real CLI does).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

VERSION = "2.1.330"
COST_PER_TURN = 0.001
INTERRUPTED = "[Request interrupted by user]"
_FAKE = re.compile(r"\[\[\s*fake\s*:\s*([^\]]*?)\s*\]\]", re.IGNORECASE)

_out_lock = threading.Lock()


def emit(obj: dict[str, Any]) -> None:
    """Write one NDJSON line to stdout and flush."""
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def parse_args(argv: list[str]) -> dict[str, Any]:
    """Pick out the flags the fake cares about; everything else is accepted and ignored."""
    opts: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "resume": None,
        "fork": False,
        "session_id": None,
        "budget": None,
        "permission_mode": "default",
        "system_prompt": None,
        "append_system_prompt": None,
        "print": None,
        "version": False,
    }
    valued = {
        "--model": "model",
        "--resume": "resume",
        "-r": "resume",
        "--session-id": "session_id",
        "--max-budget-usd": "budget",
        "--permission-mode": "permission_mode",
        "--system-prompt": "system_prompt",
        "--append-system-prompt": "append_system_prompt",
    }
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if arg in ("-v", "--version"):
            opts["version"] = True
        elif arg == "--fork-session":
            opts["fork"] = True
        elif arg in ("-p", "--print"):
            opts["print"] = ""
            if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                opts["print"] = argv[i + 1]
                i += 1
        elif name in valued:
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
            opts[valued[name]] = value
        i += 1
    if opts["budget"] is not None:
        try:
            opts["budget"] = float(opts["budget"])
        except ValueError:
            opts["budget"] = None
    return opts


def prompt_text(message: dict[str, Any]) -> str:
    """The text of a ``user`` line's message content (a string or a list of blocks)."""
    content = (message.get("message") or {}).get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


class FakeClaude:
    """The process state: session, model, cost, and the turn currently running."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.opts = opts
        self.model: str = opts["model"]
        self.permission_mode: str = opts["permission_mode"]
        if opts["session_id"]:
            self.session_id = opts["session_id"]
        elif opts["resume"] and not opts["fork"]:
            self.session_id = opts["resume"]
        else:
            self.session_id = str(uuid.uuid4())
        self.total_cost = 0.0
        self.budget_spent = False
        self.last_error = False
        self.turns: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.interrupt = threading.Event()
        self.in_turn = threading.Event()
        self.emit_state = os.environ.get("CLAUDE_CODE_SDK_READS_SESSION_STATE") == "1"

    # -- stdin

    def read_stdin(self) -> None:
        """Reader thread: answer control requests at once, queue user lines, signal EOF with None."""
        for raw in sys.stdin:
            raw = raw.strip()
            if not raw:
                continue
            try:
                msg = json.loads(raw)
            except json.JSONDecodeError:
                print(f"fake_claude: bad stdin line: {raw[:200]}", file=sys.stderr, flush=True)
                continue
            kind = msg.get("type")
            if kind == "control_request":
                self.control(msg)
            elif kind == "user":
                self.turns.put(msg)
            # control_response / control_cancel_request / others: nothing to do
        self.turns.put(None)

    def control(self, msg: dict[str, Any]) -> None:
        request_id = msg.get("request_id")
        request = msg.get("request") or {}
        subtype = request.get("subtype")
        response: dict[str, Any]
        if subtype == "initialize":
            response = {
                "commands": [],
                "agents": [],
                "output_style": "default",
                "available_output_styles": ["default"],
                "models": [],
                "account": {},
                "pid": os.getpid(),
                "claude_code_version": VERSION,
                "current_permission_mode": self.permission_mode,
                "session_state": "idle",
                "capabilities": [],
            }
        elif subtype == "interrupt":
            response = {"still_queued": []}
        elif subtype == "set_model":
            self.model = request.get("model") or self.opts["model"]
            response = {"model": request.get("model")}
        elif subtype == "set_permission_mode":
            self.permission_mode = request.get("mode") or self.permission_mode
            response = {"mode": request.get("mode")}
        else:
            emit(
                {
                    "type": "control_response",
                    "response": {
                        "subtype": "error",
                        "request_id": request_id,
                        "error": f"fake_claude: unsupported control request {subtype!r}",
                    },
                }
            )
            return
        emit(
            {
                "type": "control_response",
                "response": {"subtype": "success", "request_id": request_id, "response": response},
            }
        )
        if subtype == "interrupt" and self.in_turn.is_set():
            self.interrupt.set()

    # -- turns

    def state(self, state: str) -> None:
        if self.emit_state:
            emit(
                {
                    "type": "system",
                    "subtype": "session_state_changed",
                    "state": state,
                    "sdk_host_only": True,
                    "uuid": str(uuid.uuid4()),
                    "session_id": self.session_id,
                }
            )

    def init(self) -> None:
        emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": os.getcwd(),
                "session_id": self.session_id,
                "tools": ["Bash", "Edit", "Read", "Write"],
                "mcp_servers": [],
                "model": self.model,
                "permissionMode": self.permission_mode,
                "slash_commands": [],
                "apiKeySource": "none",
                "claude_code_version": VERSION,
                "output_style": "default",
                "agents": [],
                "skills": [],
                "plugins": [],
                "uuid": str(uuid.uuid4()),
            }
        )

    def assistant(self, text: str) -> None:
        emit(
            {
                "type": "assistant",
                "message": {
                    "id": "msg_fake_" + uuid.uuid4().hex[:20],
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 100, "output_tokens": 10},
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )

    def result(self, started: float, text: str | None, *, subtype: str = "success", **extra: Any) -> None:
        is_error = bool(extra.pop("is_error", subtype != "success"))
        elapsed = int((time.monotonic() - started) * 1000)
        body: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": elapsed,
            "duration_api_ms": min(elapsed, 5),
            "num_turns": 1,
            "session_id": self.session_id,
            "stop_reason": "end_turn" if subtype == "success" else None,
            "total_cost_usd": round(self.total_cost, 6),
            "usage": {"input_tokens": 100, "output_tokens": 10},
            "modelUsage": {self.model: {"inputTokens": 100, "outputTokens": 10, "costUSD": COST_PER_TURN}},
            "permission_denials": [],
            "terminal_reason": "completed",
            "uuid": str(uuid.uuid4()),
        }
        if text is not None:
            body["result"] = text
        body.update(extra)
        self.last_error = is_error
        emit(body)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if an interrupt ended the wait."""
        return self.interrupt.wait(seconds)

    def run_turn(self, msg: dict[str, Any]) -> None:
        started = time.monotonic()
        text = prompt_text(msg)
        faults = [f.split(None, 1) for f in _FAKE.findall(text)]
        fault = {f[0].lower(): (f[1] if len(f) > 1 else "") for f in faults if f}
        self.interrupt.clear()
        self.in_turn.set()
        self.state("running")
        try:
            self.init()
            if "ignore-term" in fault:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if "stderr" in fault:
                for i in range(int(_num(fault["stderr"], 10))):
                    print(f"fake_claude stderr line {i + 1}", file=sys.stderr)
                sys.stderr.flush()
            if self.budget_spent:
                self.budget_result(started)
                return
            if "hang" in fault:
                while True:
                    time.sleep(3600)
            if "sleep" in fault and self.wait(_num(fault["sleep"], 1.0)):
                self.interrupted(started)
                return
            reply = self.reply_text(text, fault)
            if "crash" in fault:
                self.assistant(reply)
                sys.stderr.write("fake_claude: crashing on request\n")
                sys.stderr.flush()
                os._exit(3)
            self.assistant(reply)
            if self.interrupt.is_set():
                self.interrupted(started)
                return
            self.total_cost += COST_PER_TURN
            if "error" in fault:
                self.result(
                    started,
                    "API Error: 400 fake error",
                    is_error=True,
                    api_error_status=400,
                    terminal_reason="api_error",
                )
            elif self.opts["budget"] is not None and self.total_cost >= self.opts["budget"]:
                self.budget_spent = True
                self.budget_result(started)
            else:
                self.result(started, reply)
        finally:
            self.in_turn.clear()
            self.state("idle")

    def reply_text(self, text: str, fault: dict[str, str]) -> str:
        if "huge" in fault:
            return "x" * int(_num(fault["huge"], 2_000_000))
        if "argv" in fault:
            return json.dumps(sys.argv[1:])
        if "env" in fault:
            return os.environ.get(fault["env"].strip(), "")
        if "spawn" in fault:
            return "spawned " + " ".join(map(str, spawn_strays()))
        return "Fake reply: " + text[:80]

    def interrupted(self, started: float) -> None:
        emit(
            {
                "type": "user",
                "message": {"role": "user", "content": [{"type": "text", "text": INTERRUPTED}]},
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )
        self.result(
            started,
            None,
            subtype="error_during_execution",
            terminal_reason="aborted_streaming",
            errors=["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],
        )

    def budget_result(self, started: float) -> None:
        self.result(
            started,
            None,
            subtype="error_max_budget_usd",
            terminal_reason="budget_exhausted",
            errors=[f"Reached maximum budget (${self.opts['budget']})"],
        )

    def serve(self) -> int:
        threading.Thread(target=self.read_stdin, name="stdin", daemon=True).start()
        while (msg := self.turns.get()) is not None:
            self.run_turn(msg)
        return 1 if self.last_error else 0


def spawn_strays() -> list[int]:
    """Start the kinds of background children a tool leaves behind; returns their pids (not our children:
    each one is orphaned through a shell that exits, as with a Bash tool's ``cmd &``)."""
    scripts = [
        "sleep 600 >/dev/null 2>&1 & echo $!",
        "setsid nohup sleep 600 >/dev/null 2>&1 & echo $!",
        "python3 -m http.server 0 --bind 127.0.0.1 >/dev/null 2>&1 & echo $!",
    ]
    pids = []
    for script in scripts:
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
        pids.append(int(out.split()[0]))
    return pids


def _num(text: str, default: float) -> float:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return default


def main() -> int:
    opts = parse_args(sys.argv[1:])
    if opts["version"]:
        print(f"{VERSION} (Claude Code)", flush=True)
        return 0
    fake = FakeClaude(opts)
    if opts["print"]:
        fake.turns.put({"type": "user", "message": {"role": "user", "content": opts["print"]}})
        fake.turns.put(None)
        while (msg := fake.turns.get()) is not None:
            fake.run_turn(msg)
        return 1 if fake.last_error else 0
    return fake.serve()


if __name__ == "__main__":
    sys.exit(main())
