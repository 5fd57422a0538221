"""``launch``: check the request, take over what a resumed session brings, record the session, start its unit."""

from __future__ import annotations

import os
from typing import Any

from clawunits.errors import InvalidInput, LimitReached, NotFound, StateError, SystemdError
from clawunits.notifier.channels import check_channel
from clawunits.records import is_secret_name, utc_now_iso
from clawunits.service import kill, session_worktree, sessions
from clawunits.service import worktree as worktrees
from clawunits.service.authority import Action, Caller, Via
from clawunits.service.checks import (
    check_agent,
    check_budget,
    check_model,
    check_permission_mode,
    check_prompt,
    check_tool,
    check_workdir,
    raw_uuid,
)
from clawunits.service.context import Context
from clawunits.service.results import LaunchRequest
from clawunits.service.unitspec import unit_spec
from clawunits.state import naming
from clawunits.state.config import session_limits
from clawunits.state.models import EndCause, SessionRecord, Status, WorktreeInfo
from clawunits.systemd.limits import Limits, parse_cpu_quota, parse_duration, parse_memory, parse_tasks
from clawunits.systemd.sessionenv import session_environment


def launch(ctx: Context, req: LaunchRequest) -> SessionRecord:
    """Validate, record and start a session unit; returns once the runner process is running."""
    prompt = check_prompt(req.prompt)
    _check_worktree_options(req)
    origin = check_channel(req.origin_channel) if req.origin_channel is not None else None
    resumed = _resolve_resume(ctx, req.resume) if req.resume else None
    ctx.authorize(Action.FORK if req.fork else Action.RESUME if req.resume else Action.LAUNCH, resumed)
    _check_resumable(ctx, resumed, req.fork)
    inherited = _inherited_worktree(req, resumed)
    workdir = check_workdir(
        req.workdir or (resumed.workdir if resumed else None) or ctx.settings.defaultWorkdir or os.getcwd()
    )
    model = check_model(req.model or (resumed.model if resumed else None) or ctx.settings.defaultModel)
    default_budget = resumed.budget_usd if resumed else ctx.settings.defaultBudgetUsd
    budget = check_budget(req.max_budget_usd if req.max_budget_usd is not None else default_budget)
    # The budget is the conversation's lifetime budget: a resumed session gets what is left of it.
    prior_cost = round(resumed.prior_cost_usd + resumed.cost_usd, 6) if resumed else 0.0
    if resumed and prior_cost >= budget:
        raise LimitReached(
            f"the conversation of {resumed.name} [{resumed.id}] has spent ${prior_cost:.4f} of its ${budget:g} budget",
            hint="give a larger --max-budget-usd",
        )
    # A resumed conversation keeps how it was set up (approval prompts included) unless told otherwise.
    mode = check_permission_mode(
        req.permission_mode or (resumed.permission_mode if resumed else None) or ctx.settings.permissionMode
    )
    tools = [check_tool(t) for t in (req.allowed_tools or (resumed.allowed_tools if resumed else []))]
    system_prompt = req.system_prompt if req.system_prompt is not None else (resumed.system_prompt if resumed else None)
    if req.fork and not req.resume:
        raise InvalidInput("--fork needs --resume: only a resumed session can be forked")
    if system_prompt is not None and "\0" in system_prompt:
        raise InvalidInput("system prompt contains a NUL byte")
    base = naming.validate_name(req.name) if req.name is not None else naming.generate_name(prompt)
    agent = check_agent(req.origin_agent)
    limits = _limits(ctx, req, resumed)
    checkout = worktrees.prepare(workdir, req.base) if req.worktree else None
    if req.run_guards:
        _run_guards(ctx, req, workdir, agent)

    with ctx.store.lock("launch"):
        existing = ctx.store.all()
        queued = _must_queue(ctx, existing)
        taken = {r.name for r in existing}
        if checkout is not None:
            taken |= worktrees.taken_names(checkout, session_worktree.root(ctx))
        name = naming.unique_name(base, taken)
        session_id = _fresh_id({r.id for r in existing})
        # Created under the launch lock: two launches cannot pick the same branch or directory. A queued
        # session gets its worktree when it starts (cut from the base as it is then).
        created = worktrees.create(checkout, session_worktree.root(ctx), name) if checkout and not queued else None
        if checkout is not None and created is not None:
            workdir = worktrees.session_workdir(checkout, created)
        now = utc_now_iso()
        record = SessionRecord(
            id=session_id,
            name=name,
            prompt=prompt,
            workdir=workdir,
            unit=naming.unit_name(name, session_id),
            created_at=now,
            # The unit starts right below; a failed start rewrites the record as failed.
            started_at=None if queued else now,
            status=Status.QUEUED if queued else Status.STARTING,
            queue_priority=queued and req.priority,
            queued_worktree_base=checkout.base if checkout and queued else None,
            model=model,
            permission_mode=mode,
            budget_usd=budget,
            multi_turn=req.multi_turn,
            system_prompt=system_prompt,
            allowed_tools=tools,
            resume_claude_session_id=resumed.claude_session_id if resumed else raw_uuid(req.resume),
            resumed_from=(resumed.id if resumed else req.resume) if req.resume else None,
            forked=req.fork,
            origin_channel=origin,
            origin_agent=agent,
            launched_by=ctx.caller.sender,
            **_wake_target(ctx.caller, ctx.settings.wakeAgentOnCommandLaunch),
            prior_cost_usd=prior_cost,
            idle_timeout_minutes=float(ctx.settings.idleTimeoutMinutes),
            permission_timeout_sec=float(ctx.settings.permissionTimeoutSec),
            plan_approval_mode=ctx.settings.planApprovalMode,
            stall_timeout_sec=float(ctx.settings.stallTimeoutSec),
            memory_max=limits.memory_max,
            cpu_quota=limits.cpu_quota,
            tasks_max=limits.tasks_max,
            runtime_max_sec=limits.runtime_max_sec,
            # Secrets stay out of the state: a recovery takes them from its own environment.
            environment={
                k: v for k, v in session_environment(ctx.environ, ctx.settings, {}).items() if not is_secret_name(k)
            },
            worktree=created or inherited,
            # A resumed session keeps its notify policy unless the resume sets one.
            notify=req.notify or (resumed.notify if resumed else None),
        )
        try:
            ctx.store.save(record)
        except BaseException:
            if created is not None:
                worktrees.discard(created)
            raise
    if queued:
        return _queued(ctx, record)
    start(ctx, record, created)
    return record


