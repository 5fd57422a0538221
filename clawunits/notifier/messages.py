"""The texts of notifications and agent wake events (the seed's matrix, with its gaps filled)."""

from __future__ import annotations

import re

from clawunits.render import duration, local_time, quoted_prompt
from clawunits.state.models import SessionRecord

PREVIEW_CHARS = 500
QUESTION_PREVIEW_CHARS = 200
RESPONDED_CHARS = 200
PLAN_PREVIEW_CHARS = 1500


def _tail(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _cut(text: str, limit: int) -> str:
    flat = text.strip()
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _amount(usd: float) -> str:
    """A budget as given: ``5``, ``0.5``, ``0.00001`` (never ``1e-05``)."""
    return f"{usd:.6f}".rstrip("0").rstrip(".") or "0"


def strip_markdown(text: str) -> str:
    """The seed strips ``* ` _ ~`` from previews so a chat does not render half a formatting span."""
    return re.sub(r"[*`_~]", "", text)


# -- level 1: to the session's origin channel ---------------------------------------------------------


def launched(r: SessionRecord) -> str:
    return f"↩️ [{r.name}] Launched:\n{_cut(r.prompt, 80)}"


def asks(r: SessionRecord, question_text: str) -> str:
    return f"🔔 [{r.name}] Claude asks:\n{_tail(question_text, QUESTION_PREVIEW_CHARS)}"


def permission_asks(r: SessionRecord, tool: str, summary: str, request_id: str) -> str:
    what = f"{tool} — {summary}" if summary else tool
    return (
        f"🔔 [{r.name}] Claude asks:\nPermission to use {what}\n"
        f"Reply allow, deny, or a reason to deny (request {request_id})."
    )


def plan_ready(r: SessionRecord, plan: str, version: int) -> str:
    """The whole plan: the channel splits it into messages of its size (the footer comes last)."""
    return (
        f"📋 [{r.name}] Plan ready:\n{plan.strip()}\n\nReply approve, or reject with what to change (plan v{version})."
    )


def responded(r: SessionRecord, message: str) -> str:
    return f"↩️ [{r.name}] Responded:\n{_cut(message, RESPONDED_CHARS)}"


def completed(r: SessionRecord, preview: str, cost_usd: float) -> str:
    text = f"✅ [{r.name}] Completed\n   📁 {r.workdir}\n   💰 ${cost_usd:.4f}"
    body = strip_markdown(_tail(preview, PREVIEW_CHARS)) if preview else ""
    return f"{text}\n\n{body}" if body else text


def _where(r: SessionRecord) -> str:
    """The two lines most messages end with: the workdir and the start of the prompt."""
    return f"   📁 {r.workdir}\n   📝 {quoted_prompt(r.prompt, 60)}"


def failed(r: SessionRecord, reason: str) -> str:
    text = f"❌ [{r.name}] Failed\n{_where(r)}"
    return f"{text}\n   ⚠️ {reason}" if reason else text


def budget_exhausted(r: SessionRecord, reason: str, cost_usd: float) -> str:
    return (
        f"⛔ [{r.name}] Budget exhausted\n{_where(r)}\n   💰 ${cost_usd:.4f} of ${_amount(r.budget_usd)}\n   ⚠️ {reason}"
    )


def killed(r: SessionRecord) -> str:
    return f"⛔ [{r.name}] Killed\n{_where(r)}"


def recovered(r: SessionRecord) -> str:
    return f"⚠️ [{r.name}] Resumed after restart\n{_where(r)}"


def limited(r: SessionRecord, window: str, resets_at: str) -> str:
    return f"⏸️ [{r.name}] usage limit ({window}) reached; resumes at {local_time(resets_at)}"


def limit_resumed(r: SessionRecord) -> str:
    return f"▶️ [{r.name}] resumed"


def limit_warning(r: SessionRecord, window: str, utilization: float | None, resets_at: str | None) -> str:
    used = f"{utilization * 100:.0f}%" if utilization is not None else "near its end"
    resets = f" (resets at {local_time(resets_at)})" if resets_at else ""
    return f"⚠️ [{r.name}] usage limit ({window}) at {used}{resets}"


def reminder(r: SessionRecord) -> str:
    return (
        f"⏱️ Session {r.name} [{r.id}] running for {duration(r.duration_ms)}\n   📁 {r.workdir}\n"
        "   Use claude_fg to check on it, or claude_kill to stop it."
    )


# -- level 2: to channels that have the session in the foreground -------------------------------------


def fg_tool(tool: str, summary: str) -> str:
    return f"🔧 {tool} — {summary}" if summary else f"🔧 {tool}"


def fg_waiting(r: SessionRecord) -> str:
    return (
        f"💬 Session {r.name} [{r.id}] is waiting for input ({duration(r.duration_ms)})\n"
        "   Use claude_respond to reply."
    )


def fg_completed(r: SessionRecord) -> str:
    return f"✅ Claude Code [{r.id}] completed ({duration(r.duration_ms)})\n{_where(r)}"


def fg_failed(r: SessionRecord, reason: str) -> str:
    return f"❌ Claude Code [{r.id}] failed ({duration(r.duration_ms)})\n{_where(r)}\n   ⚠️ {reason}"


def fg_limit(r: SessionRecord) -> str:
    return f"⛔ Session limit reached — {r.name} [{r.id}] ({duration(r.duration_ms)})\n   📁 {r.workdir}"


def fg_killed(r: SessionRecord) -> str:
    return f"⛔ Claude Code [{r.id}] killed ({duration(r.duration_ms)})\n{_where(r)}"


# -- wake events for the orchestrating agent -----------------------------------------------------------


def wake_waiting(r: SessionRecord, preview: str) -> str:
    head = "Multi-turn session is waiting for input." if r.multi_turn else "Session is waiting for input."
    return "\n".join(
        [
            head,
            f"Name: {r.name} | ID: {r.id}",
            "",
            "Last output:",
            _tail(preview, PREVIEW_CHARS),
            "",
            f"Use claude_respond(session='{r.id}', message='...') to send a reply, "
            f"or claude_output(session='{r.id}') to see full context.",
        ]
    )


def wake_plan(r: SessionRecord, plan: str, version: int) -> str:
    return "\n".join(
        [
            f"Session is waiting for approval of its plan (v{version}); the plan was sent to the user.",
            f"Name: {r.name} | ID: {r.id}",
            "",
            "Plan:",
            _cut(plan, PLAN_PREVIEW_CHARS),
            "",
            f"Use claude_respond(session='{r.id}', message='approve', planVersion={version}) to approve it, or "
            f"claude_respond(session='{r.id}', message='reject <what to change>', planVersion={version}).",
        ]
    )


def wake_completed(r: SessionRecord, preview: str) -> str:
    return "\n".join(
        [
            "Claude Code session completed.",
            f"Name: {r.name} | ID: {r.id}",
            "Status: completed",
            "",
            "Output preview:",
            _tail(preview, PREVIEW_CHARS),
            "",
            f"Use claude_output(session='{r.id}', full=true) to get the full result and transmit the analysis "
            "to the user.",
        ]
    )
