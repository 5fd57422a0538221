"""The operations behind every front-end (CLI, plugin, tests): launch, sessions, output, kill, stats, wait."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawunits.errors import Forbidden, InvalidInput, LimitReached, NotFound, StateError, SystemdError
from clawunits.notifier.channels import check_channel
from clawunits.records import GAP, TURN_END, is_secret_name, shorten, utc_now_iso
from clawunits.state import naming
from clawunits.state.config import PERMISSION_MODES, Settings, load_settings, state_dir
from clawunits.state.models import EndCause, SessionRecord, Status, WaitingFor, WorktreeInfo, parse_ts
from clawunits.state.store import Store
from clawunits.systemd import journal

# Imported where used: every CLI call imports this module, and each command needs only a few of these
# (start-up time is what a CLI call mostly costs; see docs/PERFORMANCE.md).
if TYPE_CHECKING:
    from clawunits import plans
    from clawunits.service import worktree as worktrees
    from clawunits.systemd.limits import Limits
    from clawunits.systemd.units import UnitSpec, UnitState, UserManager

MAX_PROMPT_BYTES = 256 * 1024
LAUNCH_GRACE_SEC = 30.0
MAX_BUDGET_USD = 1000.0
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@\[\]/-]{0,99}$")
TOOL_RE = re.compile(r"^[A-Za-z0-9_.*:()\[\] /-]{1,200}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


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


@dataclass(frozen=True)
class Recovery:
    """What ``recover`` did with one session.

    ``action``: ``recovered`` (its unit runs again), ``would-recover`` (dry run), ``skipped`` (nothing to
    do, e.g. it runs already), ``failed`` (it cannot continue: no budget left, workdir gone; now failed) or
    ``error`` (its unit did not start; it stays interrupted for the next try).
    """

    record: SessionRecord
    action: str
    detail: str = ""
    invocation_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "name": self.record.name,
            "action": self.action,
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
        return sum(1 for r in self.sessions if r.action == "error")


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


class Service:
    """The clawunits operations over one state directory, one settings object and one systemd connection."""

    def __init__(
        self,
        settings: Settings | None = None,
        store: Store | None = None,
        manager: UserManager | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.store = store or Store(state_dir())
        self._manager = manager
        self.environ = dict(os.environ if environ is None else environ)

    @property
    def manager(self) -> UserManager:
        # Connect lazily: listing finished sessions or printing stats needs no bus at all.
        from clawunits.systemd.units import UserManager

        if self._manager is None:
            self._manager = UserManager()
        return self._manager

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()

    # -- launch ----------------------------------------------------------------------------------------

    def launch(self, req: LaunchRequest) -> SessionRecord:
        """Validate, record and start a session unit; returns once the runner process is running."""
        from clawunits.systemd.sessionenv import session_environment

        if req.worktree:  # only a worktree launch uses it (``checkout``/``created`` are None otherwise)
            from clawunits.service import worktree as worktrees

        prompt = check_prompt(req.prompt)
        _check_worktree_options(req)
        origin = check_channel(req.origin_channel) if req.origin_channel is not None else None
        resumed = self._resolve_resume(req.resume) if req.resume else None
        self._check_resumable(resumed, req.fork)
        inherited = _inherited_worktree(req, resumed)
        workdir = check_workdir(
            req.workdir or (resumed.workdir if resumed else None) or self.settings.defaultWorkdir or os.getcwd()
        )
        model = check_model(req.model or (resumed.model if resumed else None) or self.settings.defaultModel)
        default_budget = resumed.budget_usd if resumed else self.settings.defaultBudgetUsd
        budget = check_budget(req.max_budget_usd if req.max_budget_usd is not None else default_budget)
        # The budget is the conversation's lifetime budget: a resumed session gets what is left of it.
        prior_cost = round(resumed.prior_cost_usd + resumed.cost_usd, 6) if resumed else 0.0
        if resumed and prior_cost >= budget:
            raise LimitReached(
                f"the conversation of {resumed.name} [{resumed.id}] has spent ${prior_cost:.4f}"
                f" of its ${budget:g} budget",
                hint="give a larger --max-budget-usd",
            )
        # A resumed conversation keeps how it was set up (approval prompts included) unless told otherwise.
        mode = check_permission_mode(
            req.permission_mode or (resumed.permission_mode if resumed else None) or self.settings.permissionMode
        )
        tools = [check_tool(t) for t in (req.allowed_tools or (resumed.allowed_tools if resumed else []))]
        system_prompt = (
            req.system_prompt if req.system_prompt is not None else (resumed.system_prompt if resumed else None)
        )
        if req.fork and not req.resume:
            raise InvalidInput("--fork needs --resume: only a resumed session can be forked")
        if system_prompt is not None and "\0" in system_prompt:
            raise InvalidInput("system prompt contains a NUL byte")
        base = naming.validate_name(req.name) if req.name is not None else naming.generate_name(prompt)
        agent = check_agent(req.origin_agent)
        limits = self._limits(req, resumed)
        checkout = self._checkout(req, workdir)
        if req.run_guards:
            from clawunits.service.guards import GuardContext, check_launch

            ctx = GuardContext(workdir=workdir, agent_id=agent, agent_workspace=req.agent_workspace)
            check_launch(ctx, self.settings, self.environ)

        with self.store.lock("launch"):
            existing = self.store.all()
            self._check_capacity(existing)
            taken = {r.name for r in existing}
            if checkout is not None:
                taken |= worktrees.taken_names(checkout, self.worktree_root)
            name = naming.unique_name(base, taken)
            session_id = _fresh_id({r.id for r in existing})
            # Created under the launch lock: two launches cannot pick the same branch or directory.
            created = worktrees.create(checkout, self.worktree_root, name) if checkout else None
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
                started_at=now,
                model=model,
                permission_mode=mode,
                budget_usd=budget,
                multi_turn=req.multi_turn,
                system_prompt=system_prompt,
                allowed_tools=tools,
                resume_claude_session_id=resumed.claude_session_id if resumed else _raw_uuid(req.resume),
                resumed_from=(resumed.id if resumed else req.resume) if req.resume else None,
                forked=req.fork,
                origin_channel=origin,
                origin_agent=agent,
                prior_cost_usd=prior_cost,
                idle_timeout_minutes=float(self.settings.idleTimeoutMinutes),
                permission_timeout_sec=float(self.settings.permissionTimeoutSec),
                plan_approval_mode=self.settings.planApprovalMode,
                stall_timeout_sec=float(self.settings.stallTimeoutSec),
                memory_max=limits.memory_max,
                cpu_quota=limits.cpu_quota,
                tasks_max=limits.tasks_max,
                runtime_max_sec=limits.runtime_max_sec,
                # Secrets stay out of the state: a recovery takes them from its own environment.
                environment={
                    k: v
                    for k, v in session_environment(self.environ, self.settings, {}).items()
                    if not is_secret_name(k)
                },
                worktree=created or inherited,
            )
            try:
                self.store.save(record)
            except BaseException:
                if created is not None:
                    worktrees.discard(created)
                raise
        try:
            self.manager.start(self._unit_spec(record))
        except SystemdError as e:
            why = f"unit did not start: {e.message}"
            self.store.update(record.id, lambda r: r.ended(Status.FAILED, why, EndCause.CRASH))
            if created is not None:
                # Nothing ran in it: leave no stray worktree or branch behind.
                worktrees.discard(created)
                self.store.update(record.id, lambda r: r.with_changes(worktree=_removed(r.worktree)))
            raise
        return record

    def _limits(self, req: LaunchRequest, resumed: SessionRecord | None) -> Limits:
        """Each limit from the launch, else from the resumed session, else from the configuration."""
        from clawunits.state.config import session_limits
        from clawunits.systemd.limits import Limits, parse_cpu_quota, parse_duration, parse_memory, parse_tasks

        base = resumed.limits if resumed else session_limits(self.settings)
        return Limits(
            memory_max=parse_memory(req.memory_max) if req.memory_max is not None else base.memory_max,
            cpu_quota=parse_cpu_quota(req.cpu_quota) if req.cpu_quota is not None else base.cpu_quota,
            tasks_max=parse_tasks(req.tasks_max) if req.tasks_max is not None else base.tasks_max,
            runtime_max_sec=parse_duration(req.runtime_max) if req.runtime_max is not None else base.runtime_max_sec,
        )

    @property
    def worktree_root(self) -> Path:
        from clawunits.service import worktree as worktrees

        return worktrees.root_for(self.settings.worktreeDir, self.store.root)

    def _checkout(self, req: LaunchRequest, workdir: str) -> worktrees.Checkout | None:
        """With ``--worktree``: the repository and base the session's worktree is cut from."""
        from clawunits.service import worktree as worktrees

        return worktrees.prepare(workdir, req.base) if req.worktree else None

    def _unit_spec(self, record: SessionRecord) -> UnitSpec:
        from clawunits.systemd.limits import SESSION_SLICE
        from clawunits.systemd.sessionenv import session_environment
        from clawunits.systemd.units import UnitSpec

        fixed = {
            "CLAWUNITS_STATE_DIR": str(self.store.root),
            "CLAWUNITS_SESSION_ID": record.id,
            "PYTHONUNBUFFERED": "1",
        }
        if self.settings.claudePath:
            fixed["CLAWUNITS_CLAUDE_PATH"] = self.settings.claudePath
        # The environment it was launched with (a recovery runs as the original did, CLAUDE_CONFIG_DIR and
        # ANTHROPIC_BASE_URL included), but secrets, which are never stored, from this caller's environment
        # (at boot: the user manager's, e.g. ~/.config/environment.d). Records without one get the caller's.
        current = session_environment(self.environ, self.settings, fixed)
        env = None
        if record.environment:
            secrets = {k: v for k, v in current.items() if is_secret_name(k)}
            env = {**record.environment, **secrets, **fixed}
        return UnitSpec(
            name=record.unit,
            description=f"clawunits session {record.name} [{record.id}]: {shorten(record.prompt, 60)}",
            argv=[sys.executable, "-m", "clawunits.runner", record.id],
            workdir=record.workdir,
            environment=env or current,
            syslog_identifier=journal.syslog_identifier(record.unit),
            stop_timeout_sec=self.settings.stopTimeoutSec,
            slice=SESSION_SLICE,
            limits=record.limits,
        )

    def _check_capacity(self, existing: list[SessionRecord]) -> None:
        active = [r for r in existing if not r.status.is_terminal]
        if len(active) < self.settings.maxSessions:
            return
        # Count live units, not records: a record can be stale if its unit died unnoticed.
        running = self._reconcile(active)
        if sum(1 for r in running if not r.status.is_terminal) >= self.settings.maxSessions:
            raise LimitReached(f"Max sessions reached ({self.settings.maxSessions}). Kill a session first.")

    def _resolve_resume(self, ref: str) -> SessionRecord | None:
        """The stored session to resume, or None for a raw Claude session UUID that no record knows."""
        try:
            record = self.store.resolve(ref)
        except NotFound:
            if _raw_uuid(ref):
                return None
            raise
        if not record.claude_session_id:
            raise StateError(f"session {record.name} [{record.id}] has no Claude session id to resume")
        return record

    def _check_resumable(self, record: SessionRecord | None, fork: bool) -> None:
        """Two Claude Code processes appending to one transcript would corrupt it; a fork writes a new one."""
        if record is None or fork:
            return
        record = self._reconcile([record])[0]
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
            self._close_open(record)

    # -- reading ---------------------------------------------------------------------------------------

    def get(self, ref: str, agent: str | None = None) -> SessionRecord:
        """One session by id, name, Claude UUID or id prefix, with its status reconciled.

        With ``agent`` (an OpenClaw agent acting through the plugin), a session another agent launched is
        refused: one agent cannot act on another's sessions.
        """
        record = self.store.resolve(ref)
        if agent is not None and record.origin_agent is not None and record.origin_agent != agent:
            raise Forbidden(
                f"session {record.name} [{record.id}] belongs to agent {record.origin_agent!r}, not {agent!r}",
                hint="an agent can only act on the sessions it launched",
            )
        return self._reconcile([record])[0]

    def sessions(
        self, status: str = "all", include_archived: bool = False, agent: str | None = None, channel: str | None = None
    ) -> list[SessionRecord]:
        """Sessions (oldest first), reconciled with their units, filtered by status.

        Sessions finished over an hour ago are archived by ``clawunits gc`` and listed only on request.
        """
        if status not in STATUS_FILTERS:
            raise InvalidInput(f"unknown status filter {status!r}", hint=f"one of: {', '.join(STATUS_FILTERS)}")
        records = self.store.all()
        active = [r for r in records if r.is_open]
        if active:
            fixed = {r.id: r for r in self._reconcile(active)}
            records = [fixed.get(r.id, r) for r in records]
        origin = check_channel(channel) if channel is not None else None
        return [
            r
            for r in records
            if STATUS_FILTERS[status](r.status)
            and (include_archived or not r.archived)
            and (agent is None or r.origin_agent == agent)
            and (origin is None or r.origin_channel == origin)
        ]

    def _reconcile(self, records: list[SessionRecord]) -> list[SessionRecord]:
        """Correct open records whose unit ended without the runner recording it.

        A session still marked running or waiting whose unit exited becomes ``failed`` (SIGKILL, OOM); one
        whose unit is gone altogether went down with the user manager (a crash or power cut: nothing ran its
        SIGTERM path) and becomes ``interrupted``, for ``recover``. A completed session still marked open for
        follow-ups is closed.
        """
        if not any(r.is_open for r in records):
            return records
        listed = self.manager.list()
        out = []
        for record in records:
            if not record.is_open or listed.get(record.unit, ("", ""))[1] == "running":
                out.append(record)
                continue
            state = self.manager.state(record.unit)
            if (state is not None and not state.has_exited) or (state is None and _launching(record)):
                out.append(record)
                continue
            reason, cause = _lost_reason(state)
            vanished = state is None
            out.append(self.store.update(record.id, lambda r, why=reason, c=cause, gone=vanished: r.lost(why, c, gone)))
        return out

    def output(self, ref: str, lines: int = 50, full: bool = False) -> OutputView:
        """The session's recent output entries (assistant text, tool calls, errors), newest last."""
        from clawunits.render import render_entry

        if lines < 1 and not full:
            raise InvalidInput("--lines must be at least 1")
        record = self.get(ref)
        records = (journal.read_after(record.unit) if full else _tail(record.unit, lines)).records
        entries = [e for e in (render_entry(r) for r in records) if e is not None]
        last_turn = next((r for r in reversed(records) if r.type == TURN_END), None)
        return OutputView(
            record=record,
            lines=entries if full else entries[-lines:],
            result=last_turn.to_json() if last_turn else None,
            lost_records=sum(r.get("missing", 0) for r in records if r.type == GAP),
        )

    def fg(self, ref: str, channel: str | None, lines: int = 30) -> ForegroundView:
        """Bring a session to the foreground of ``channel``: catch-up first, then the notifier streams to it.

        Catch-up is exactly the records after the last one this channel saw (a journal cursor); a channel
        that never saw the session gets the last ``lines`` entries instead.
        """
        from clawunits.render import render_entry
        from clawunits.service.foreground import Foreground

        if lines < 1:
            raise InvalidInput("--lines must be at least 1")
        record = self.get(ref)
        ch = check_channel(channel) if channel is not None else None
        state = Foreground(self.store)
        view = state.view(record.id, ch) if ch else None
        catchup: list[str] | None = None
        if view is not None and view.seen:
            batch = journal.read_after(record.unit, view.seen)
            missed = [e for e in (render_entry(r) for r in batch.records) if e is not None]
            catchup = missed or None
        if catchup is None:
            batch = _tail(record.unit, lines)
        entries = [e for e in (render_entry(r) for r in batch.records) if e is not None]
        cursor = batch.cursor or (view.seen if view else None)
        if ch:
            state.set_foreground(record.id, ch, cursor)
        return ForegroundView(record, ch, catchup, [] if catchup else entries[-lines:], cursor)

    def bg(self, ref: str | None, channel: str) -> list[SessionRecord]:
        """Stop streaming a session (or every session in the foreground of ``channel``) to the channel."""
        from clawunits.service.foreground import Foreground

        ch = check_channel(channel)
        state = Foreground(self.store)
        if ref is not None:
            record = self.get(ref)
            state.set_background([record.id], ch)
            return [record]
        ids = state.sessions_on(ch)
        state.set_background(ids, ch)
        out = []
        for sid in ids:
            with contextlib.suppress(NotFound):
                out.append(self.store.load(sid))
        return out

    def stats(self) -> dict[str, Any]:
        """Usage figures from the durable store (and sessions gc removed from it), so they survive restarts."""
        from clawunits.service.stats import load_stats_archive, stats_of

        return stats_of(self.sessions(include_archived=True), load_stats_archive(self.store.root))

    def resumable(self) -> list[SessionRecord]:
        """Finished sessions that can be resumed (they have a Claude session id), newest first."""
        done = [r for r in self.sessions(include_archived=True) if r.status.is_terminal and r.claude_session_id]
        done.sort(key=lambda r: r.completed_at or r.created_at, reverse=True)
        return done[: self.settings.maxPersistedSessions]

    # -- control ---------------------------------------------------------------------------------------

    def respond(
        self,
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
        from clawunits import plans
        from clawunits.state.inbox import inbox_for

        text = check_message(message)
        answer = plans.parse_answer(text)
        if plan_version is not None and (plan_version < 1 or isinstance(plan_version, bool)):
            raise InvalidInput(f"plan version must be a positive integer, got {plan_version!r}")
        if plan_version is not None and answer is not None and answer.version not in (None, plan_version):
            raise InvalidInput(f"the message answers plan v{answer.version}, not plan v{plan_version}")
        record = self.get(ref, agent)
        if record.is_open and record.status.is_terminal and not self._unit_running(record):
            record = self.store.update(record.id, lambda r: r.with_changes(waiting_for=None))
        limit = self.settings.maxAutoResponds
        # Under the record's lock, like the runner's closing on idle timeout: a message is either posted to
        # an open session (and will be delivered) or refused, never left in a closed inbox.
        with self.store.lock(record.id):
            current = self.store.load(record.id)
            _check_accepts_messages(current)
            text = _plan_answer_text(current, text, answer, plan_version)
            if not user_initiated and current.auto_responds >= limit:
                raise LimitReached(
                    f"⚠️ Auto-respond limit reached ({current.auto_responds}/{limit}). Ask the user to provide the "
                    f"answer for session {record.name}. Then call claude_respond with their answer and set "
                    "userInitiated: true to reset the counter."
                )
            posted = inbox_for(self.store.root, record.id).post(
                text, interrupt=interrupt, user_initiated=user_initiated
            )
            count = 0 if user_initiated else current.auto_responds + 1
            # The runner is about to work on it: report it running now, not the state of the last turn.
            if current.waiting_for and current.waiting_for.answered_in_turn:
                updated = current.with_changes(auto_responds=count, last_activity_at=utc_now_iso())
            else:
                updated = current.turn_started().with_changes(auto_responds=count)
            self.store.save(updated)
        self._wake(record)
        # An interrupt stops a turn in progress; an answer to a permission request or a message to an idle
        # session has nothing to interrupt.
        interrupted = interrupt and current.status in (Status.STARTING, Status.RUNNING) and current.waiting_for is None
        return RespondResult(record=updated, message_id=posted.id, interrupted=interrupted)

    def _unit_running(self, record: SessionRecord) -> bool:
        state = self.manager.state(record.unit)
        return state is not None and state.is_running and not state.has_exited

    def _wake(self, record: SessionRecord) -> None:
        """Tell the runner it has mail (SIGWINCH: ignored by default, so harmless if it is still starting)."""
        # The runner also looks at its inbox every second; a lost wake-up only delays delivery.
        with contextlib.suppress(SystemdError):
            self.manager.kill(record.unit, signal.SIGWINCH, "main")

    def kill(self, ref: str, agent: str | None = None, remove_worktree: bool = False) -> KillResult:
        """Stop the session's unit: every process of it gets SIGTERM, then SIGKILL after the stop timeout.

        With ``remove_worktree`` its worktree and branch are removed afterwards if they are merged and clean.
        """
        record = self.get(ref, agent)
        if remove_worktree and record.worktree is None:
            raise InvalidInput(
                f"session {record.name} [{record.id}] has no worktree", hint="kill it without --remove-worktree"
            )
        result = self._kill(record)
        if not remove_worktree:
            return result
        removal = self.remove_worktree(result.record)
        return KillResult(self.store.load(record.id), result.already_finished, removal)

    def _kill(self, record: SessionRecord) -> KillResult:
        if record.status is Status.INTERRUPTED:
            # Nothing runs; killing it means: do not recover it.
            def down(r: SessionRecord) -> SessionRecord | None:
                if r.status is not Status.INTERRUPTED:
                    return None
                return r.killed()

            killed = self.store.update(record.id, down)
            if killed.status is Status.KILLED:
                return KillResult(killed, already_finished=False)
            record = self._reconcile([killed])[0]  # recovered meanwhile: stopped like any running session
        if record.status.is_terminal:
            if record.is_open:
                # Its task is done; only the process waiting for follow-ups is left to stop.
                record = self._close_open(record)
            return KillResult(record, already_finished=True)
        before = record
        killed = self.store.update(
            record.id,
            lambda r: None if r.status.is_terminal else r.killed(),
        )
        if killed.status is not Status.KILLED:
            # Its turn finished since we looked: it may still be open for follow-ups; close it as above.
            return KillResult(self._close_open(killed) if killed.is_open else killed, already_finished=True)
        try:
            self._stop_unit(record)
        except SystemdError:
            self.store.update(record.id, lambda r: before)
            raise
        return KillResult(self.store.load(record.id), already_finished=False)

    def _close_open(self, record: SessionRecord) -> SessionRecord:
        """Stop a completed session's idle runner; it takes no more messages."""
        self._stop_unit(record)
        return self.store.update(record.id, lambda r: r.with_changes(waiting_for=None))

    def _stop_unit(self, record: SessionRecord) -> None:
        """Stop the unit and wait until none of its processes is left."""
        try:
            self.manager.stop(record.unit, timeout=self.settings.stopTimeoutSec + 10)
        except SystemdError as e:
            if e.code != "no-such-unit":
                raise

    # -- recovery after a shutdown ----------------------------------------------------------------------

    def recover(
        self, refs: list[str] | None = None, dry_run: bool = False, boot: bool = False, agent: str | None = None
    ) -> RecoverReport:
        """Resume sessions a shutdown interrupted, each as itself: same id, name and unit name (a new
        invocation), the same Claude session, workdir, model and permission mode, what is left of its budget.

        Without ``refs``: every interrupted session (of ``agent``, if given). ``boot`` is the run at the user
        manager's start (``clawunits-recover.service``), which ``recoverOnBoot = false`` turns off. Safe to
        run again or concurrently: one recovery at a time, and a session whose unit runs is left alone.
        """
        if boot and not self.settings.recoverOnBoot:
            return RecoverReport([], dry_run, disabled="recoverOnBoot is false")
        with self.store.lock("recover"):
            if refs:
                chosen = [self._recoverable(self.get(ref, agent)) for ref in refs]
            else:
                records = self.sessions(include_archived=True, agent=agent)
                chosen = [r for r in records if r.status is Status.INTERRUPTED]
            return RecoverReport([self._recover_one(r, dry_run) for r in chosen], dry_run)

    @staticmethod
    def _recoverable(record: SessionRecord) -> SessionRecord:
        if record.status is Status.INTERRUPTED or not record.status.is_terminal:
            return record  # interrupted: recovered; running: reported as such
        raise StateError(
            f"session {record.name} [{record.id}] is {record.status.value}, not interrupted by a shutdown",
            hint=f"continue its conversation with: clawunits resume {record.name}",
        )

    def _recover_one(self, record: SessionRecord, dry_run: bool) -> Recovery:
        if record.status is not Status.INTERRUPTED:
            return Recovery(record, "skipped", f"it is {record.status.value}: nothing to recover")
        state = self.manager.state(record.unit)
        if state is not None and state.is_running and not state.has_exited:
            return Recovery(record, "skipped", "its unit is still running")
        unfit = _unrecoverable(record)
        if unfit:
            if dry_run:
                return Recovery(record, "failed", unfit)
            failed = self.store.update(
                record.id,
                lambda r: (
                    r.ended(Status.FAILED, f"not recovered: {unfit}", EndCause.ERROR)
                    if r.status is Status.INTERRUPTED
                    else None
                ),
            )
            return Recovery(failed, "failed", unfit)
        if dry_run:
            return Recovery(record, "would-recover", _resumes_how(record))
        if state is not None:
            try:
                self._unload(record.unit)
            except SystemdError as e:
                return Recovery(record, "error", f"recovery failed: {e.message}")
        resumed = self.store.update(record.id, lambda r: r.recovering())
        if resumed.status is Status.INTERRUPTED or resumed.recoveries == record.recoveries:
            return Recovery(resumed, "skipped", f"it is {resumed.status.value}: nothing to recover")
        try:
            self.manager.start(self._unit_spec(resumed))
        except SystemdError as e:
            why = f"recovery failed: {e.message}"
            back = self.store.update(record.id, lambda r: record.with_changes(reason=why))
            return Recovery(back, "error", why)
        started = self.manager.state(record.unit)
        return Recovery(resumed, "recovered", _resumes_how(record), started.invocation_id if started else None)

    def _unload(self, unit: str, timeout: float = 30.0) -> None:
        """Make the unit name free for a new start: a finished unit stays loaded (RemainAfterExit) or failed."""
        deadline = time.monotonic() + timeout
        asked = False
        while (state := self.manager.state(unit)) is not None:
            if state.active_state == "failed" or not asked:
                with contextlib.suppress(SystemdError):
                    self.manager.reset(unit)
                asked = True
            if time.monotonic() > deadline:
                raise SystemdError(f"unit {unit} of the interrupted session is still loaded after {timeout:g}s")
            time.sleep(0.05)

    # -- worktrees -------------------------------------------------------------------------------------

    def worktree(self, ref: str) -> tuple[SessionRecord, worktrees.WorktreeView]:
        """The session's worktree: branch, base, status and diff stat against the base."""
        from clawunits.service import worktree as worktrees

        record = self.get(ref)
        if record.worktree is None:
            raise InvalidInput(
                f"session {record.name} [{record.id}] has no worktree", hint="launch with --worktree to get one"
            )
        return record, worktrees.inspect(record.worktree)

    def remove_worktree(self, record: SessionRecord) -> worktrees.Removal:
        """Remove a finished session's worktree and branch if merged into the base and clean; else keep them.

        A worktree shared with a resumed session stays while any of them is open.
        """
        from clawunits.service import worktree as worktrees

        info = record.worktree
        if info is None:
            raise InvalidInput(f"session {record.name} [{record.id}] has no worktree")
        with self.store.lock("worktrees"):
            sharing = [r for r in self.store.all() if r.worktree is not None and r.worktree.path == info.path]
            users = [r for r in self._reconcile(sharing) if r.is_open]
            if users:
                names = ", ".join(f"{r.name} [{r.id}]" for r in users)
                return worktrees.Removal(False, f"session {names} still works in {info.path}; kept it")
            removal = worktrees.remove_if_merged(info)
            if removal.removed:
                for r in sharing:
                    self.store.update(r.id, lambda cur: cur.with_changes(worktree=_removed(cur.worktree)))
            return removal

    def wait(self, ref: str, timeout: float | None = None, until: str = "idle", interval: float = 0.2) -> SessionRecord:
        """Block until the session waits for input or has ended (``until="end"``: has ended); returns it."""
        if until not in ("idle", "end"):
            raise InvalidInput(f"unknown wait condition {until!r}", hint="idle or end")
        record = self.get(ref)
        deadline = None if timeout is None else time.monotonic() + timeout

        def reached(r: SessionRecord) -> bool:
            if until == "end":
                return not r.is_open
            return r.status.is_terminal or r.status is Status.WAITING

        while not reached(record):
            if deadline is not None and time.monotonic() >= deadline:
                raise StateError(f"session {record.name} [{record.id}] still {record.status.value} after {timeout:g}s")
            time.sleep(interval)
            record = self.get(record.id)
        return record


STATUS_FILTERS = {
    "all": lambda s: True,
    "running": lambda s: not s.is_terminal,
    "waiting": lambda s: s is Status.WAITING,
    "completed": lambda s: s is Status.COMPLETED,
    "failed": lambda s: s is Status.FAILED,
    "killed": lambda s: s is Status.KILLED,
    "interrupted": lambda s: s is Status.INTERRUPTED,
}


# What a session can wait for in the middle of a turn: the answer goes to that turn, it starts no new one.


def _plan_answer_text(record: SessionRecord, text: str, answer: plans.PlanAnswer | None, version: int | None) -> str:
    """The message to post: a plan answer in its normal form (naming the plan it answers), else ``text``.

    An answer to a plan that is not the one waiting (an older version, or none waits) is refused, so a late
    reply to a replaced plan cannot approve the new one.
    """
    from clawunits import plans

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


def _removed(info: WorktreeInfo | None) -> WorktreeInfo | None:
    return replace(info, removed=True) if info else None


def _launching(record: SessionRecord) -> bool:
    """Written by ``launch`` (or ``recover``) and its unit not created yet: not a dead session (for a grace
    period)."""
    if record.status is Status.STARTING:
        since = record.created_at
    elif record.recovered_at and record.status in (Status.RUNNING, Status.WAITING):
        since = record.recovered_at
    else:
        return False
    return (datetime.now(UTC) - parse_ts(since)).total_seconds() < LAUNCH_GRACE_SEC


def _unrecoverable(record: SessionRecord) -> str | None:
    """Why an interrupted session cannot go on, or None."""
    left = record.budget_usd - record.prior_cost_usd - record.cost_usd
    if left <= 0:
        return f"its ${record.budget_usd:g} budget is spent"
    path = Path(record.workdir)
    if not path.is_dir():
        return f"its workdir {record.workdir} is gone"
    return None


def _resumes_how(record: SessionRecord) -> str:
    if not record.claude_session_id:
        return "starts over with its prompt (it was interrupted before Claude Code started)"
    if record.waiting_for is WaitingFor.QUESTION:
        return f"resumes Claude session {record.claude_session_id}, waiting for the answer to its question"
    return f"resumes Claude session {record.claude_session_id} and continues its turn"


def _lost_reason(state: UnitState | None) -> tuple[str, EndCause]:
    """Why a session ended unrecorded, and its end cause (``oom`` when systemd saw an OOM kill)."""
    if state is None:
        return "the session's unit is gone and its runner recorded no exit (user manager restarted?)", EndCause.LOST
    if state.result == "oom-kill":
        return "out of memory: the kernel killed a process of the session and systemd stopped it", EndCause.OOM
    return f"the runner ended without recording an exit: {state.describe_exit()}", EndCause.LOST


def _fresh_id(taken: set[str]) -> str:
    while True:
        candidate = naming.new_id()
        if candidate not in taken:
            return candidate


def _raw_uuid(ref: str | None) -> str | None:
    return ref if ref and UUID_RE.match(ref) else None


def _tail(unit: str, entries_wanted: int) -> journal.Batch:
    """Read backwards in growing steps until enough displayable entries are found or the journal is done."""
    from clawunits.render import render_entry

    lines = 4 * entries_wanted + 16
    while True:
        batch = journal.read_tail(unit, lines)
        shown = sum(1 for r in batch.records if render_entry(r) is not None)
        if shown >= entries_wanted or len(batch.records) < lines // 2 or lines > 1_000_000:
            return batch
        lines *= 4


# -- input checks (one clear message each) -------------------------------------------------------------


AGENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$")


def check_agent(agent: str | None) -> str | None:
    if agent is not None and not AGENT_RE.match(agent):
        raise InvalidInput(f"invalid agent id {agent!r}")
    return agent


def check_message(message: str) -> str:
    if not message or not message.strip():
        raise InvalidInput("message is empty")
    if "\0" in message:
        raise InvalidInput("message contains a NUL byte")
    size = len(message.encode("utf-8", errors="surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidInput(f"message is {size} bytes; the limit is {MAX_PROMPT_BYTES}")
    return message


def check_prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise InvalidInput("prompt is empty")
    if "\0" in prompt:
        raise InvalidInput("prompt contains a NUL byte")
    size = len(prompt.encode("utf-8", errors="surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidInput(
            f"prompt is {size} bytes; the limit is {MAX_PROMPT_BYTES}",
            hint="put long material in a file in the workdir and refer to it",
        )
    return prompt


def check_workdir(workdir: str) -> str:
    if "\0" in workdir:
        raise InvalidInput("workdir contains a NUL byte")
    path = Path(workdir).expanduser()
    if not path.is_absolute():
        raise InvalidInput(f"workdir {workdir!r} is relative", hint="give an absolute path")
    if not path.exists():
        raise InvalidInput(f"workdir {workdir} does not exist")
    if not path.is_dir():
        raise InvalidInput(f"workdir {workdir} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidInput(f"workdir {workdir} is not readable")
    return str(path)


def check_model(model: str | None) -> str | None:
    if model is not None and not MODEL_RE.match(model):
        raise InvalidInput(f"invalid model name {model!r}", hint="e.g. sonnet, opus, claude-sonnet-4-5")
    return model


def check_budget(budget: float) -> float:
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not math.isfinite(budget):
        raise InvalidInput(f"budget must be a number, got {budget!r}")
    if budget <= 0:
        raise InvalidInput(f"budget must be positive, got {budget:g}")
    if budget > MAX_BUDGET_USD:
        raise InvalidInput(f"budget ${budget:g} is above the ${MAX_BUDGET_USD:g} limit")
    return float(budget)


def check_permission_mode(mode: str) -> str:
    if mode not in PERMISSION_MODES:
        raise InvalidInput(f"unknown permission mode {mode!r}", hint=f"one of: {', '.join(PERMISSION_MODES)}")
    return mode


def check_tool(tool: str) -> str:
    if not TOOL_RE.match(tool):
        raise InvalidInput(f"invalid tool name {tool!r}")
    return tool
