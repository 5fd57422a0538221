"""Human-readable views of sessions (the texts of the seed's tools, adapted)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from clawunits import records as R
from clawunits.state.models import SessionRecord, Status, WaitingFor, parse_ts

if TYPE_CHECKING:  # annotations only: the worktree module (git plumbing) is not needed to render a listing
    from clawunits.service.results import MergeResult, PullRequestResult
    from clawunits.service.worktree import Removal, WorktreeView

RULE = "─" * 60
WAITING_FOR = {
    "question": "an answer (Claude asked a question)",
    "input": "the next instruction (turn finished)",
    "permission": "a permission answer (allow / deny / reason)",
    "plan": "plan approval (approve / reject <feedback>)",
}


def duration(ms: int | None) -> str:
    """``45s``, ``2m15s`` or ``1h05m``."""
    if ms is None:
        return "n/a"
    secs = ms // 1000
    if secs < 60:
        return f"{secs}s"
    mins, secs = divmod(secs, 60)
    if mins < 60:
        return f"{mins}m{secs}s"
    hours, mins = divmod(mins, 60)
    return f"{hours}h{mins:02d}m"


def quoted_prompt(prompt: str, limit: int) -> str:
    flat = " ".join(prompt.split())
    return f'"{flat[:limit]}..."' if len(flat) > limit else f'"{flat}"'


class Surface(StrEnum):
    """Where a text is shown: each names the next step the way that reader takes it (the seed's wording for its
    agent tools and chat commands)."""

    SHELL = "shell"  # the clawunits command line
    TOOL = "tool"  # an OpenClaw agent's tools (claude_respond, ...)
    CHAT = "chat"  # chat commands (/claude_respond, ...)

    def step(self, operation: str) -> str:
        """How this reader invokes an operation: ``clawunits respond``, ``claude_respond`` or ``/claude_respond``."""
        if self is Surface.SHELL:
            return f"clawunits {operation}"
        return f"{'/' if self is Surface.CHAT else ''}claude_{operation}"


def launched(r: SessionRecord, surface: Surface = Surface.SHELL) -> str:
    if surface is Surface.CHAT:
        return _launched_in_chat(r)
    lines = [
        "Session launched successfully.",
        f"  Name: {r.name}",
        f"  ID: {r.id}",
        f"  Dir: {r.workdir}",
        f"  Model: {r.model or 'default'}",
        f"  Prompt: {quoted_prompt(r.prompt, 80)}",
    ]
    if r.worktree:
        lines.append(f"  Worktree: branch {r.worktree.branch} from {r.worktree.base}")
    if r.resumed_from:
        lines.append(f"  Resume: {r.resumed_from}" + (" (forked)" if r.forked else ""))
    lines.append(
        f"  Mode: multi-turn (use {surface.step('respond')} to send follow-up messages)"
        if r.multi_turn
        else "  Mode: single-turn (fire-and-forget)"
    )
    if surface is Surface.SHELL:
        lines.append(f"  Unit: {r.unit}")
    lines += ["", f"Use {surface.step('sessions')} to check status, {surface.step('output')} to see output."]
    return "\n".join(lines)


def _launched_in_chat(r: SessionRecord) -> str:
    """The short reply to ``/claude`` and ``/claude_resume``."""
    lines = ["Session launched.", f"  Name: {r.name}", f"  ID: {r.id}"]
    if r.resumed_from:
        lines.append(f"  Resumed from: {r.resumed_from}" + (" (forked)" if r.forked else ""))
    if r.worktree:
        lines.append(f"  Worktree: branch {r.worktree.branch} from {r.worktree.base}")
    lines += [f"  Prompt: {quoted_prompt(r.prompt, 80)}", f"  Status: {r.status.value}"]
    return "\n".join(lines)


def queued(r: SessionRecord, position: int, surface: Surface = Surface.SHELL) -> str:
    """The reply to a launch that waits in the launch queue (``position`` 1: it starts next)."""
    head = f"🕒 [{r.name}] queued ({position - 1} ahead)"
    if surface is Surface.CHAT:
        return f"{head}\n  ID: {r.id}\n  Prompt: {quoted_prompt(r.prompt, 80)}"
    lines = [
        head,
        f"  ID: {r.id}",
        f"  Prompt: {quoted_prompt(r.prompt, 80)}",
        "  It starts by itself when a slot frees (maxSessions); the chat is told when it is launched.",
        f"  Use {surface.step('sessions')} to see the queue, {surface.step('kill')} to take it out.",
    ]
    return "\n".join(lines)


def queue_list(records: list[SessionRecord]) -> str:
    """The launch queue, in the order it starts."""
    if not records:
        return "The launch queue is empty."
    lines = [f"Launch queue ({len(records)}):"]
    for place, r in enumerate(records, start=1):
        front = " ⏫ priority" if r.queue_priority else ""
        lines.append(f"  {place}. {r.name} [{r.id}]{front} — queued {ago(r.created_at)}: {quoted_prompt(r.prompt, 60)}")
    return "\n".join(lines)


def session_entry(r: SessionRecord, place: int | None = None) -> str:
    mode = "multi-turn" if r.multi_turn else "single-turn"
    status = r.status.value.upper() + (f" #{place}" if place else "")
    lines = [
        f"{r.status.icon} {r.name} [{r.id}] — {status} ({duration(r.duration_ms)}) {mode}",
        f"   📁 {r.workdir}",
        f"   📝 {quoted_prompt(r.prompt, 80)}",
    ]
    if r.worktree:
        gone = " (removed)" if r.worktree.removed else ""
        lines.append(f"   🌿 {r.worktree.branch} from {r.worktree.base}{gone}")
    if r.cost_usd:
        lines.append(f"   💰 ${r.cost_usd:.4f}")
    if r.claude_session_id:
        lines.append(f"   🔗 Claude ID: {r.claude_session_id}")
    if r.resumed_from:
        lines.append(f"   ↩️  Resumed from: {r.resumed_from}" + (" (forked)" if r.forked else ""))
    if r.recoveries:
        lines.append(f"   🔄 Resumed after restart: {r.recoveries}x, last at {r.recovered_at}")
    if r.status is Status.LIMITED:
        lines.append(f"   ⏸️ usage limit ({r.limit_window}) reached; resumes at {local_time(r.limit_resets_at)}")
    if r.limit_utilization is not None:
        used = f"{r.limit_utilization * 100:.0f}%"
        lines.append(f"   📈 usage: {used} of {r.limit_window or 'its window'} (last reported)")
    if r.status is Status.WAITING and r.waiting_for:
        what = WAITING_FOR.get(r.waiting_for, r.waiting_for)
        lines.append(
            f"   ⏳ waiting for {what}" + (f": plan v{r.plan_version}" if r.waiting_for is WaitingFor.PLAN else "")
        )
    if r.reason and r.status.is_terminal:
        lines.append(f"   {'⚠️' if r.status is not Status.COMPLETED else '🏁'} {r.reason}")
    return "\n".join(lines)


def session_list(records: list[SessionRecord], places: dict[str, int] | None = None) -> str:
    """``places``: the launch queue's positions of the queued sessions, by id."""
    if not records:
        return "No sessions found."
    return "\n\n".join(session_entry(r, (places or {}).get(r.id)) for r in records)


