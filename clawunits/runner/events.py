"""SDK messages to records: what Claude says and does, each turn's result and cost, the session's Claude id."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeSDKClient,
    RateLimitEvent,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from clawunits import records as R
from clawunits.records import shorten, summarize_tool_input, summarize_tool_result, utc_now_iso
from clawunits.runner.answers import is_question
from clawunits.runner.live import LiveSession, Turn, aborted
from clawunits.runner.permissions import ASK_TOOL, PLAN_TOOL
from clawunits.runner.usage import UsageLimits
from clawunits.state.models import Status

STDERR_TAIL = 20
PREVIEW_CHARS = 500


class Events:
    """Prints a record for each SDK message and keeps the session's record (Claude session id, cost) current."""

    def __init__(self, live: LiveSession) -> None:
        self.live = live
        record = live.record
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.tool_names: dict[str, str] = {}
        self.cost_baseline = record.prior_cost_usd
        self.last_total_cost = record.prior_cost_usd + record.cost_usd
        self.last_text = record.result_preview or ""
        self.usage = UsageLimits(live)

    async def read(self, client: ClaudeSDKClient) -> None:
        async for message in client.receive_messages():
            self.live.last_message_at = time.monotonic()
            self.handle(message)

    def handle(self, msg: Any) -> None:
        out, turn = self.live.out, self.live.turn
        if isinstance(msg, SystemMessage):
            if msg.subtype == "init":
                self._on_init(msg.data)
        elif isinstance(msg, RateLimitEvent):
            self.usage.on_event(msg.rate_limit_info)
        elif isinstance(msg, AssistantMessage):
            self.usage.on_assistant_error(msg.error)
            for block in msg.content:
                if isinstance(block, TextBlock) and block.text.strip():
                    self.last_text = block.text
                    if turn is not None:
                        turn.last_text = block.text
                    out.emit(R.TEXT, text=block.text)
                elif isinstance(block, ToolUseBlock):
                    self._on_tool_use(block)
        elif isinstance(msg, UserMessage) and isinstance(msg.content, list):
            for block in msg.content:
                if isinstance(block, ToolResultBlock):
                    self.live.open_tools.discard(block.tool_use_id)
                    out.emit(
                        R.TOOL_RESULT,
                        id=block.tool_use_id,
                        tool=self.tool_names.get(block.tool_use_id, "?"),
                        summary=summarize_tool_result(block.content),
                        isError=bool(block.is_error),
                    )
        elif isinstance(msg, ResultMessage):
            self._on_result(msg)

    def _on_tool_use(self, block: ToolUseBlock) -> None:
        live, turn = self.live, self.live.turn
        self.tool_names[block.id] = block.name
        live.open_tools.add(block.id)
        live.out.emit(R.TOOL_USE, id=block.id, tool=block.name, summary=summarize_tool_input(block.input))
        if block.name == PLAN_TOOL and isinstance(block.input, dict) and isinstance(block.input.get("plan"), str):
            live.plan_inputs[block.id] = block.input["plan"]
        if block.name == ASK_TOOL and turn is not None:
            questions = block.input.get("questions") if isinstance(block.input, dict) else None
            texts = [str(q.get("question", "")) for q in questions or [] if isinstance(q, dict)]
            turn.asked.extend(t for t in texts if t) if texts else turn.asked.append("(question)")

    def _on_init(self, data: dict[str, Any]) -> None:
        live = self.live
        sid = data.get("session_id")
        if not sid or sid == live.claude_session_id:
            return
        live.claude_session_id = sid
        live.out.emit(
            R.STARTED,
            v=R.STREAM_VERSION,
            claudeSessionId=sid,
            model=data.get("model"),
            cwd=data.get("cwd"),
            permissionMode=data.get("permissionMode"),
            claudeCodeVersion=data.get("claude_code_version"),
            resumedFrom=live.record.resumed_from,
            forked=live.record.forked,
        )
        live.update(
            lambda r: r.with_changes(
                claude_session_id=sid,
                status=Status.RUNNING if r.status is Status.STARTING else r.status,
                started_at=r.started_at or utc_now_iso(),
            )
        )

    def _on_result(self, msg: ResultMessage) -> None:
        live, turn = self.live, self.live.turn
        total = float(msg.total_cost_usd or 0.0)
        turn_cost = max(0.0, total - self.last_total_cost)
        self.last_total_cost = max(total, self.last_total_cost)
        own_cost = self.own_cost()
        fields: dict[str, Any] = {
            "subtype": msg.subtype,
            "isError": bool(msg.is_error),
            "costUsd": own_cost,
            "turnCostUsd": round(turn_cost, 6),
            "durationMs": msg.duration_ms,
            "numTurns": msg.num_turns,
        }
        if getattr(msg, "terminal_reason", None):
            fields["terminalReason"] = msg.terminal_reason
        if msg.is_error and msg.result:
            fields["result"] = shorten(str(msg.result), 500)
        if errors := getattr(msg, "errors", None):
            fields["errors"] = [shorten(str(e), 300) for e in errors[:5]]
        if getattr(msg, "api_error_status", None):
            fields["apiErrorStatus"] = msg.api_error_status
        if turn is not None and turn.interrupt_reason and aborted(msg):
            fields["interrupted"] = True
        live.out.emit(R.TURN_END, **fields)
        preview = self.last_text[-PREVIEW_CHARS:] if self.last_text else None
        live.update(
            lambda r: r.with_changes(
                cost_usd=own_cost, num_turns=r.num_turns + 1, result_preview=preview, last_activity_at=utc_now_iso()
            )
        )
        if turn is not None and not turn.done.done():
            turn.done.set_result(msg)

    def announce_waiting(self, turn: Turn) -> None:
        """After a turn: a question to the user (``waiting``), or a finished task (``completed``, still open).

        Either way the runner stays up for follow-up messages until the idle timeout.
        """
        question = bool(turn.asked) or is_question(turn.last_text)
        fields: dict[str, Any] = {"question": question, "text": shorten(turn.last_text, 300) if turn.last_text else ""}
        if turn.last_text:
            # The end of what Claude said (a question is at the end), for the notification of this turn: the
            # notifier may read the record after the next turn has changed the session's result_preview.
            fields["preview"] = turn.last_text[-PREVIEW_CHARS:]
        if turn.asked:
            fields["asked"] = [shorten(q, 200) for q in turn.asked[:5]]
        self.live.out.emit(R.WAITING, **fields)
        self.live.update(lambda r: r.turn_finished(question))

    def on_stderr(self, line: str) -> None:
        self.stderr_tail.append(shorten(line, 200))

    def own_cost(self) -> float:
        return round(max(0.0, self.last_total_cost - self.cost_baseline), 6)
