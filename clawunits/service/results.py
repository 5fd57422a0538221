"""What the operations take and return: plain dataclasses, cheap to import (every CLI call imports them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from clawunits.state.models import SessionRecord

if TYPE_CHECKING:
    from clawunits.service import worktree as worktrees


@dataclass(frozen=True)
class LaunchRequest:
    """Parameters of a launch; None means "use the configured default"."""

    prompt: str
    name: str | None = None
    workdir: str | None = None
    model: str | None = None
    max_budget_usd: float | None = None
    system_prompt: str | None = None
    allowed_tools: list[str] = field(default_factory=list)
    permission_mode: str | None = None
    multi_turn: bool = True
    origin_channel: str | None = None
    resume: str | None = None
    fork: bool = False
    # The OpenClaw agent launching it, and (agent tool only) the pre-launch guards with its workspace.
    origin_agent: str | None = None
    run_guards: bool = False
    agent_workspace: str | None = None
    # Resource limits in systemd spellings ("4G", "150%", "512", "2h", "infinity"); None: resumed or configured.
    memory_max: str | None = None
    cpu_quota: str | None = None
    tasks_max: str | None = None
    runtime_max: str | None = None
    # Run in a new git worktree on branch clawunits/<name>, cut from ``base`` (default: the current branch).
    worktree: bool = False
    base: str | None = None
    # The notify policy (all, status, quiet); None: the configured one.
    notify: str | None = None
    # Beyond maxSessions, queued at the front of the launch queue (behind earlier priority launches).
    priority: bool = False


@dataclass(frozen=True)
class RespondResult:
    record: SessionRecord
    message_id: str
    interrupted: bool


@dataclass(frozen=True)
class KillResult:
    record: SessionRecord
    already_finished: bool
    # With ``remove_worktree``: whether the session's worktree went, and why (not).
    worktree: worktrees.Removal | None = None


class RecoveryAction(StrEnum):
    """What ``recover`` did with one session (its ``action`` in the JSON answer)."""

    RECOVERED = "recovered"  # its unit runs again
    WOULD_RECOVER = "would-recover"  # dry run
    SKIPPED = "skipped"  # nothing to do, e.g. it runs already
    FAILED = "failed"  # it cannot continue (no budget left, workdir gone): now failed
    ERROR = "error"  # its unit did not start: it stays interrupted (or parked) for the next try
    RESUMED = "resumed"  # parked at a usage limit: its unit runs again (`unpark`, or at boot after the reset)
    REARMED = "rearmed"  # parked at a usage limit: its timer was armed again at boot


@dataclass(frozen=True)
class Recovery:
    """What ``recover`` did with one session, and why."""

    record: SessionRecord
    action: RecoveryAction
    detail: str = ""
    invocation_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "name": self.record.name,
            "action": self.action.value,
            "detail": self.detail,
            "status": self.record.status.value,
            "unit": self.record.unit,
            "invocationId": self.invocation_id,
            "claudeSessionId": self.record.claude_session_id,
            "recoveries": self.record.recoveries,
        }


@dataclass(frozen=True)
class RecoverReport:
    sessions: list[Recovery]
    dry_run: bool = False
    # Set when nothing was looked at: boot recovery switched off (recoverOnBoot = false).
    disabled: str | None = None

    @property
    def errors(self) -> int:
        return sum(1 for r in self.sessions if r.action is RecoveryAction.ERROR)


@dataclass(frozen=True)
class ForegroundView:
    """What ``fg`` shows: the records a channel missed (catch-up), else the last lines."""

    record: SessionRecord
    channel: str | None
    catchup: list[str] | None
    lines: list[str]
    cursor: str | None


@dataclass(frozen=True)
class OutputView:
    record: SessionRecord
    lines: list[str]
    result: dict[str, Any] | None
    lost_records: int


@dataclass(frozen=True)
class MergeResult:
    """What ``merge`` did: the commit it made in ``into`` (None when already merged or handed to a resolver)."""

    record: SessionRecord
    into: str
    commit: str | None
    squash: bool
    # Files the session left uncommitted, committed on its branch before the merge.
    uncommitted: int
    removal: worktrees.Removal | None
    already_merged: bool = False
    conflicts: list[str] = field(default_factory=list)
    # With ``--resolve`` and a conflict: the session launched to resolve it.
    resolver: SessionRecord | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "name": self.record.name,
            "branch": self.record.worktree.branch if self.record.worktree else None,
            "into": self.into,
            "merged": self.commit is not None or self.already_merged,
            "alreadyMerged": self.already_merged,
            "commit": self.commit,
            "squash": self.squash,
            "committedUncommitted": self.uncommitted,
            "conflicts": self.conflicts,
            "resolver": {"id": self.resolver.id, "name": self.resolver.name} if self.resolver else None,
            "worktree": self.removal.to_json() if self.removal else None,
        }


@dataclass(frozen=True)
class PullRequestResult:
    """What ``pr`` did: the branch pushed, and the pull request opened (or the one that was already open)."""

    record: SessionRecord
    remote: str
    base: str
    url: str
    existing: bool
    uncommitted: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "name": self.record.name,
            "branch": self.record.worktree.branch if self.record.worktree else None,
            "remote": self.remote,
            "base": self.base,
            "url": self.url,
            "existing": self.existing,
            "committedUncommitted": self.uncommitted,
        }