def output(r: SessionRecord, lines: list[str]) -> str:
    head = f"Session: {r.name} [{r.id}] | Status: {r.status.value.upper()} | Duration: {duration(r.duration_ms)}"
    return "\n".join([head, RULE, "\n".join(lines) if lines else "(no output yet)"])


def responded(r: SessionRecord, message: str, interrupted: bool, surface: Surface = Surface.SHELL) -> str:
    if surface is Surface.CHAT:
        lines = [f"Message sent to {r.name} [{r.id}]."]
        if interrupted:
            lines.append("  (interrupted current turn)")
        return "\n".join([*lines, f"  {quoted_prompt(message, 80)}"])
    lines = [f"Message sent to session {r.name} [{r.id}]."]
    if interrupted:
        lines.append("  (interrupted current turn first)")
    lines += [f"  Message: {quoted_prompt(message, 80)}", f"Use {surface.step('output')} to see the response."]
    return "\n".join(lines)


def ago(ts: str | None) -> str:
    if not ts:
        return "some time ago"
    return f"{duration(int((datetime.now(UTC) - parse_ts(ts)).total_seconds() * 1000))} ago"


def resumable(records: list[SessionRecord]) -> str:
    if not records:
        return "No resumable sessions found. Sessions are persisted after completion."
    lines = ["Resumable sessions:"]
    for r in records:
        lines += [
            f"  {r.name} — {r.status.value} {ago(r.completed_at)}",
            f"    Claude ID: {r.claude_session_id}",
            f"    📁 {r.workdir}",
            f"    📝 {quoted_prompt(r.prompt, 60)}",
        ]
    return "\n".join(lines)


