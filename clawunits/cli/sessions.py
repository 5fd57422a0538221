"""Commands that change sessions: launch, resume, respond, kill, recover, queue."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from clawunits.cli.common import agent_option, emit, get_service, json_option, reader, skipped, surface_option
from clawunits.cli.launch_options import launch_options, launch_request
from clawunits.notify_policy import NOTIFY_POLICIES

if TYPE_CHECKING:
    from clawunits.state.models import SessionRecord


@click.command()
@click.argument("prompt")
@launch_options()
@surface_option
@json_option
@click.pass_context
def launch(ctx: click.Context, prompt: str, as_json: bool, surface: str | None, **opts: Any) -> None:
    """Launch a session running PROMPT in its own systemd user unit (PROMPT "-" reads it from stdin)."""

    if prompt == "-":
        # Long prompts cannot travel as one argument (the kernel caps each at 128 KiB).
        prompt = sys.stdin.read()
    record = get_service(ctx).launch(launch_request(prompt, opts))
    _emit_launched(ctx, as_json, record, surface)


def _emit_launched(ctx: click.Context, as_json: bool, record: SessionRecord, surface: str | None) -> None:
    """A launch's reply: launched, or queued with its place (``status: "queued"``, ``queuePosition``)."""
    from clawunits import render
    from clawunits.state.models import Status

    if record.status is not Status.QUEUED:
        emit(as_json, record.to_json(), render.launched(record, reader(surface)))
        return
    position = get_service(ctx).queue_positions().get(record.id, 1)
    data = {**record.to_json(), "queuePosition": position, "queueAhead": position - 1}
    emit(as_json, data, render.queued(record, position, reader(surface)))


