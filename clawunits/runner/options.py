"""The SDK options of a session: ``ClaudeAgentOptions`` from its store record."""

from __future__ import annotations

import os
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions

from clawunits.state.models import SessionRecord

# The SDK's default 1 MB line limit kills the client on one large tool result; allow far more.
STREAM_BUFFER_BYTES = 64 * 1024 * 1024


def build_options(record: SessionRecord, stderr: Any, can_use_tool: Any, resume: str | None) -> ClaudeAgentOptions:
    """SDK options for this session: Claude Code's own system prompt and the user's settings."""
    system_prompt: dict[str, str] = {"type": "preset", "preset": "claude_code"}
    if record.system_prompt:
        system_prompt["append"] = record.system_prompt
    remaining = max(0.0, record.budget_usd - record.prior_cost_usd - record.cost_usd)
    return ClaudeAgentOptions(
        cwd=record.workdir,
        model=record.model,
        permission_mode=record.permission_mode,  # type: ignore[arg-type]
        allowed_tools=list(record.allowed_tools),
        # The CLI's budget counts only its own process: pass what the conversation has left.
        max_budget_usd=round(remaining, 6),
        system_prompt=system_prompt,  # type: ignore[arg-type]
        setting_sources=["user", "project", "local"],
        resume=resume,
        fork_session=record.forked and resume == record.resume_claude_session_id,
        max_buffer_size=STREAM_BUFFER_BYTES,
        stderr=stderr,
        can_use_tool=can_use_tool,
        cli_path=os.environ.get("CLAWUNITS_CLAUDE_PATH") or None,
    )
