"""The session record: what the store keeps about one session, and its JSON shape for the API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from clawunits.limits import UNLIMITED, Limits, format_duration, format_size


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

    @property
    def is_terminal(self) -> bool:
        """Nothing runs for it (an interrupted session waits for ``recover``, not for messages)."""
        return self in (Status.COMPLETED, Status.FAILED, Status.KILLED, Status.INTERRUPTED)

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
}

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

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "branch": self.branch,
            "base": self.base,
            "baseCommit": self.base_commit,
            "repo": self.repo,
            "removed": self.removed,
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
    # How it ended: completed, idle-timeout, budget, api-error, error, crash, killed, lost (no exit record),
    # or shutdown (interrupted: the user manager stopped, or vanished with the machine).
    end_cause: str | None = None
    result_preview: str | None = None
    origin_channel: str | None = None
    # The OpenClaw agent that launched it (plugin tools): only that agent may respond to it or kill it.
    origin_agent: str | None = None
    # Multi-turn: what a waiting session waits for ("question", "input", "permission", "plan") and the open
    # request (a permission request's or a plan's id).
    waiting_for: str | None = None
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
    # Resource limits of its unit (None: unlimited); see clawunits.limits.
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
        return not self.status.is_terminal or (self.status is Status.COMPLETED and self.waiting_for == "input")

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

    def to_toml(self) -> dict[str, Any]:
        """The stored form: None values are left out (TOML has no null)."""
        data = asdict(self)
        data["status"] = self.status.value
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_toml(cls, data: dict[str, Any]) -> SessionRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = Status(values.get("status", Status.STARTING))
        if isinstance(values.get("worktree"), dict):
            known_wt = {f.name for f in fields(WorktreeInfo)}
            values["worktree"] = WorktreeInfo(**{k: v for k, v in values["worktree"].items() if k in known_wt})
        return cls(**values)

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
        }


def parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))