def foreground(
    r: SessionRecord,
    catchup: list[str] | None,
    lines: list[str],
    mode: str = "channel",
    surface: Surface = Surface.TOOL,
) -> str:
    """``mode``: "channel" (the notifier streams to a chat), "follow" (this terminal follows), or "peek".
    Streaming to a chat is mostly asked for by an agent's tool, whose footer names ``claude_bg``."""
    out = [
        f"Session {r.name} [{r.id}] now in foreground.",
        f"Status: {r.status.value.upper()} | Duration: {duration(r.duration_ms)}",
        RULE,
    ]
    if catchup:
        n = len(catchup)
        out += [f"📋 Catchup ({n} missed output{'s' if n != 1 else ''}):", *catchup, RULE]
    elif lines:
        out += [*lines, RULE]
    else:
        out += ["(no output yet)", RULE]
    if not r.is_open:
        out.append(f"Session is {r.status.value}. No more output expected.")
    elif mode == "follow":
        out.append("Following new output... Press Ctrl-C to stop.")
    elif mode == "peek":
        out.append("Not streaming anywhere: give --channel to stream to a chat.")
    else:
        out.append(f"Streaming new output... Use {surface.step('bg')} to detach.")
    return "\n".join(out)


def backgrounded(records: list[SessionRecord], explicit: bool) -> str:
    if explicit and records:
        r = records[0]
        return f"Session {r.name} [{r.id}] moved to background."
    if not records:
        return "No session is currently in foreground."
    return "Moved to background: " + ", ".join(f"{r.name} [{r.id}]" for r in records)


def killed(r: SessionRecord, already: bool) -> str:
    if already:
        return f"Session {r.name} [{r.id}] is already {r.status.value}. No action needed."
    if r.started_at is None:
        return f"Session {r.name} [{r.id}] was taken out of the launch queue; it will not start."
    return f"Session {r.name} [{r.id}] has been terminated."


RECOVERY_ICONS = {
    "recovered": "🔄",
    "would-recover": "🔄",
    "skipped": "➖",
    "failed": "❌",
    "error": "⚠️",
    "resumed": "▶️",
    "rearmed": "⏸️",
}


def recovered(report: Any) -> str:
    """The text of ``clawunits recover`` (``report`` is an :class:`clawunits.service.api.RecoverReport`)."""
    if report.disabled:
        return f"Recovery at boot is off ({report.disabled}). Run clawunits recover to recover by hand."
    if not report.sessions:
        return "No interrupted sessions to recover."
    head = "Would recover (dry run):" if report.dry_run else "Recovery after restart:"
    lines = [head]
    for item in report.sessions:
        r = item.record
        lines.append(f"  {RECOVERY_ICONS.get(item.action, '•')} {r.name} [{r.id}] — {item.action}: {item.detail}")
    return "\n".join(lines)


def unparked(item: Any) -> str:
    """The text of ``clawunits unpark`` (``item`` is a :class:`clawunits.service.results.Recovery`)."""
    r = item.record
    return f"{RECOVERY_ICONS.get(item.action, '•')} {r.name} [{r.id}] — {item.action}: {item.detail}"


def worktree_removal(removal: Removal) -> str:
    return f"Worktree {'removed' if removal.removed else 'kept'}: {removal.reason}"


def merged(res: MergeResult) -> str:
    """``clawunits merge``: what went where, or which session now resolves the conflict."""
    r = res.record
    branch = r.worktree.branch if r.worktree else "?"
    if res.resolver is not None:
        files = ", ".join(res.conflicts[:5]) + (f" and {len(res.conflicts) - 5} more" if len(res.conflicts) > 5 else "")
        # Beyond maxSessions the resolver waits in the launch queue: it starts by itself.
        how = "queued" if res.resolver.status is Status.QUEUED else "launched"
        return (
            f"⚔️ [{r.name}] merging {branch} into {res.into} conflicts in {files}: {how} "
            f"[{res.resolver.name}] ({res.resolver.id}) to resolve it in the worktree; merge again when it has finished"
        )
    if res.already_merged:
        lines = [f"🔀 [{r.name}] {branch} is already in {res.into}: nothing to merge"]
    else:
        how = "squashed" if res.squash else "merged"
        lines = [f"🔀 [{r.name}] {how} {branch} into {res.into} (commit {(res.commit or '')[:10]})"]
    if res.uncommitted:
        lines.append(f"   Committed {res.uncommitted} file(s) the session left uncommitted first.")
    if res.removal is not None:
        lines.append(worktree_removal(res.removal))
    return "\n".join(lines)


