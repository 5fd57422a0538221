"""The session record: what the store keeps about one session, and its JSON shape for the API."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from clawunits.records import utc_now_iso
from clawunits.systemd.limits import UNLIMITED, Limits, format_duration, format_size


class Status(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"
    # Its runner was stopped by a shutdown of the user manager (or the machine), not on purpose: nothing
    # runs, and ``clawunits recover`` resumes it as the same session.
    INTERRUPTED = "interrupted"
    # Waiting in the launch queue for a free slot (``queueLaunches``): recorded, no unit yet.
    QUEUED = "queued"
    # Parked at a usage limit: its unit ended, a timer resumes it (same Claude session) when the window resets.
    LIMITED = "limited"

    @property
    def is_terminal(self) -> bool:
        """Nothing runs for it (an interrupted session waits for ``recover``, not for messages)."""
        return self in (Status.COMPLETED, Status.FAILED, Status.KILLED, Status.INTERRUPTED)

    @property
    def is_parked(self) -> bool:
        """Not ended, yet no unit runs for it on purpose (queued, or parked at a usage limit): reconciling it
        with the units must not take it for lost."""
        return self in (Status.QUEUED, Status.LIMITED)

    @property
    def icon(self) -> str:
        return _ICONS[self]


_ICONS = {
    Status.STARTING: "🟡",
    Status.RUNNING: "🟢",
    Status.WAITING: "💬",
    Status.COMPLETED: "✅",
    Status.FAILED: "❌",
    Status.KILLED: "⛔",
    Status.INTERRUPTED: "⏸️",
    Status.QUEUED: "🕒",
    Status.LIMITED: "⏸️",
}


class WaitingFor(StrEnum):
    """What an open session waits for."""

    QUESTION = "question"  # Claude asked the user something; the next message answers it
    INPUT = "input"  # the task is done (status completed); the session stays open for follow-ups
    PERMISSION = "permission"  # a tool call waits for allow or deny
    PLAN = "plan"  # a plan waits for approve or reject

    @property
    def answered_in_turn(self) -> bool:
        """The answer goes to the turn in progress (the SDK's permission callback), not into a new turn."""
        return self in (WaitingFor.PERMISSION, WaitingFor.PLAN)


class EndCause(StrEnum):
    """Why a session ended (``endCause`` in the API and the ``exit`` record's ``cause``)."""

    COMPLETED = "completed"
    IDLE_TIMEOUT = "idle-timeout"
    BUDGET = "budget"
    API_ERROR = "api-error"
    ERROR = "error"  # an error result of Claude Code, or a session that could not be recovered
    CRASH = "crash"  # the runner or the SDK raised
    KILLED = "killed"
    LOST = "lost"  # its runner ended without recording an exit
    SHUTDOWN = "shutdown"  # interrupted: the user manager stopped, or vanished with the machine
    OOM = "oom"
    RUNTIME = "runtime"
    LIMITED = "limited"  # not an end: the runner's `exit` when it parks the session at a usage limit


KILLED_REASON = "killed by clawunits kill"
VANISHED_REASON = "interrupted: the user manager went down while it ran (crash or power cut)"

# The session file's format version (``schema``). Raised only for a change an older clawunits would misread or,
# saving the record again, lose (it keeps only the fields it knows); a file without it is schema 1.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class WorktreeInfo:
    """The git worktree a session runs in (``launch --worktree``): its own branch, cut from ``base``."""

    path: str
    branch: str
    base: str
    # The commit the branch was cut from: a failed launch deletes the branch only while it still points here.
    base_commit: str
    # The workdir given at launch, in the original checkout: git commands and notification routing use it.
    repo: str
    removed: bool = False
    # Set by ``clawunits merge``: the branch it merged into (``--into``; the base otherwise), and after a
    # ``--squash`` the branch tip it took in (the branch counts as merged while it still points there).
    merged_into: str | None = None
    squashed_tip: str | None = None

    @property
    def target(self) -> str:
        """The branch the session's work goes into: where ``merge`` took it, else the base."""
        return self.merged_into or self.base

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "branch": self.branch,
            "base": self.base,
            "baseCommit": self.base_commit,
            "repo": self.repo,
            "removed": self.removed,
            "mergedInto": self.merged_into,
            "squashedTip": self.squashed_tip,
        }