@click.command()
@click.argument("session", required=False)
@click.argument("prompt", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the sessions that can be resumed.")
@launch_options(
    "fork",
    "name",
    "workdir",
    "model",
    "max_budget_usd",
    "multi_turn_disabled",
    "origin_channel",
    "origin_agent",
    "priority",
    help={
        "fork": "Continue in a new Claude session, leaving the original as it was.",
        "workdir": "Working directory (default: the resumed session's).",
        "model": "Model (default: the resumed session's).",
        "max_budget_usd": "Lifetime budget of the conversation (default: the session's).",
        "multi_turn_disabled": "End after the first turn.",
        "origin_channel": "Origin channel for notifications.",
        "origin_agent": "The OpenClaw agent resuming it.",
    },
)
@surface_option
@json_option
@click.pass_context
def resume(
    ctx: click.Context,
    session: str | None,
    prompt: str | None,
    list_only: bool,
    as_json: bool,
    surface: str | None,
    **opts: Any,
) -> None:
    """Continue a finished session's conversation as a new session (or --list the resumable ones).

    SESSION is a name, an id or a Claude session UUID; PROMPT defaults to "Continue where you left off."
    (PROMPT "-" reads it from stdin.)
    """
    from clawunits import render

    service = get_service(ctx)
    if list_only:
        records = service.resumable()
        emit(as_json, {"sessions": [r.to_json() for r in records], "count": len(records)}, render.resumable(records))
        return
    if not session:
        raise click.UsageError("give a SESSION to resume, or --list")
    if prompt == "-":
        prompt = sys.stdin.read()
    record = service.launch(launch_request(prompt or "Continue where you left off.", opts, resume=session))
    _emit_launched(ctx, as_json, record, surface)


@click.command()
@click.argument("session")
@click.argument("message")
@click.option("--interrupt", is_flag=True, help="Stop the current turn first, then send the message.")
@click.option("--user-initiated", is_flag=True, help="The message comes from a person: resets the auto-respond count.")
@click.option(
    "--plan-version",
    type=click.IntRange(min=1),
    help="The plan version this answer is for: refused unless that plan is the one waiting for approval.",
)
@agent_option
@surface_option
@json_option
@click.pass_context
def respond(
    ctx: click.Context,
    session: str,
    message: str,
    interrupt: bool,
    user_initiated: bool,
    plan_version: int | None,
    agent: str | None,
    surface: str | None,
    as_json: bool,
) -> None:
    """Send MESSAGE to a running session (MESSAGE "-" reads it from stdin).

    Messages are queued durably and delivered in order after the current turn. While the session waits for a
    permission answer, the message answers it: allow, deny, or any other text (a denial with that reason).
    While it waits for plan approval: approve [vN] [acceptEdits|default], reject [vN] <feedback>, or any other
    text (a rejection with that feedback).
    """
    from clawunits import render

    if message == "-":
        message = sys.stdin.read()
    res = get_service(ctx).respond(
        session, message, interrupt=interrupt, user_initiated=user_initiated, agent=agent, plan_version=plan_version
    )
    r = res.record
    text = render.responded(r, message, res.interrupted, reader(surface))
    data = {
        "id": r.id,
        "name": r.name,
        "status": r.status.value,
        "messageId": res.message_id,
        "interrupted": res.interrupted,
        "autoResponds": r.auto_responds,
        "message": text,
    }
    emit(as_json, data, text)


@click.command()
@click.argument("session")
@click.option(
    "--remove-worktree", is_flag=True, help="Then remove its worktree and branch, if merged into the base and clean."
)
@agent_option
@json_option
@click.pass_context
def kill(ctx: click.Context, session: str, remove_worktree: bool, agent: str | None, as_json: bool) -> None:
    """Terminate a session and every process it started."""
    from clawunits import render

    res = get_service(ctx).kill(session, agent=agent, remove_worktree=remove_worktree)
    r = res.record
    text = render.killed(r, res.already_finished)
    data: dict[str, Any] = {
        "id": r.id,
        "name": r.name,
        "status": r.status.value,
        "alreadyFinished": res.already_finished,
    }
    if res.worktree is not None:
        text += "\n" + render.worktree_removal(res.worktree)
        data["worktree"] = res.worktree.to_json()
    data["message"] = text
    emit(as_json, data, text)


@click.command()
@click.argument("session")
@click.argument("policy", type=click.Choice([*NOTIFY_POLICIES, "default"]))
@agent_option
@json_option
@click.pass_context
def notify(ctx: click.Context, session: str, policy: str, agent: str | None, as_json: bool) -> None:
    """Change what SESSION tells its chat from now on: all (every notification), status (one status message
    edited in place, plus questions, plans, permission requests and the end), quiet (only those), or default
    (config notifyPolicy)."""
    from clawunits.notify_policy import effective_policy

    svc = get_service(ctx)
    r = svc.notify(session, policy, agent=agent)
    st = svc.settings
    shown = effective_policy(r.notify, r.origin_channel, st.notifyPolicy, st.notifyPolicyByChannel).value
    text = f"Notifications of {r.name} [{r.id}]: {shown}" + ("" if r.notify else " (the configured default)")
    emit(as_json, {"id": r.id, "name": r.name, "notify": r.notify, "effective": shown, "message": text}, text)


@click.command()
@click.argument("sessions", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Only say what would be recovered.")
@click.option("--boot", is_flag=True, help="Run at the user manager's start: nothing if recoverOnBoot is false.")
@agent_option
@json_option
@click.pass_context
def recover(
    ctx: click.Context, sessions: tuple[str, ...], dry_run: bool, boot: bool, agent: str | None, as_json: bool
) -> None:
    """Resume the sessions a shutdown or crash of the user manager interrupted (or just SESSIONS).

    Each runs again as itself (same id and name, a new unit invocation), resuming its Claude session with
    its workdir, model and what is left of its budget. Killed and finished sessions are left alone.
    """
    from clawunits import render

    report = get_service(ctx).recover(list(sessions), dry_run=dry_run, boot=boot, agent=agent)
    text = render.recovered(report)
    data = {
        "sessions": [item.to_json() for item in report.sessions],
        "count": sum(1 for i in report.sessions if i.action in ("recovered", "would-recover", "resumed")),
        "dryRun": report.dry_run,
        "disabled": report.disabled,
        "message": text,
        "skipped": skipped(ctx),
    }
    emit(as_json, data, text)
    if report.errors:
        sys.exit(1)


@click.command()
@click.argument("session")
@click.option("--timer", is_flag=True, hidden=True, help="Run by the session's own resume timer.")
@agent_option
@json_option
@click.pass_context
def unpark(ctx: click.Context, session: str, timer: bool, agent: str | None, as_json: bool) -> None:
    """Resume a session parked at a usage limit now, instead of at its reset time.

    Its timer runs this at the reset time: the session runs again as itself (same id, name and Claude
    session) and continues the turn the limit stopped. A session that is not parked is left alone.
    """
    from clawunits import render

    item = get_service(ctx).unpark(session, agent=agent, timer=timer)
    text = render.unparked(item)
    data = {**item.to_json(), "message": text}
    emit(as_json, data, text)
    if item.action == "error":
        sys.exit(1)


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def queue(ctx: click.Context, as_json: bool) -> None:
    """Show the launch queue: sessions waiting for a slot (maxSessions), in the order they start.

    A launch beyond maxSessions waits here (config queueLaunches) and starts by itself when a session ends or
    finishes its task; launch --priority puts it at the front, kill takes it out.
    """
    if ctx.invoked_subcommand is not None:
        return
    from clawunits import render

    records = get_service(ctx).queue()
    data = {
        "sessions": [{**r.to_json(), "queuePosition": i} for i, r in enumerate(records, start=1)],
        "count": len(records),
    }
    emit(as_json, data, render.queue_list(records))


@queue.command("start")
@click.option("--quiet", is_flag=True, help="Print nothing; errors go to stderr (the starter unit runs it so).")
@json_option
@click.pass_context
def queue_start(ctx: click.Context, quiet: bool, as_json: bool) -> None:
    """Start queued sessions, in order, while slots are free (what runs when a slot frees; safe to run anytime)."""
    started = get_service(ctx).drain_queue()
    for item in started:
        if item.error:
            click.echo(f"clawunits: {item.record.name} [{item.record.id}]: {item.error}", err=True)
    if quiet:
        return
    ok = [i.record for i in started if not i.error]
    lines = [f"Started {r.name} [{r.id}] from the launch queue." for r in ok] or ["Nothing to start."]
    data = {
        "started": [r.to_json() for r in ok],
        "failed": [{**i.record.to_json(), "error": i.error} for i in started if i.error],
        "count": len(ok),
    }
    emit(as_json, data, "\n".join(lines))