def _queued(ctx: Context, record: SessionRecord) -> SessionRecord:
    """A queued launch: start what fits now (a slot may be free with others waiting ahead, their start missed)."""
    from clawunits.service import queue

    queue.drain(ctx)
    return ctx.store.load(record.id)


def start(ctx: Context, record: SessionRecord, created: WorktreeInfo | None) -> None:
    """Start the recorded session's unit; a failed start marks it failed and removes its new worktree."""
    try:
        ctx.manager.start(unit_spec(ctx, record))
    except SystemdError as e:
        why = f"unit did not start: {e.message}"
        ctx.store.update(record.id, lambda r: r.ended(Status.FAILED, why, EndCause.CRASH))
        if created is not None:
            # Nothing ran in it: leave no stray worktree or branch behind.
            worktrees.discard(created)
            ctx.store.update(record.id, lambda r: r.with_changes(worktree=session_worktree.marked_removed(r.worktree)))
        raise


def _run_guards(ctx: Context, req: LaunchRequest, workdir: str, agent: str | None) -> None:
    # Imported here: only the plugin's agent tool runs the guards, and a plain CLI launch should not pay
    # for importing them (start-up time, docs/PERFORMANCE.md).
    from clawunits.service.guards import GuardContext, check_launch

    guard_ctx = GuardContext(workdir=workdir, agent_id=agent, agent_workspace=req.agent_workspace)
    check_launch(guard_ctx, ctx.settings, ctx.environ)


def _limits(ctx: Context, req: LaunchRequest, resumed: SessionRecord | None) -> Limits:
    """Each limit from the launch, else from the resumed session, else from the configuration."""
    base = resumed.limits if resumed else session_limits(ctx.settings)
    return Limits(
        memory_max=parse_memory(req.memory_max) if req.memory_max is not None else base.memory_max,
        cpu_quota=parse_cpu_quota(req.cpu_quota) if req.cpu_quota is not None else base.cpu_quota,
        tasks_max=parse_tasks(req.tasks_max) if req.tasks_max is not None else base.tasks_max,
        runtime_max_sec=parse_duration(req.runtime_max) if req.runtime_max is not None else base.runtime_max_sec,
    )


