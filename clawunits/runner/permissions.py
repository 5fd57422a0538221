"""Claude Code's permission callback: tool permission requests and plan approval, answered by the user's
messages (``clawunits respond``) or denied when the permission timeout passes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, PermissionUpdate

from clawunits import plans
from clawunits import records as R
from clawunits.records import shorten, summarize_tool_input
from clawunits.runner.answers import decision, rejection, stale_plan_answer
from clawunits.runner.live import LiveSession, PendingPermission
from clawunits.state.inbox import Entry
from clawunits.state.models import WaitingFor
from clawunits.state.naming import new_id

ASK_TOOL = "AskUserQuestion"
ASK_INSTEAD = (
    "The user answers questions between turns, not through this tool. End your turn by asking the question "
    "in plain text; the answer will come as the user's next message."
)
PLAN_TOOL = "ExitPlanMode"
# A plan's text comes from the plan file Claude Code injects into ExitPlanMode's input; kept whole (the
# record is split into parts past 32 KiB) up to this size.
PLAN_CHARS = 200_000
# An unanswered plan: Claude is told to stop and wait rather than to plan again (which would only time out
# again); the user's later answer arrives as the next turn.
PLAN_TIMEOUT = (
    "The user did not answer this plan within {timeout:g} seconds. Do not call ExitPlanMode again now: end your "
    "turn by saying the plan is waiting for approval. The user's answer will come as the next message."
)


class Permissions:
    """Asks the user through records (``permission_request``, ``plan``) and answers Claude Code."""

    def __init__(self, live: LiveSession) -> None:
        self.live = live

    async def can_use_tool(self, tool: str, tool_input: dict[str, Any], _ctx: Any) -> Any:
        live = self.live
        if tool == ASK_TOOL:
            # A question, not a tool call to approve: the turn ends with it (waiting for a "question", its
            # questions in the `waiting` record) and the answer comes as the next turn, as in bypassPermissions
            # mode, where Claude Code disables AskUserQuestion.
            return PermissionResultDeny(message=ASK_INSTEAD)
        if tool == PLAN_TOOL:
            return await self._plan_approval(tool_input, getattr(_ctx, "tool_use_id", None))
        request_id = new_id()[:6]
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        live.permission = PendingPermission(request_id, time.time_ns(), answer)
        live.out.emit(R.PERMISSION_REQUEST, requestId=request_id, tool=tool, summary=summarize_tool_input(tool_input))
        live.update(lambda r: r.awaiting_answer(WaitingFor.PERMISSION, request_id))
        timeout = live.record.permission_timeout_sec
        try:
            text = await asyncio.wait_for(answer, timeout=timeout)
        except TimeoutError:
            text = f"deny no answer within {timeout:g} seconds"
        finally:
            live.permission = None
        allow, reason = decision(text)
        live.out.emit(R.PERMISSION_ANSWER, requestId=request_id, decision="allow" if allow else "deny", reason=reason)
        live.update(lambda r: r.answer_taken())
        live.last_message_at = time.monotonic()
        if allow:
            return PermissionResultAllow(updated_input=tool_input)
        return PermissionResultDeny(message=reason or "The user denied this tool call.")

    async def _plan_approval(self, tool_input: dict[str, Any], tool_use_id: str | None) -> Any:
        """ExitPlanMode: show the plan (a ``plan`` record), wait for approve/reject, answer Claude.

        Approval allows the call and switches the session to its execution mode (``planApprovalMode``);
        a rejection denies it with the user's feedback, so Claude stays in plan mode and plans again (the
        next ExitPlanMode is the next plan version).
        """
        live = self.live
        text = tool_input.get("plan") if isinstance(tool_input.get("plan"), str) else None
        text = text or live.plan_inputs.get(tool_use_id or "") or "(Claude Code passed no plan text)"
        version = live.record.plan_version + 1
        request_id = new_id()[:6]
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        live.permission = PendingPermission(request_id, time.time_ns(), answer, plan_version=version)
        fields: dict[str, Any] = {"requestId": request_id, "version": version, "plan": text[:PLAN_CHARS]}
        if len(text) > PLAN_CHARS:
            fields["truncated"] = True
        if isinstance(tool_input.get("planFilePath"), str):
            fields["planFile"] = tool_input["planFilePath"]
        live.out.emit(R.PLAN, **fields)
        live.update(lambda r: r.awaiting_answer(WaitingFor.PLAN, request_id, plan_version=version))
        timeout = live.record.permission_timeout_sec
        try:
            reply = await asyncio.wait_for(answer, timeout=timeout)
        except TimeoutError:
            reply = None
        finally:
            live.permission = None
        # `respond` posts answers in their normal form; any other text counts as feedback (a rejection).
        parsed = plans.parse_answer(reply) if reply is not None else None
        approved = parsed is not None and parsed.decision == plans.APPROVE
        new_mode = (parsed.mode or live.record.plan_approval_mode) if parsed and approved else None
        feedback = "" if reply is None or approved else (parsed.feedback if parsed else reply.strip())
        if reply is None:
            live.out.emit(R.PLAN_ANSWER, requestId=request_id, version=version, decision="timeout",
                          reason=f"no answer within {timeout:g} seconds")  # fmt: skip
        elif approved:
            live.out.emit(R.PLAN_ANSWER, requestId=request_id, version=version, decision="approved", mode=new_mode)
        else:
            live.out.emit(R.PLAN_ANSWER, requestId=request_id, version=version, decision="rejected", feedback=feedback)
        # Approved: the session now runs in its execution mode, also after a restart or a resume.
        live.update(lambda r: r.answer_taken(permission_mode=new_mode))
        live.last_message_at = time.monotonic()
        if reply is None:
            return PermissionResultDeny(message=PLAN_TIMEOUT.format(timeout=timeout))
        if new_mode:
            switch = PermissionUpdate(type="setMode", mode=new_mode, destination="session")  # type: ignore[arg-type]
            return PermissionResultAllow(updated_input=tool_input, updated_permissions=[switch])
        return PermissionResultDeny(message=rejection(version, feedback))

    def answer(self, pending: list[Entry]) -> None:
        """Answer the open request with the first message posted after it."""
        live = self.live
        perm = live.permission
        assert perm is not None
        # Only a message posted after the request answers it; older mail is for the next turn.
        for entry in pending:
            if entry.message.posted_ns < perm.since_ns:
                continue
            taken = live.inbox.take(entry)
            if taken is None:
                continue
            live.out.emit(R.MESSAGE_RECEIVED, messageId=entry.message.id, text=shorten(entry.message.text, 200),
                          answers=perm.request_id)  # fmt: skip
            live.inbox.delivered(taken)
            stale = stale_plan_answer(entry.message.text, perm.plan_version)
            if stale is not None:
                # `respond` refuses these; one can still race a plan replaced in between (after a timeout).
                live.out.emit(R.PLAN_ANSWER, requestId=perm.request_id, version=stale, decision="stale",
                              reason=f"answers plan v{stale}; plan v{perm.plan_version} is waiting")  # fmt: skip
                continue
            if not perm.answer.done():
                perm.answer.set_result(entry.message.text)
            return
