"""Tests for the scripted Messages API (also against the real bundled CLI) and for tests/fake_claude.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import claude_agent_sdk
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ResultMessage,
    SystemMessage,
    TextBlock,
    UserMessage,
)

from clawunits.testing.conversation import plan_for
from clawunits.testing.directives import ASK_TEXT, find_directives, long_text
from clawunits.testing.scripted_api import ScriptedAPI, check_loopback

REPO = Path(__file__).resolve().parent.parent
FAKE_CLAUDE = Path(__file__).resolve().parent / "fake_claude.py"
BUNDLED_CLI = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
MODEL = "claude-sonnet-4-5"


def test_the_bundled_claude_code_cli_is_installed() -> None:
    # claude-agent-sdk is a pinned dependency and ships the CLI: its absence is a failure, never a skip.
    assert BUNDLED_CLI.exists(), f"{BUNDLED_CLI} is missing: reinstall claude-agent-sdk"


# --------------------------------------------------------------------------------------------------------
# Helpers


def user(*blocks: Any) -> dict[str, Any]:
    return {
        "role": "user",
        "content": list(blocks) if len(blocks) != 1 or not isinstance(blocks[0], str) else blocks[0],
    }


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def reminder(t: str) -> dict[str, Any]:
    return text(f"<system-reminder>\n{t}\n</system-reminder>")


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"x-api-key": "sk-secret", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in raw.decode().split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def cli_env(api: ScriptedAPI, tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "config").mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "config"),
        "ANTHROPIC_BASE_URL": api.url,
        "ANTHROPIC_API_KEY": "sk-ant-dummy",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    env.update(extra)
    return env


def run_cli(api: ScriptedAPI, tmp_path: Path, prompt: str, *args: str, **env: str) -> list[dict[str, Any]]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    proc = subprocess.run(
        [
            str(BUNDLED_CLI),
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            MODEL,
            *args,
        ],
        cwd=work,
        env=cli_env(api, tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["type"] == "result", (
        proc.returncode,
        proc.stdout[-2000:],
        proc.stderr[-2000:],
    )
    return lines


# --------------------------------------------------------------------------------------------------------
# Directive parsing and reply plans (no network)


def test_find_directives() -> None:
    found = find_directives("a [[text: hi there]] [[ASK]] [[bash: [ -f x ] && echo y]] [[fake: crash]] [[slow:2]]")
    assert found == [("text", "hi there"), ("ask", ""), ("bash", "[ -f x ] && echo y"), ("slow", "2")]
    assert find_directives('[[tool: Write {"file_path": "/x", "content": "a]] b"}]]') == [
        ("tool", 'Write {"file_path": "/x", "content": "a]] b"}')
    ]


def test_plan_default_and_reminders() -> None:
    body = {"messages": [user(reminder("[[text: not me]]"), text("say hello"))]}
    assert plan_for(body).text == "Scripted reply: say hello"
    assert plan_for({"messages": [user("x" * 100)]}).text == "Scripted reply: " + "x" * 80


def test_plan_directives() -> None:
    plan = plan_for({"messages": [user('[[tool: AskUserQuestion {"questions": []}]]')]})
    assert plan.tools == [("AskUserQuestion", {"questions": []})] and plan.stop_reason == "tool_use"
    plan = plan_for({"messages": [user("[[bash: ls -l]]")]})
    assert plan.text is None and plan.tools == [("Bash", {"command": "ls -l", "description": "scripted"})]
    plan = plan_for({"messages": [user("[[slow: 3]] [[text: x]]")]})
    assert (plan.slow, plan.text, plan.stop_reason) == (3.0, "x", "end_turn")
    assert plan_for({"messages": [user("[[ask]]")]}).text == ASK_TEXT
    assert plan_for({"messages": [user("[[error: 401]]")]}).error_status == 401
    assert len(long_text(12345)) == 12345 and long_text(100) == long_text(100)
    assert plan_for({"messages": [user("[[long: 300]]")]}).text == long_text(300)


def test_plan_merged_interrupted_prompt_uses_newest() -> None:
    body = {
        "messages": [
            user(text("first [[slow: 6]] [[text: slow one]]")),
            {"role": "assistant", "content": [text("sl")]},
            user(reminder("r"), text("[Request interrupted by user]\n"), text("second [[text: after]]")),
        ]
    }
    plan = plan_for(body)
    assert (plan.text, plan.slow) == ("after", 0.0)
    merged = {"messages": [user("one [[text: old]]\n[Request interrupted by user]\ntwo [[text: new]]")]}
    assert plan_for(merged).text == "new"


def test_plan_reads_consecutive_user_messages_as_one_turn() -> None:
    # OpenClaw sends its internal context as a second user message after the prompt and after tool results.
    context = user("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nnone\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>")
    plan = plan_for({"messages": [user("[[tool: claude_sessions {}]] list them"), context]})
    assert plan.tools == [("claude_sessions", {})]
    use = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "claude_sessions", "input": {}}]}
    result = user({"type": "tool_result", "tool_use_id": "t1", "content": "No sessions found."})
    plan = plan_for({"messages": [user("[[tool: claude_sessions {}]]"), use, result, context]})
    assert plan.text == "Tool result: No sessions found."


def test_plan_tool_results_and_bash2() -> None:
    tool_use = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}],
    }
    result = user({"type": "tool_result", "tool_use_id": "t1", "content": "\n\nline one\nline two"})
    plan = plan_for({"messages": [user("[[bash: echo]]"), tool_use, result]})
    assert (plan.text, plan.stop_reason) == ("Tool result: line one", "end_turn")
    first = plan_for({"messages": [user("[[bash2: echo a ;; echo b]]")]})
    assert first.tools[0][1]["command"] == "echo a"
    second = plan_for({"messages": [user("[[bash2: echo a ;; echo b]]"), tool_use, result]})
    assert second.tools[0][1]["command"] == "echo b"
    done = plan_for({"messages": [user("[[bash2: echo a ;; echo b]]"), tool_use, result, tool_use, result]})
    assert done.text == "Tool result: line one"


def _use(tid: str, name: str, tool_input: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "tool_use", "id": tid, "name": name, "input": tool_input or {}}]}


def _result(tid: str, content: str, is_error: bool = False) -> dict[str, Any]:
    return user({"type": "tool_result", "tool_use_id": tid, "content": content, "is_error": is_error})


def test_plan_mode_plays_the_plan_file_and_exit_plan_mode() -> None:
    """[[plan]] writes the plan file the CLI names, asks with ExitPlanMode, revises on rejection, then works."""
    reminder_text = (
        "Plan mode is active. ... No plan file exists yet. You should create your plan at /c/plans/p.md using"
    )
    write_x = '[[tool: Write {"file_path": "/w/x.txt", "content": "x"}]]'
    prompt = user(reminder(reminder_text), text(f"[[plan: Plan A ;; Plan B]] {write_x} go"))
    step = plan_for({"messages": [prompt]})
    assert step.tools == [("Write", {"file_path": "/c/plans/p.md", "content": "Plan A"})]
    wrote = [prompt, _use("w1", "Write"), _result("w1", "File created")]
    assert plan_for({"messages": wrote}).tools == [("ExitPlanMode", {})]
    feedback = "The user rejected this plan (v1). Their feedback:\nadd tests\nplease"
    rejected = [*wrote, _use("e1", "ExitPlanMode"), _result("e1", feedback, is_error=True)]
    assert plan_for({"messages": rejected}).tools == [
        ("Write", {"file_path": "/c/plans/p.md", "content": "Plan B\n\n(revised after: add tests)"})
    ]
    again = [*rejected, _use("w2", "Write"), _result("w2", "File updated"), _use("e2", "ExitPlanMode")]
    # A second rejection with no plan left: it stops and says so.
    assert plan_for({"messages": [*again, _result("e2", "no", is_error=True)]}).text == "Plan rejected: no"
    approved = [*again, _result("e2", "User has approved your plan.")]
    assert plan_for({"messages": approved}).tools == [("Write", {"file_path": "/w/x.txt", "content": "x"})]
    done = [*approved, _use("w3", "Write"), _result("w3", "File created at /w/x.txt")]
    assert plan_for({"messages": done}).text == "Tool result: File created at /w/x.txt"
    # No plan file named (not in plan mode): the plan travels in ExitPlanMode's input.
    bare = plan_for({"messages": [user("[[plan: Plan A]]")]})
    assert bare.tools == [("ExitPlanMode", {"plan": "Plan A"})]
    only = [user("[[plan: Plan A]]"), _use("e1", "ExitPlanMode"), _result("e1", "ok")]
    assert plan_for({"messages": only}).text == "Plan approved."


# --------------------------------------------------------------------------------------------------------
# HTTP behaviour


def test_http_stream_json_and_other_paths(tmp_path: Path) -> None:
    log = tmp_path / "api.jsonl"
    with ScriptedAPI(log_path=log) as api:
        status, headers, raw = post(
            api.url + "/v1/messages?beta=true",
            {"model": "claude-x", "stream": True, "messages": [user("hi")]},
        )
        assert status == 200 and headers["Content-Type"] == "text/event-stream"
        events = sse(raw)
        assert [e[0] for e in events] == [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert events[0][1]["message"]["model"] == "claude-x"
        assert events[3][1]["delta"] == {"type": "text_delta", "text": "Scripted reply: hi"}
        assert events[5][1]["delta"]["stop_reason"] == "end_turn" and events[5][1]["usage"]["output_tokens"] == 10

        _, _, raw = post(api.url + "/v1/messages", {"model": "m", "stream": True, "messages": [user("[[bash: ls]]")]})
        deltas = [e[1]["delta"] for e in sse(raw) if e[0] == "content_block_delta"]
        assert all(d["type"] == "input_json_delta" for d in deltas)
        assert json.loads("".join(d["partial_json"] for d in deltas)) == {
            "command": "ls",
            "description": "scripted",
        }

        status, _, raw = post(api.url + "/v1/messages", {"model": "m", "messages": [user("[[text: plain]]")]})
        message = json.loads(raw)
        assert status == 200 and message["content"] == [{"type": "text", "text": "plain"}]
        assert message["usage"]["input_tokens"] == 100 and message["model"] == "m"

        status, headers, raw = post(api.url + "/v1/messages", {"model": "m", "messages": [user("[[error: 429]]")]})
        assert status == 429 and json.loads(raw)["error"]["type"] == "rate_limit_error"
        assert headers["x-should-retry"] == "false"

        assert json.loads(post(api.url + "/v1/messages/count_tokens", {"messages": []})[2]) == {"input_tokens": 100}
        with urllib.request.urlopen(api.url + "/api/hello", timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read()) == {}

        requests = api.wait_for_requests(6, timeout=5)
    assert [r["method"] for r in requests] == ["POST"] * 5 + ["GET"]
    assert requests[0]["path"] == "/v1/messages?beta=true" and requests[0]["json"]["model"] == "claude-x"
    assert "sk-secret" not in log.read_text() and len(log.read_text().splitlines()) == 6
    with pytest.raises(TimeoutError):
        api.wait_for_requests(7, timeout=0.1)


def test_refuses_non_loopback() -> None:
    assert check_loopback("localhost") == "127.0.0.1"
    for host in ("0.0.0.0", "192.168.1.1", "example.com"):
        with pytest.raises(ValueError):
            ScriptedAPI(host=host)


def test_module_entry_point() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "clawunits.testing.scripted_api", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.split()[-1]
        status, _, raw = post(url + "/v1/messages", {"model": "m", "messages": [user("[[text: ok]]")]})
        assert status == 200 and json.loads(raw)["content"][0]["text"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    bad = subprocess.run(
        [sys.executable, "-m", "clawunits.testing.scripted_api", "--host", "0.0.0.0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode != 0 and "non-loopback" in bad.stderr


# --------------------------------------------------------------------------------------------------------
# The real bundled CLI against the scripted API


def test_real_cli_text_reply(tmp_path: Path) -> None:
    with ScriptedAPI() as api:
        lines = run_cli(api, tmp_path, "say hello")
        requests = api.messages_requests()
    init, result = lines[0], lines[-1]
    assert init["subtype"] == "init" and init["model"] == MODEL
    assert result["subtype"] == "success" and not result["is_error"]
    assert result["result"] == "Scripted reply: say hello"
    assert 0 < result["total_cost_usd"] < 0.01
    assert len(requests) == 1 and requests[0]["json"]["model"] == MODEL and requests[0]["json"]["stream"]
    assert requests[0]["headers"]["x-api-key"] == "<redacted>"


def test_real_cli_runs_bash_tool(tmp_path: Path) -> None:
    target = tmp_path / "marker.txt"
    with ScriptedAPI() as api:
        lines = run_cli(
            api,
            tmp_path,
            f"[[bash: echo marker-123 > {target}]]",
            "--permission-mode",
            "bypassPermissions",
            IS_SANDBOX="1",
        )
        requests = api.messages_requests()
    assert target.read_text() == "marker-123\n"
    assert len(requests) == 2
    last_user = requests[1]["json"]["messages"][-1]
    assert any(b.get("type") == "tool_result" for b in last_user["content"])
    result = lines[-1]
    assert result["subtype"] == "success" and result["result"].startswith("Tool result: ")
    assert result["num_turns"] == 2


def test_real_cli_plan_mode_writes_the_plan_file(tmp_path: Path) -> None:
    """The real CLI names a plan file in plan mode; [[plan]] writes it there and asks with ExitPlanMode.

    (``-p`` has nobody to approve a plan, so the CLI refuses ExitPlanMode; the runner's approval is tested
    in tests/test_plan_approval.py.)"""
    with ScriptedAPI() as api:
        lines = run_cli(api, tmp_path, "[[plan: Step 1: look around]] plan it", "--permission-mode", "plan")
    uses = [b for m in lines if m["type"] == "assistant" for b in m["message"]["content"] if b["type"] == "tool_use"]
    assert [u["name"] for u in uses] == ["Write", "ExitPlanMode"]
    plan_file = Path(uses[0]["input"]["file_path"])
    assert plan_file.parent == tmp_path / "config" / "plans" and plan_file.read_text() == "Step 1: look around"
    # Refused, and with no other plan the model stops.
    assert lines[-1]["result"].startswith("Plan rejected: ")


def test_real_cli_api_error(tmp_path: Path) -> None:
    with ScriptedAPI() as api:
        lines = run_cli(api, tmp_path, "[[error: 400]]")
    result = lines[-1]
    assert result["is_error"] is True and result["api_error_status"] == 400
    assert "scripted error 400" in result["result"]


# --------------------------------------------------------------------------------------------------------
# tests/fake_claude.py through the real SDK


def test_fake_claude_turn_and_interrupt(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        options = ClaudeAgentOptions(cli_path=str(FAKE_CLAUDE), model="claude-test-1", cwd=str(tmp_path))
        client = ClaudeSDKClient(options=options)
        await client.connect()
        try:
            await client.query("hello fake")
            seen["turn1"] = [m async for m in client.receive_response()]
            await client.query("take your time [[fake: sleep 30]]")
            turn2: list[Any] = []
            async for message in client.receive_response():
                turn2.append(message)
                if isinstance(message, SystemMessage) and message.subtype == "init":
                    await asyncio.wait_for(client.interrupt(), timeout=5)
            seen["turn2"] = turn2
            await client.query("again")
            seen["turn3"] = [m async for m in client.receive_response()]
        finally:
            await client.disconnect()
        return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    init, assistant, result = seen["turn1"]
    assert isinstance(init, SystemMessage) and init.data["model"] == "claude-test-1"
    assert isinstance(assistant, AssistantMessage)
    assert assistant.content == [TextBlock(text="Fake reply: hello fake")]
    assert isinstance(result, ResultMessage) and result.subtype == "success" and result.session_id
    assert result.total_cost_usd == pytest.approx(0.001)

    interrupted = seen["turn2"]
    assert isinstance(interrupted[-2], UserMessage)
    assert isinstance(interrupted[-1], ResultMessage)
    assert interrupted[-1].subtype == "error_during_execution" and interrupted[-1].is_error
    assert interrupted[-1].terminal_reason == "aborted_streaming"
    assert not any(isinstance(m, AssistantMessage) for m in interrupted)

    last = seen["turn3"][-1]
    assert isinstance(last, ResultMessage) and last.result == "Fake reply: again"
    assert last.session_id == result.session_id and last.total_cost_usd == pytest.approx(0.002)


def test_usage_limit_headers_and_the_refusal_until_the_reset() -> None:
    with ScriptedAPI() as api:
        url = api.url + "/v1/messages"
        status, headers, _ = post(url, {"model": "m", "messages": [user("[[limit: warning seven_day 0.8]]")]})
        assert status == 200 and headers["anthropic-ratelimit-unified-representative-claim"] == "seven_day"
        assert headers["anthropic-ratelimit-unified-7d-utilization"] == "0.8"
        assert headers["anthropic-ratelimit-unified-7d-status"] == "allowed_warning"
        assert headers["anthropic-ratelimit-unified-7d-surpassed-threshold"] == "0.75"
        assert int(headers["anthropic-ratelimit-unified-7d-reset"]) > time.time()

        status, headers, raw = post(url, {"model": "m", "messages": [user("[[limit: rejected five_hour 2]]")]})
        reset = int(headers["anthropic-ratelimit-unified-reset"])
        assert status == 429 and json.loads(raw)["error"]["type"] == "rate_limit_error"
        assert headers["anthropic-ratelimit-unified-status"] == "rejected"
        assert headers["anthropic-ratelimit-unified-5h-status"] == "rejected"
        assert headers["anthropic-ratelimit-unified-5h-utilization"] == "1"
        assert headers["x-should-retry"] == "false" and 1 <= int(headers["retry-after"]) <= 3
        # The window is exhausted for every request until its reset, then answered again (the directive too).
        assert post(url, {"model": "m", "messages": [user("[[text: other]]")]})[0] == 429
        time.sleep(max(0.0, reset - time.time()) + 0.1)
        assert post(url, {"model": "m", "messages": [user("[[text: other]]")]})[0] == 200
        assert post(url, {"model": "m", "messages": [user("[[limit: rejected five_hour 2]]")]})[0] == 200