def pull_request(res: PullRequestResult) -> str:
    """``clawunits pr``: the pull request's address."""
    r = res.record
    branch = r.worktree.branch if r.worktree else "?"
    state = "already open" if res.existing else "opened"
    lines = [f"🔗 [{r.name}] pull request {state}: {res.url}", f"   {branch} → {res.base} (pushed to {res.remote})"]
    if res.uncommitted:
        lines.append(f"   Committed {res.uncommitted} file(s) the session left uncommitted first.")
    return "\n".join(lines)


def size(n: int | None) -> str:
    """Bytes as a person reads them (binary units)."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def worktree(r: SessionRecord, view: WorktreeView) -> str:
    """``clawunits worktree``: branch and base, merged or not, commits, changes, diff stat."""
    info = view.info
    merged = {True: "merged", False: "not merged", None: "unknown (branch or base gone)"}[view.merged]
    lines = [
        f"🌿 {r.name} [{r.id}] — {r.status.value.upper()}",
        f"   Branch: {info.branch} (from {info.base}; {merged} into {info.base})",
        f"   Path: {info.path}" + ("" if view.exists else " (removed)"),
    ]
    if not view.exists:
        return "\n".join(lines)
    lines.append(f"   Disk: {size(view.disk_bytes)}")
    lines.append(f"   Commits: {view.ahead} ahead, {view.behind} behind {info.base}")
    lines += [f"     {sha} {subject}" for sha, subject in view.commits[:10]]
    if len(view.commits) > 10:
        lines.append(f"     … {len(view.commits) - 10} more")
    lines.append("   Status: clean" if view.clean else f"   Status: {view.status_count} uncommitted change(s)")
    lines += [f"     {code} {path}" for code, path in view.status[:20]]
    if view.status_count > 20:
        lines.append(f"     … {view.status_count - 20} more")
    lines.append(f"   Diff against {info.base} (committed and uncommitted):")
    lines += _diff_stat(view)
    return "\n".join(lines)


def _diff_stat(view: WorktreeView) -> list[str]:
    files = view.files
    if not files:
        return ["     (no changes)"]
    width = min(50, max(len(f.path) for f in files))
    out = []
    for f in files[:50]:
        counts = "Bin" if f.added is None else f"{f.added + (f.deleted or 0):>4} " + "+" * min(f.added, 30)
        if f.added is not None:
            counts += "-" * min(f.deleted or 0, 30)
        out.append(f"     {f.path:<{width}} | {counts}" + (" (new, untracked)" if f.untracked else ""))
    if view.file_count > 50:
        out.append(f"     … {view.file_count - 50} more files")
    out.append(
        f"     {view.file_count} file(s) changed, {view.insertions} insertion(s)(+), {view.deletions} deletion(s)(-)"
    )
    return out


def local_time(iso: str | None) -> str:
    """A time in the host's local time zone: ``14:05`` today, ``Wed 14:05`` on another day."""
    if not iso:
        return "?"
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso
    return at.strftime("%H:%M") if at.date() == datetime.now().astimezone().date() else at.strftime("%a %H:%M")


def stats(s: dict[str, Any]) -> str:
    by = s["sessionsByStatus"]
    running = by["starting"] + by["running"] + by["waiting"]
    lines = [
        "📊 clawunits stats",
        "",
        "📋 Sessions",
        f"   Launched: {s['totalLaunched']}",
        f"   Running: {running} | Completed: {by['completed']} | Failed: {by['failed']} | Killed: {by['killed']}"
        + (f" | Interrupted: {by['interrupted']}" if by.get("interrupted") else "")
        + (f" | Parked: {by['limited']}" if by.get("limited") else ""),
        "",
        f"💰 Total cost: ${s['totalCostUsd']:.4f}",
        f"⏱️  Average duration: {duration(s['averageDurationMs'])}",
    ]
    for p in s.get("parked") or []:
        used = f", {p['utilization'] * 100:.0f}% used" if p.get("utilization") is not None else ""
        lines.append(f"   ⏸️ {p['name']} [{p['id']}]: {p['window']} limit, resumes at {local_time(p['resetsAt'])}{used}")
    lines += _worktree_usage(s.get("worktrees"))
    if s.get("launchQueue"):
        waiting = ", ".join(f"{q['queuePosition']}. {q['name']}" for q in s["launchQueue"])
        lines += ["", f"🕒 Launch queue: {waiting}"]
    top = s["mostExpensive"]
    if top:
        lines += [
            "",
            f"🏆 Most expensive: {top['name']} (${top['costUsd']:.4f}) — {quoted_prompt(top['prompt'], 60)}",
        ]
    return "\n".join(lines)


