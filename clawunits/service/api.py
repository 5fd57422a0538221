"""The operations behind every front-end (CLI, plugin, tests): launch, sessions, output, kill, stats, wait.

``Service`` is the facade; each operation lives in its own module of this package (``launch``, ``sessions``,
``respond``, ``kill``, ``recover``, ``output``, ``streaming``, ``session_worktree``) as functions over a
:class:`~clawunits.service.context.Context`. The request and result types and the input checks are re-exported
here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawunits.service.authority import Action, Caller, Via
from clawunits.service.checks import (
    MAX_BUDGET_USD,
    MAX_PROMPT_BYTES,
    check_agent,
    check_budget,
    check_message,
    check_model,
    check_permission_mode,
    check_prompt,
    check_tool,
    check_workdir,
)
from clawunits.service.context import Context
from clawunits.service.results import (
    ForegroundView,
    KillResult,
    LaunchRequest,
    MergeResult,
    OutputView,
    PullRequestResult,
    RecoverReport,
    Recovery,
    RecoveryAction,
    RespondResult,
)
from clawunits.state.models import SessionRecord

if TYPE_CHECKING:
    from clawunits.service import worktree as worktrees
    from clawunits.service.queue import Started

__all__ = [
    "MAX_BUDGET_USD",
    "MAX_PROMPT_BYTES",
    "Action",
    "Caller",
    "ForegroundView",
    "KillResult",
    "LaunchRequest",
    "MergeResult",
    "OutputView",
    "PullRequestResult",
    "RecoverReport",
    "Recovery",
    "RecoveryAction",
    "RespondResult",
    "Service",
    "Via",
    "check_agent",
    "check_budget",
    "check_message",
    "check_model",
    "check_permission_mode",
    "check_prompt",
    "check_tool",
    "check_workdir",
]


class Service(Context):
    """The clawunits operations over one state directory, one settings object and one systemd connection.

    Each method imports its operation module when called, not at the top: every CLI call imports this
    module, and a command needs only its own operation (start-up time; see docs/PERFORMANCE.md).
    Reads are authorized here; each operation that changes a session authorizes itself once it knows the
    session (see :mod:`clawunits.service.authority`).
    """

    def launch(self, req: LaunchRequest) -> SessionRecord:
        """Validate, record and start a session unit; returns once the runner process is running."""
        from clawunits.service import launch

        return launch.launch(self, req)

    def get(self, ref: str, agent: str | None = None) -> SessionRecord:
        """One session by id, name, Claude UUID or id prefix, with its status reconciled (and, with
        ``agent``, only if that agent launched it)."""
        from clawunits.service import sessions

        return sessions.get(self, ref, agent)

    def sessions(
        self, status: str = "all", include_archived: bool = False, agent: str | None = None, channel: str | None = None
    ) -> list[SessionRecord]:
        """Sessions (oldest first), reconciled with their units, filtered by status."""
        from clawunits.service import sessions

        self.authorize(Action.READ)
        return sessions.list_sessions(self, status, include_archived, agent, channel)

    def resumable(self) -> list[SessionRecord]:
        """Finished sessions that can be resumed (they have a Claude session id), newest first."""
        from clawunits.service import sessions

        self.authorize(Action.READ)
        return sessions.resumable(self)

    def wait(self, ref: str, timeout: float | None = None, until: str = "idle", interval: float = 0.2) -> SessionRecord:
        """Block until the session waits for input or has ended (``until="end"``: has ended); returns it."""
        from clawunits.service import sessions

        self.authorize(Action.READ)
        return sessions.wait(self, ref, timeout, until, interval)

    def output(self, ref: str, lines: int = 50, full: bool = False) -> OutputView:
        """The session's recent output entries (assistant text, tool calls, errors), newest last."""
        from clawunits.service import output

        self.authorize(Action.READ)
        return output.output(self, ref, lines, full)

    def fg(self, ref: str, channel: str | None, lines: int = 30) -> ForegroundView:
        """Bring a session to the foreground of ``channel``: catch-up first, then the notifier streams to it."""
        from clawunits.service import streaming

        return streaming.fg(self, ref, channel, lines)

    def bg(self, ref: str | None, channel: str) -> list[SessionRecord]:
        """Stop streaming a session (or every session in the foreground of ``channel``) to the channel."""
        from clawunits.service import streaming

        return streaming.bg(self, ref, channel)

    def stats(self) -> dict[str, Any]:
        """Usage figures from the durable store (and sessions gc removed from it), so they survive restarts."""
        from clawunits.service.stats import load_stats_archive, stats_of, worktree_usage_json

        self.authorize(Action.READ)
        records = self.sessions(include_archived=True)
        return {**stats_of(records, load_stats_archive(self.store.root)), "worktrees": worktree_usage_json(records)}

    def respond(
        self,
        ref: str,
        message: str,
        interrupt: bool = False,
        user_initiated: bool = False,
        agent: str | None = None,
        plan_version: int | None = None,
    ) -> RespondResult:
        """Queue a message (or the answer to a question or plan) for a session and wake its runner."""
        from clawunits.service import respond

        return respond.respond(self, ref, message, interrupt, user_initiated, agent, plan_version)

    def notify(self, ref: str, policy: str, agent: str | None = None) -> SessionRecord:
        """Change what the session tells its chat from now on: all, status, quiet, or default (the config's)."""
        from clawunits.service import notify

        return notify.set_policy(self, ref, policy, agent)

    def kill(self, ref: str, agent: str | None = None, remove_worktree: bool = False) -> KillResult:
        """Stop the session's unit: every process of it gets SIGTERM, then SIGKILL after the stop timeout.

        With ``remove_worktree`` its worktree and branch are removed afterwards if they are merged and clean.
        """
        if remove_worktree:
            from clawunits.service import session_worktree

            return session_worktree.kill_and_remove(self, ref, agent)
        from clawunits.service import kill

        return kill.kill(self, ref, agent)

    def recover(
        self, refs: list[str] | None = None, dry_run: bool = False, boot: bool = False, agent: str | None = None
    ) -> RecoverReport:
        """Resume sessions a shutdown interrupted, each as itself (see :func:`clawunits.service.recover.recover`)."""
        from clawunits.service import recover

        return recover.recover(self, refs, dry_run, boot, agent)

    def unpark(self, ref: str, agent: str | None = None, timer: bool = False) -> Recovery:
        """Resume a session parked at a usage limit now (see :func:`clawunits.service.parking.unpark`)."""
        from clawunits.service import parking

        return parking.unpark(self, ref, agent, timer)

    def merge(
        self,
        ref: str,
        squash: bool = False,
        into: str | None = None,
        resolve: bool = False,
        agent: str | None = None,
        channel: str | None = None,
        instructions: str | None = None,
    ) -> MergeResult:
        """Merge a finished worktree session's branch into its base (or ``into``), or refuse and change nothing."""
        from clawunits.service import merge

        return merge.merge(self, ref, squash, into, resolve, agent, channel, instructions)

    def pull_request(
        self,
        ref: str,
        base: str | None = None,
        remote: str | None = None,
        draft: bool = False,
        agent: str | None = None,
    ) -> PullRequestResult:
        """Push a worktree session's branch and open a pull request with ``gh``."""
        from clawunits.service import pull_request

        return pull_request.pull_request(self, ref, base, remote, draft, agent)

    def queue(self) -> list[SessionRecord]:
        """The launch queue: queued sessions in the order they start."""
        from clawunits.service import queue

        self.authorize(Action.READ)
        return queue.ordered(self.store.all())

    def queue_positions(self) -> dict[str, int]:
        """Each queued session's place in the launch queue (1: starts next), by id."""
        from clawunits.service import queue

        return queue.positions(self.store.all())

    def drain_queue(self) -> list[Started]:
        """Start queued sessions while slots are free (see :func:`clawunits.service.queue.drain`)."""
        from clawunits.service import queue

        self.authorize(Action.LAUNCH)
        return queue.drain(self)

    @property
    def worktree_root(self) -> Path:
        from clawunits.service import session_worktree

        return session_worktree.root(self)

    def worktree(self, ref: str) -> tuple[SessionRecord, worktrees.WorktreeView]:
        """The session's worktree: branch, base, status and diff stat against the base."""
        from clawunits.service import session_worktree

        self.authorize(Action.READ)
        return session_worktree.show(self, ref)

    def remove_worktree(self, record: SessionRecord) -> worktrees.Removal:
        """Remove a finished session's worktree and branch if merged into the base and clean; else keep them."""
        from clawunits.service import session_worktree

        return session_worktree.remove(self, record)