def _must_queue(ctx: Context, existing: list[SessionRecord]) -> bool:
    """Whether this launch waits in the launch queue: no slot is free, or others wait ahead of it. Without
    ``queueLaunches``, a launch beyond maxSessions is refused (LimitReached)."""
    full = free_slots(ctx, existing) <= 0
    if not ctx.settings.queueLaunches:
        if full:
            raise LimitReached(f"Max sessions reached ({ctx.settings.maxSessions}). Kill a session first.")
        return False
    return full or any(r.status is Status.QUEUED for r in existing)


def free_slots(ctx: Context, existing: list[SessionRecord]) -> int:
    """maxSessions less the sessions whose unit runs or starts (parked ones, queued or limited, hold none)."""
    active = [r for r in existing if not r.status.is_terminal and not r.status.is_parked]
    if len(active) < ctx.settings.maxSessions:
        return ctx.settings.maxSessions - len(active)
    # Count live units, not records: a record can be stale if its unit died unnoticed.
    running = sessions.reconcile(ctx, active)
    return ctx.settings.maxSessions - sum(1 for r in running if not r.status.is_terminal and not r.status.is_parked)


def _resolve_resume(ctx: Context, ref: str) -> SessionRecord | None:
    """The stored session to resume, or None for a raw Claude session UUID that no record knows."""
    try:
        record = ctx.store.resolve(ref)
    except NotFound:
        if raw_uuid(ref):
            return None
        raise
    if not record.claude_session_id:
        raise StateError(f"session {record.name} [{record.id}] has no Claude session id to resume")
    return record


def _check_resumable(ctx: Context, record: SessionRecord | None, fork: bool) -> None:
    """Two Claude Code processes appending to one transcript would corrupt it; a fork writes a new one."""
    if record is None or fork:
        return
    record = sessions.reconcile(ctx, [record])[0]
    if record.status is Status.INTERRUPTED:
        raise StateError(
            f"session {record.name} [{record.id}] was interrupted by a shutdown and will be recovered",
            hint=f"resume it as itself with: clawunits recover {record.name}; or fork it with --fork",
        )
    if not record.status.is_terminal:
        raise StateError(
            f"session {record.name} [{record.id}] is still {record.status.value}",
            hint="send it a message with: clawunits respond; or fork it with --fork",
        )
    if record.is_open:
        # Completed but still open for follow-ups: close it, then its conversation continues here.
        kill.close_open(ctx, record)


def _check_worktree_options(req: LaunchRequest) -> None:
    if req.base is not None and not req.worktree:
        raise InvalidInput("--base needs --worktree")
    if req.worktree and req.resume:
        raise InvalidInput(
            "--worktree cannot be combined with --resume",
            hint="a resumed conversation continues in its session's workdir (its worktree, if it had one)",
        )


def _inherited_worktree(req: LaunchRequest, resumed: SessionRecord | None) -> WorktreeInfo | None:
    """A resumed session in its parent's workdir continues in the parent's worktree (if it has one)."""
    if resumed is None or resumed.worktree is None or req.workdir:
        return None
    if resumed.worktree.removed:
        raise StateError(
            f"the worktree of session {resumed.name} [{resumed.id}] was removed (its branch was merged)",
            hint="give --workdir to resume it in another directory",
        )
    return resumed.worktree


def _fresh_id(taken: set[str]) -> str:
    while True:
        candidate = naming.new_id()
        if candidate not in taken:
            return candidate


def _wake_target(caller: Caller, on_command: bool) -> dict[str, Any]:
    """Who the session's questions and ends wake: the agent session whose tool launched it; for a person's chat
    command, nobody (or that chat's agent session with ``wakeAgentOnCommandLaunch``); from a shell or an RPC
    client, the default agent's main session, as the seed's ``openclaw system event`` did."""
    if caller.via is Via.TOOL or (caller.via is Via.COMMAND and on_command):
        return {"wakes_agent": True, "wake_agent_id": caller.agent_id, "wake_session_key": caller.session_key}
    return {"wakes_agent": caller.via is not Via.COMMAND}