def _worktree_usage(usage: dict[str, Any] | None) -> list[str]:
    if not usage or not usage["count"]:
        return []
    lines = ["", f"🌿 Worktrees: {usage['count']} on disk, {size(usage['diskBytes'])}"]
    shown = usage["sessions"][:5]
    lines += [f"   {w['name']}: {size(w['diskBytes'])} ({w['status']}) {w['path']}" for w in shown]
    if usage["count"] > len(shown):
        lines.append(f"   … {usage['count'] - len(shown)} more")
    return lines


def render_entry(rec: R.Record) -> str | None:
    """How one record reads in ``output``; records that are bookkeeping render as None."""
    if rec.type == R.TEXT:
        return str(rec.get("text", ""))
    if rec.type == R.TOOL_USE:
        summary = rec.get("summary") or ""
        return f"🔧 {rec.get('tool', '?')}" + (f" — {summary}" if summary else "")
    if rec.type == R.ERROR:
        return f"⚠️ {rec.get('message', 'error')}"
    if rec.type == R.GAP:
        span = f"seq {rec.get('fromSeq')}-{rec.get('toSeq')}"
        return f"⚠️ {rec.get('missing')} record(s) lost ({span}; journald rate limit or restart?)"
    if rec.type == R.EXIT:
        reason = rec.get("reason")
        return f"■ session {rec.get('status', 'ended')}" + (f": {reason}" if reason else "")
    if rec.type == R.LOG:
        return str(rec.get("text", "")) or None
    if rec.type == R.LIMITED:
        return f"⏸️ usage limit ({rec.get('window')}) reached; resumes at {local_time(str(rec.get('resetsAt') or ''))}"
    if rec.type == R.RESUMED:
        return f"▶️ resumed after the {rec.get('window')} usage limit"
    if rec.type == R.LIMIT_WARNING:
        util = rec.get("utilization")
        return f"⚠️ usage limit ({rec.get('window')})" + (f" at {float(util) * 100:.0f}%" if util is not None else "")
    if rec.type == R.MESSAGE_RECEIVED:
        prefix = "↩️ answer" if rec.get("answers") else "↩️ message"
        return f"{prefix}: {rec.get('text', '')}"
    if rec.type == R.PERMISSION_REQUEST:
        summary = rec.get("summary") or ""
        return (
            f"🔐 permission needed [{rec.get('requestId')}]: {rec.get('tool', '?')}"
            + (f" — {summary}" if summary else "")
            + " (respond allow / deny / a reason)"
        )
    if rec.type == R.PERMISSION_ANSWER:
        reason = rec.get("reason")
        return f"🔐 {rec.get('decision')}ed [{rec.get('requestId')}]" + (f": {reason}" if reason else "")
    if rec.type == R.PLAN:
        return (
            f"📋 plan v{rec.get('version')} ready [{rec.get('requestId')}] (respond approve / reject <feedback>):\n"
            + str(rec.get("plan", ""))
        )
    if rec.type == R.PLAN_ANSWER:
        return _plan_answer(rec)
    if rec.type == R.INTERRUPTED:
        return f"⏹ turn interrupted ({rec.get('reason')})"
    if rec.type == R.WATCHDOG:
        return f"⚠️ watchdog: no sign of life for {rec.get('silentSec')}s, {rec.get('action')}"
    return None


def _plan_answer(rec: R.Record) -> str:
    head = f"📋 plan v{rec.get('version')} {rec.get('decision')}"
    if rec.get("decision") == "approved":
        return f"{head}: continuing in {rec.get('mode')}"
    detail = rec.get("feedback") or rec.get("reason")
    return head + (f": {detail}" if detail else "")