@dataclass(frozen=True)
class SessionRecord:
    """One session as persisted (TOML, one file each). Timestamps are ISO 8601 UTC strings."""

    id: str
    name: str
    prompt: str
    workdir: str
    unit: str
    created_at: str
    status: Status = Status.STARTING
    model: str | None = None
    permission_mode: str = "bypassPermissions"
    budget_usd: float = 5.0
    multi_turn: bool = True
    system_prompt: str | None = None
    allowed_tools: list[str] = field(default_factory=list)
    claude_session_id: str | None = None
    # Set when this session continues another: the Claude session to resume, and whether to fork it.
    resume_claude_session_id: str | None = None
    resumed_from: str | None = None
    forked: bool = False
    cost_usd: float = 0.0
    num_turns: int = 0
    started_at: str | None = None
    completed_at: str | None = None
    reason: str | None = None
    end_cause: EndCause | None = None
    result_preview: str | None = None
    origin_channel: str | None = None
    # The OpenClaw agent that launched it (plugin tools): only that agent may respond to it or kill it.
    origin_agent: str | None = None
    # The chat sender who launched it (``channel|account|id``; None from a shell or RPC), for the authority rule.
    launched_by: str | None = None
    # Whether its questions and ends wake an OpenClaw agent, and which session of which agent (None: the default
    # agent's main session, as `openclaw system event` does). See docs/NOTIFICATIONS.md "Who is woken".
    wakes_agent: bool = True
    wake_agent_id: str | None = None
    wake_session_key: str | None = None
    # Its notify policy (all, status, quiet; clawunits/notify_policy.py); None: the configured one.
    notify: str | None = None
    # Multi-turn: what an open session waits for, and the open request (a permission request's or a plan's id).
    waiting_for: WaitingFor | None = None
    pending_permission: str | None = None
    # Plan mode: the version of the newest plan Claude proposed (1, 2, ... ; 0 = none yet), and the permission
    # mode the session continues in once a plan is approved.
    plan_version: int = 0
    plan_approval_mode: str = "acceptEdits"
    last_activity_at: str | None = None
    auto_responds: int = 0
    # What the conversation spent before this session (resumed sessions): the budget is a lifetime budget.
    prior_cost_usd: float = 0.0
    idle_timeout_minutes: float = 30.0
    permission_timeout_sec: float = 600.0
    stall_timeout_sec: float = 600.0
    # Resource limits of its unit (None: unlimited); see clawunits.systemd.limits.
    memory_max: int | None = None
    cpu_quota: float | None = None
    tasks_max: int | None = None
    runtime_max_sec: float | None = None
    # Finished for over an hour: out of the default listing (``sessions --all`` shows it), unit reset.
    archived: bool = False
    # Recovery after a shutdown: when it was interrupted, how often and when it was last resumed.
    interrupted_at: str | None = None
    recoveries: int = 0
    recovered_at: str | None = None
    # The unit's environment (without clawunits' own variables), so a recovered session runs as it did,
    # whoever runs `recover`. Never shown by the API: it may hold credentials (the file is 0600).
    environment: dict[str, str] = field(default_factory=dict)
    worktree: WorktreeInfo | None = None
    # Usage limits: the window that parked it (five_hour, seven_day, …) and when it resets (status limited, its
    # timer resumes it then), the last utilization Claude Code reported (0..1), when it was last parked and
    # resumed, how often, and the windows whose warning was sent (one per window and session).
    limit_window: str | None = None
    limit_resets_at: str | None = None
    limit_utilization: float | None = None
    limited_at: str | None = None
    limit_resumes: int = 0
    limit_resumed_at: str | None = None
    limit_warned: list[str] = field(default_factory=list)
    # The launch queue (status queued): ``launch --priority`` puts it at the front, and, when it was launched
    # with --worktree, the base its branch is cut from when it starts (its worktree is created then).
    queue_priority: bool = False
    queued_worktree_base: str | None = None
    schema: int = SCHEMA_VERSION

    @property
    def limits(self) -> Limits:
        return Limits(self.memory_max, self.cpu_quota, self.tasks_max, self.runtime_max_sec)

    def with_changes(self, **changes: Any) -> SessionRecord:
        return replace(self, **changes)

    @property
    def is_open(self) -> bool:
        """Its runner takes messages: not finished, or completed but still open for follow-ups.

        A multi-turn session whose turn finished the task (no question) is ``completed``; its runner stays
        up, ``waiting_for`` "input", until a follow-up arrives or the idle timeout closes it.
        """
        return not self.status.is_terminal or (self.status is Status.COMPLETED and self.waiting_for is WaitingFor.INPUT)

    @property
    def launch_dir(self) -> str:
        """The directory the session was launched for: the original checkout of a worktree session."""
        return self.worktree.repo if self.worktree else self.workdir

    @property
    def duration_ms(self) -> int | None:
        start = self.started_at or self.created_at
        if not start:
            return None
        end = self.completed_at
        t0 = parse_ts(start)
        t1 = parse_ts(end) if end else datetime.now(t0.tzinfo)
        return max(0, int((t1 - t0).total_seconds() * 1000))

    # -- state changes: each is written here once; the runner and the service both call these ------------

    def turn_started(self) -> SessionRecord:
        """A new turn begins (a prompt or follow-up is sent to Claude): running, nothing waits."""
        return self.with_changes(
            status=Status.RUNNING,
            waiting_for=None,
            reason=None,
            end_cause=None,
            completed_at=None,
            last_activity_at=utc_now_iso(),
        )

    def turn_finished(self, question: bool) -> SessionRecord:
        """A turn ended: waiting for the answer to a question, or the task done (completed, open for follow-ups).

        A session closed meanwhile (killed, say) keeps its verdict.
        """
        if not self.is_open:
            return self
        now = utc_now_iso()
        if question:
            return self.with_changes(status=Status.WAITING, waiting_for=WaitingFor.QUESTION, last_activity_at=now)
        return self.with_changes(
            status=Status.COMPLETED,
            waiting_for=WaitingFor.INPUT,
            reason="task finished",
            end_cause=EndCause.COMPLETED,
            completed_at=now,
            last_activity_at=now,
        )

    def awaiting_answer(self, kind: WaitingFor, request_id: str, plan_version: int | None = None) -> SessionRecord:
        """A permission request or a plan waits for the user's answer."""
        changes: dict[str, Any] = {"status": Status.WAITING, "waiting_for": kind, "pending_permission": request_id}
        if plan_version is not None:
            changes["plan_version"] = plan_version
        return self.with_changes(**changes)

    def answer_taken(self, permission_mode: str | None = None) -> SessionRecord:
        """The open permission request or plan was answered (or timed out): the turn goes on."""
        return self.with_changes(
            status=Status.RUNNING if not self.status.is_terminal else self.status,
            waiting_for=None,
            pending_permission=None,
            permission_mode=permission_mode or self.permission_mode,
            last_activity_at=utc_now_iso(),
        )

    def ended(self, status: Status, reason: str, cause: EndCause) -> SessionRecord:
        """Closed with a final verdict: nothing waits any more, no request stays open."""
        return self.with_changes(
            status=status,
            reason=reason,
            end_cause=cause,
            waiting_for=None,
            pending_permission=None,
            completed_at=self.completed_at or utc_now_iso(),
        )

    def killed(self) -> SessionRecord:
        """Ended by ``clawunits kill`` (recorded before its unit is stopped, so the runner keeps this verdict)."""
        return self.ended(Status.KILLED, KILLED_REASON, EndCause.KILLED)

    def interrupted(self, reason: str, cause: EndCause = EndCause.SHUTDOWN) -> SessionRecord:
        """Stopped by a shutdown, for ``recover``: a question asked stays asked; a turn in flight or an open
        permission request is continued instead."""
        now = utc_now_iso()
        return self.with_changes(
            status=Status.INTERRUPTED,
            reason=reason,
            end_cause=cause,
            completed_at=now,
            interrupted_at=now,
            waiting_for=WaitingFor.QUESTION if self.waiting_for is WaitingFor.QUESTION else None,
            pending_permission=None,
        )

    def closed(self, status: Status, reason: str, cause: EndCause) -> SessionRecord:
        """The runner ends with this outcome: a verdict already recorded (killed, say) stays, and a completed
        session that was open for follow-ups now closes for them too."""
        if self.status is Status.COMPLETED and self.waiting_for is WaitingFor.INPUT:
            idle = cause is EndCause.IDLE_TIMEOUT
            return self.with_changes(
                waiting_for=None,
                reason=reason if idle else self.reason,
                end_cause=cause if idle else EndCause.COMPLETED,
            )
        if self.status.is_terminal:
            return self
        if status is Status.LIMITED:
            return self  # parked before the runner ended (`parked`), or killed meanwhile: either stays
        if status is Status.INTERRUPTED:
            return self.interrupted(reason, cause)
        return self.ended(status, reason, cause)

    def lost(self, reason: str, cause: EndCause = EndCause.LOST, vanished: bool = False) -> SessionRecord | None:
        """Its runner is gone without recording how the session ended; None when nothing is to change.

        ``vanished``: its unit went with the user manager, so a running session was interrupted, not failed
        (a starting one may just never have been started: failed).
        """
        if not self.is_open:
            return None
        if self.status.is_terminal:
            return self.with_changes(waiting_for=None)
        if vanished and self.status in (Status.RUNNING, Status.WAITING):
            return self.interrupted(VANISHED_REASON)
        return self.ended(Status.FAILED, reason, cause)

    def dequeued(self, workdir: str, worktree: WorktreeInfo | None) -> SessionRecord | None:
        """A queued session takes a free slot: starting now (in its new worktree, if it asked for one); None when
        it is no longer queued (killed meanwhile)."""
        if self.status is not Status.QUEUED:
            return None
        return self.with_changes(
            status=Status.STARTING,
            started_at=utc_now_iso(),
            workdir=workdir,
            worktree=worktree or self.worktree,
            queued_worktree_base=None,
        )

    def recovering(self) -> SessionRecord | None:
        """An interrupted session about to run again; None when it is not interrupted (any more)."""
        if self.status is not Status.INTERRUPTED:
            return None
        now = utc_now_iso()
        return self.with_changes(
            status=Status.WAITING if self.waiting_for is WaitingFor.QUESTION else Status.RUNNING,
            reason=None,
            end_cause=None,
            completed_at=None,
            recoveries=self.recoveries + 1,
            recovered_at=now,
            last_activity_at=now,
        )

    def parked(self, window: str, resets_at: str, utilization: float | None, reason: str) -> SessionRecord:
        """Parked at a usage limit: its runner ends, its timer resumes it at ``resets_at``. A verdict recorded
        meanwhile (killed) stays. A new window starts at the reset, so its warning may come again."""
        if self.status.is_terminal:
            return self
        return self.with_changes(
            status=Status.LIMITED,
            reason=reason,
            waiting_for=None,
            pending_permission=None,
            limit_window=window,
            limit_resets_at=resets_at,
            limit_utilization=self.limit_utilization if utilization is None else utilization,
            limited_at=utc_now_iso(),
            limit_warned=[w for w in self.limit_warned if w != window],
        )

    def unparked(self) -> SessionRecord | None:
        """A parked session about to run again (its timer fired); None when it is not parked (any more)."""
        if self.status is not Status.LIMITED:
            return None
        now = utc_now_iso()
        return self.with_changes(
            status=Status.RUNNING,
            reason=None,
            limit_resumes=self.limit_resumes + 1,
            limit_resumed_at=now,
            last_activity_at=now,
        )

    @property
    def resumed_from_limit(self) -> bool:
        """Its runner starts again after a usage limit (not after a shutdown: ``recover`` came later, if at all)."""
        return bool(self.limit_resumed_at) and (self.recovered_at or "") < (self.limit_resumed_at or "")

    def to_json(self) -> dict[str, Any]:
        """The API shape (camelCase, like the seed's gateway RPC responses)."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "prompt": self.prompt,
            "workdir": self.workdir,
            "model": self.model,
            "permissionMode": self.permission_mode,
            "budgetUsd": self.budget_usd,
            "costUsd": self.cost_usd,
            "numTurns": self.num_turns,
            "multiTurn": self.multi_turn,
            "claudeSessionId": self.claude_session_id,
            "unit": self.unit,
            "createdAt": self.created_at,
            "startedAt": self.started_at or self.created_at,
            "completedAt": self.completed_at,
            "durationMs": self.duration_ms,
            "reason": self.reason,
            "endCause": self.end_cause,
            "originChannel": self.origin_channel,
            "originAgent": self.origin_agent,
            "launchedBy": self.launched_by,
            "wakes": {"agentId": self.wake_agent_id, "sessionKey": self.wake_session_key} if self.wakes_agent else None,
            "notify": self.notify,
            "resumedFrom": self.resumed_from,
            "forked": self.forked,
            "waitingFor": self.waiting_for,
            "pendingPermission": self.pending_permission,
            "planVersion": self.plan_version,
            "planApprovalMode": self.plan_approval_mode,
            "lastActivityAt": self.last_activity_at,
            "autoResponds": self.auto_responds,
            "priorCostUsd": self.prior_cost_usd,
            "idleTimeoutMinutes": self.idle_timeout_minutes,
            "archived": self.archived,
            "limits": {
                "memoryMax": format_size(self.memory_max),
                "cpuQuota": f"{self.cpu_quota:g}%" if self.cpu_quota is not None else UNLIMITED,
                "tasksMax": self.tasks_max if self.tasks_max is not None else UNLIMITED,
                "runtimeMax": format_duration(self.runtime_max_sec),
            },
            "interruptedAt": self.interrupted_at,
            "recoveries": self.recoveries,
            "recoveredAt": self.recovered_at,
            "worktree": self.worktree.to_json() if self.worktree else None,
            "limitWindow": self.limit_window,
            "limitResetsAt": self.limit_resets_at,
            "limitUtilization": self.limit_utilization,
            "limitedAt": self.limited_at,
            "limitResumes": self.limit_resumes,
            "limitResumedAt": self.limit_resumed_at,
            "queuePriority": self.queue_priority,
        }


def parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))
