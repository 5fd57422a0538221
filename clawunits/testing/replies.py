"""Building the scripted API's response: a message JSON or its SSE events, and error bodies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clawunits.testing.directives import ERROR_TYPES, INPUT_TOKENS, OUTPUT_TOKENS, SLOW_DELTAS, Plan


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
