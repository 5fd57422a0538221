"""``respond``: post a message (or the answer to a question or a plan) to a session's inbox and wake its runner."""

from __future__ import annotations

import contextlib
import signal

from clawunits import plans
from clawunits.errors import InvalidInput, LimitReached, StateError, StoreError, SystemdError
from clawunits.records import utc_now_iso
from clawunits.service import sessions
from clawunits.service.authority import Action
from clawunits.service.checks import check_message
from clawunits.service.context import Context
from clawunits.service.results import RespondResult
from clawunits.state.inbox import inbox_for
from clawunits.state.models import SessionRecord, Status, WaitingFor


def respond(
    ctx: Context,
    ref: str,
    message: str,
    interrupt: bool = False,
    user_initiated: bool = False,
    agent: str | None = None,
    plan_version: int | None = None,
) -> RespondResult:
    """Queue a message for a running session (durably) and wake its runner.

    With ``interrupt`` the current turn is stopped first. Agent-initiated messages count against
    ``maxAutoResponds``; a user-initiated one resets the count. While the session waits for a plan, the
    message answers it (``approve [vN] [mode]``, ``reject [vN] <feedback>``, other text: a rejection with
    that feedback); an answer naming another plan version than the waiting one is refused.
    """
    text = check_message(message)
    answer = plans.parse_answer(text)
    if plan_version is not None and (plan_version < 1 or isinstance(plan_version, bool)):
        raise InvalidInput(f"plan version must be a positive integer, got {plan_version!r}")
    if plan_version is not None and answer is not None and answer.version not in (None, plan_version):
        raise InvalidInput(f"the message answers plan v{answer.version}, not plan v{plan_version}")
    record = sessions.get(ctx, ref, agent)
    ctx.authorize(_action(record, interrupt), record)
    if record.is_open and record.status.is_terminal and not _unit_running(ctx, record):
        record = ctx.store.update(record.id, lambda r: r.with_changes(waiting_for=None))
    limit = ctx.settings.maxAutoResponds
    # Under the record's lock, like the runner's closing on idle timeout: a message is either posted to
    # an open session (and will be delivered) or refused, never left in a closed inbox.
    with ctx.store.lock(record.id):
        current = ctx.store.load(record.id)
        _check_accepts_messages(current)
        text = _plan_answer_text(current, text, answer, plan_version)
        if not user_initiated and current.auto_responds >= limit:
            raise LimitReached(
                f"⚠️ Auto-respond limit reached ({current.auto_responds}/{limit}). Ask the user to provide the "
                f"answer for session {record.name}. Then call claude_respond with their answer and set "
                "userInitiated: true to reset the counter."
            )
        inbox = inbox_for(ctx.store.root, record.id)
        # Staged first, queued last: when the state is full or read-only, respond fails having queued nothing
        # (the runner never sees a message whose record update failed).
        staged = inbox.stage(text, interrupt=interrupt, user_initiated=user_initiated)
        count = 0 if user_initiated else current.auto_responds + 1
        # The runner is about to work on it: report it running now, not the state of the last turn.
        if current.status is Status.LIMITED:
            # Parked at a usage limit: the message waits in the inbox and is the turn it resumes with.
            updated = current.with_changes(auto_responds=count, last_activity_at=utc_now_iso())
        elif current.waiting_for and current.waiting_for.answered_in_turn:
            updated = current.with_changes(auto_responds=count, last_activity_at=utc_now_iso())
        else:
            updated = current.turn_started().with_changes(auto_responds=count)
        try:
            ctx.store.save(updated)
        except BaseException:
            inbox.discard(staged)
            raise
        try:
            inbox.enqueue(staged)
        except StoreError:
            with contextlib.suppress(StoreError):
                ctx.store.save(current)
            raise
        posted = staged.message
    _wake(ctx, record)
    # An interrupt stops a turn in progress; an answer to a permission request or a message to an idle
    # session has nothing to interrupt.
    interrupted = interrupt and current.status in (Status.STARTING, Status.RUNNING) and current.waiting_for is None
    return RespondResult(record=updated, message_id=posted.id, interrupted=interrupted)


def _unit_running(ctx: Context, record: SessionRecord) -> bool:
    state = ctx.manager.state(record.unit)
    return state is not None and state.is_running and not state.has_exited


def _wake(ctx: Context, record: SessionRecord) -> None:
    """Tell the runner it has mail (SIGWINCH: ignored by default, so harmless if it is still starting)."""
    # The runner also looks at its inbox every second; a lost wake-up only delays delivery.
    with contextlib.suppress(SystemdError):
        ctx.manager.kill(record.unit, signal.SIGWINCH, "main")


def _plan_answer_text(record: SessionRecord, text: str, answer: plans.PlanAnswer | None, version: int | None) -> str:
    """The message to post: a plan answer in its normal form (naming the plan it answers), else ``text``.

    An answer to a plan that is not the one waiting (an older version, or none waits) is refused, so a late
    reply to a replaced plan cannot approve the new one.
    """
    named = version if version is not None else (answer.version if answer else None)
    who = f"session {record.name} [{record.id}]"
    if record.waiting_for is not WaitingFor.PLAN:
        if named is None:
            return text
        if record.plan_version == 0:
            raise StateError(f"{who} has proposed no plan", hint="plans come from sessions in --permission-mode plan")
        raise StateError(
            f"plan v{named} of {who} is no longer waiting for approval (answered, or timed out)",
            hint="send an ordinary message to ask for changes",
        )
    if named is not None and named != record.plan_version:
        raise StateError(
            f"plan v{named} of {who} is stale: plan v{record.plan_version} is waiting for approval",
            hint=f"answer the newest plan: approve v{record.plan_version}, or reject v{record.plan_version} <feedback>",
        )
    # Any other text asks for changes: a rejection with that text as the feedback.
    answer = answer.check() if answer else plans.PlanAnswer(plans.REJECT, feedback=text.strip())
    return answer.text(record.plan_version)


def _check_accepts_messages(record: SessionRecord) -> None:
    if record.status is Status.INTERRUPTED:
        raise StateError(
            f"session {record.name} [{record.id}] was interrupted by a shutdown; it takes messages again once"
            " recovered",
            hint=f"recover it with: clawunits recover {record.name}",
        )
    if not record.is_open:
        raise StateError(
            f"session {record.name} [{record.id}] is {record.status.value}; it takes no more messages",
            hint=f"continue the conversation with: clawunits resume {record.name} 'your message'",
        )
    if not record.multi_turn and not (record.waiting_for and record.waiting_for.answered_in_turn):
        raise StateError(
            f"session {record.name} [{record.id}] is single-turn (--multi-turn-disabled); it takes no messages"
        )


def _action(record: SessionRecord, interrupt: bool) -> Action:
    """What a message to ``record`` does, as the authority rule and its refusal name it."""
    if interrupt:
        return Action.INTERRUPT
    if record.waiting_for is WaitingFor.PERMISSION:
        return Action.PERMISSION
    if record.waiting_for is WaitingFor.PLAN:
        return Action.PLAN
    return Action.RESPOND
