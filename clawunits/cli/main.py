"""The ``clawunits`` command line: parse, call the library, print text or JSON, map errors to exit codes.

Only click is imported at start-up; the library (and never claude-agent-sdk) is imported by the command
that needs it, so ``clawunits --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from clawunits.service.api import Service

INTERNAL_ERROR = 70


def _emit(as_json: bool, data: Any, text: str) -> None:
    """Print ``text``, or with ``--json`` the data plus the same text as ``display``, so that front-ends (the
    OpenClaw plugin) show what the CLI shows and format nothing themselves."""
    if as_json:
        import json  # not at start-up: `--help` and text output do without it

        if isinstance(data, dict):
            data = {**data, "display": text}
        click.echo(json.dumps(data, ensure_ascii=False, indent=None))
    else:
        click.echo(text)


def _service(ctx: click.Context) -> Service:
    from clawunits.service.api import Service

    if ctx.obj is None:
        ctx.obj = Service()
        ctx.call_on_close(ctx.obj.close)
    return ctx.obj


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clawunits")
def cli() -> None:
    """Claude Code sessions as transient systemd user units."""


@cli.command()
@click.argument("prompt")
@click.option("--name", help="Short kebab-case name (default: from the prompt).")
@click.option(
    "--workdir",
    help="Absolute working directory (default: config defaultWorkdir, else the current directory).",
)
@click.option("--model", help="Model name (default: config defaultModel).")
@click.option("--max-budget-usd", type=float, help="Budget in USD (default: config defaultBudgetUsd, 5).")
@click.option("--system-prompt", help="Text appended to Claude Code's system prompt.")
@click.option("--allowed-tools", help="Comma-separated tools allowed without asking.")
@click.option(
    "--permission-mode",
    type=click.Choice(["default", "plan", "acceptEdits", "bypassPermissions"]),
    help="Permission mode (default: config permissionMode, bypassPermissions).",
)
@click.option("--multi-turn-disabled", is_flag=True, help="Fire-and-forget: end after the first turn.")
@click.option("--channel", "origin_channel", help="Origin channel for notifications (channel|target).")
@click.option("--resume", help="Resume a session: name, id or Claude session UUID.")
@click.option("--fork", is_flag=True, help="With --resume: continue in a new Claude session.")
@click.option("--agent", "origin_agent", help="The OpenClaw agent launching it (only it may respond or kill).")
@click.option("--guards", "run_guards", is_flag=True, help="Run the pre-launch guards of the claude_launch tool.")
@click.option("--agent-workspace", help="The agent's workspace directory, for --guards.")
@click.option("--memory-max", help="Memory limit, e.g. 2G (default: config memoryMax, 4G; 'infinity': none).")
@click.option("--cpu-quota", help="CPU limit, e.g. 150% for 1.5 CPUs (default: config cpuQuota, 200%).")
@click.option("--tasks-max", help="Process and thread limit (default: config tasksMax, 1024).")
@click.option("--runtime-max", help="Stop the session after this long, e.g. 2h (default: config runtimeMax, 24h).")
@click.option("--worktree", is_flag=True, help="Run in a new git worktree on branch clawunits/<name>.")
@click.option("--base", help="With --worktree: the branch to start from (default: the current branch).")
@json_option
@click.pass_context
def launch(ctx: click.Context, prompt: str, allowed_tools: str | None, as_json: bool, **opts: Any) -> None:
    """Launch a session running PROMPT in its own systemd user unit (PROMPT "-" reads it from stdin)."""
    from clawunits import render
    from clawunits.service.api import LaunchRequest

    if prompt == "-":
        # Long prompts cannot travel as one argument (the kernel caps each at 128 KiB).
        prompt = sys.stdin.read()
    tools = [t.strip() for t in allowed_tools.split(",") if t.strip()] if allowed_tools else []
    record = _service(ctx).launch(
        LaunchRequest(
            prompt=prompt,
            name=opts["name"],
            workdir=opts["workdir"],
            model=opts["model"],
            max_budget_usd=opts["max_budget_usd"],
            system_prompt=opts["system_prompt"],
            allowed_tools=tools,
            permission_mode=opts["permission_mode"],
            multi_turn=not opts["multi_turn_disabled"],
            origin_channel=opts["origin_channel"],
            resume=opts["resume"],
            fork=opts["fork"],
            origin_agent=opts["origin_agent"],
            run_guards=opts["run_guards"],
            agent_workspace=opts["agent_workspace"],
            memory_max=opts["memory_max"],
            cpu_quota=opts["cpu_quota"],
            tasks_max=opts["tasks_max"],
            runtime_max=opts["runtime_max"],
            worktree=opts["worktree"],
            base=opts["base"],
        )
    )
    _emit(as_json, record.to_json(), render.launched(record))


agent_option = click.option("--agent", help="Act as this OpenClaw agent: only its own sessions.")


@cli.command()
@click.option(
    "--status",
    default="all",
    type=click.Choice(["all", "running", "waiting", "completed", "failed", "killed", "interrupted"]),
    help="Show only sessions in this state (running = not finished).",
)
@json_option
@click.pass_context
@click.option("--all", "include_archived", is_flag=True, help="Include sessions finished over an hour ago.")
@agent_option
@click.option("--channel", help="Only sessions launched from this channel.")
def sessions(
    ctx: click.Context, status: str, as_json: bool, include_archived: bool, agent: str | None, channel: str | None
) -> None:
    """List sessions, newest last."""
    from clawunits import render

    records = _service(ctx).sessions(status, include_archived=include_archived, agent=agent, channel=channel)
    _emit(
        as_json,
        {"sessions": [r.to_json() for r in records], "count": len(records)},
        render.session_list(records),
    )


@cli.command()
@click.argument("session")
@click.option("--lines", "-n", default=50, show_default=True, type=int, help="How many recent entries to show.")
@click.option("--full", is_flag=True, help="Show all output of the session.")
@json_option
@click.pass_context
def output(ctx: click.Context, session: str, lines: int, full: bool, as_json: bool) -> None:
    """Show a session's recent output (read-only)."""
    from clawunits import render

    view = _service(ctx).output(session, lines=lines, full=full)
    r = view.record
    data = {
        "id": r.id,
        "name": r.name,
        "status": r.status.value,
        "costUsd": r.cost_usd,
        "durationMs": r.duration_ms,
        "duration": render.duration(r.duration_ms),
        "lines": view.lines,
        "lineCount": len(view.lines),
        "result": view.result,
        "lostRecords": view.lost_records,
    }
    _emit(as_json, data, render.output(r, view.lines))


@cli.command()
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

    res = _service(ctx).kill(session, agent=agent, remove_worktree=remove_worktree)
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
    _emit(as_json, data, text)


@cli.command()
@click.argument("session")
@json_option
@click.pass_context
def worktree(ctx: click.Context, session: str, as_json: bool) -> None:
    """Show a session's worktree: branch, base, status, and the diff stat against the base."""
    from clawunits import render

    record, view = _service(ctx).worktree(session)
    text = render.worktree(record, view)
    _emit(as_json, {"id": record.id, "name": record.name, **view.to_json()}, text)


@cli.command()
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
    res = _service(ctx).respond(
        session, message, interrupt=interrupt, user_initiated=user_initiated, agent=agent, plan_version=plan_version
    )
    r = res.record
    text = render.responded(r, message, res.interrupted)
    data = {
        "id": r.id,
        "name": r.name,
        "status": r.status.value,
        "messageId": res.message_id,
        "interrupted": res.interrupted,
        "autoResponds": r.auto_responds,
        "message": text,
    }
    _emit(as_json, data, text)


@cli.command()
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

    report = _service(ctx).recover(list(sessions), dry_run=dry_run, boot=boot, agent=agent)
    text = render.recovered(report)
    data = {
        "sessions": [item.to_json() for item in report.sessions],
        "count": sum(1 for i in report.sessions if i.action in ("recovered", "would-recover")),
        "dryRun": report.dry_run,
        "disabled": report.disabled,
        "message": text,
    }
    _emit(as_json, data, text)
    if report.errors:
        sys.exit(1)


@cli.command()
@click.argument("session", required=False)
@click.argument("prompt", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the sessions that can be resumed.")
@click.option("--fork", is_flag=True, help="Continue in a new Claude session, leaving the original as it was.")
@click.option("--name", help="Name of the new session (default: from the prompt).")
@click.option("--workdir", help="Working directory (default: the resumed session's).")
@click.option("--model", help="Model (default: the resumed session's).")
@click.option("--max-budget-usd", type=float, help="Lifetime budget of the conversation (default: the session's).")
@click.option("--multi-turn-disabled", is_flag=True, help="End after the first turn.")
@click.option("--channel", "origin_channel", help="Origin channel for notifications.")
@click.option("--agent", "origin_agent", help="The OpenClaw agent resuming it.")
@json_option
@click.pass_context
def resume(
    ctx: click.Context, session: str | None, prompt: str | None, list_only: bool, fork: bool, as_json: bool, **opts: Any
) -> None:
    """Continue a finished session's conversation as a new session (or --list the resumable ones).

    SESSION is a name, an id or a Claude session UUID; PROMPT defaults to "Continue where you left off."
    (PROMPT "-" reads it from stdin.)
    """
    from clawunits import render
    from clawunits.service.api import LaunchRequest

    service = _service(ctx)
    if list_only:
        records = service.resumable()
        _emit(as_json, {"sessions": [r.to_json() for r in records], "count": len(records)}, render.resumable(records))
        return
    if not session:
        raise click.UsageError("give a SESSION to resume, or --list")
    if prompt == "-":
        prompt = sys.stdin.read()
    record = service.launch(
        LaunchRequest(
            prompt=prompt or "Continue where you left off.",
            name=opts["name"],
            workdir=opts["workdir"],
            model=opts["model"],
            max_budget_usd=opts["max_budget_usd"],
            multi_turn=not opts["multi_turn_disabled"],
            origin_channel=opts["origin_channel"],
            resume=session,
            fork=fork,
            origin_agent=opts["origin_agent"],
        )
    )
    _emit(as_json, record.to_json(), render.launched(record))


@cli.command()
@click.argument("session")
@click.option("--lines", "-n", default=30, show_default=True, type=int, help="Recent entries shown without catch-up.")
@click.option("--channel", help="The chat channel (channel|target) to stream to; without it, follow here.")
@json_option
@click.pass_context
def fg(ctx: click.Context, session: str, lines: int, channel: str | None, as_json: bool) -> None:
    """Bring a session to the foreground: show what was missed, then stream its new output.

    With --channel the notifier streams to that chat. In a terminal, without --channel, follow live until
    Ctrl-C.
    """
    from clawunits import render

    live = channel is None
    if live and not as_json and not sys.stdout.isatty():
        raise click.UsageError("give --channel channel|target, or run in a terminal to follow live")
    view = _service(ctx).fg(session, channel, lines=lines)
    r = view.record
    data = {
        "id": r.id,
        "name": r.name,
        "status": r.status.value,
        "channel": view.channel,
        "catchup": view.catchup,
        "lines": view.lines,
        "foreground": view.channel is not None,
    }
    mode = "channel" if not live else ("peek" if as_json else "follow")
    text = render.foreground(r, view.catchup, view.lines, mode=mode)
    data["message"] = text
    _emit(as_json, data, text)
    if live and not as_json and r.is_open:
        _follow(r.unit, view.cursor)


def _follow(unit: str, cursor: str | None) -> None:
    from clawunits import records
    from clawunits.render import render_entry
    from clawunits.systemd import journal

    try:
        for rec in journal.follow(unit, cursor):
            entry = render_entry(rec)
            if entry is not None:
                click.echo(entry)
            if rec.type == records.EXIT:
                return
    except KeyboardInterrupt:
        return


@cli.command()
@click.argument("session", required=False)
@click.option("--channel", required=True, help="The chat channel (channel|target) to stop streaming to.")
@json_option
@click.pass_context
def bg(ctx: click.Context, session: str | None, channel: str, as_json: bool) -> None:
    """Send a session (or every session in the foreground of --channel) to the background."""
    from clawunits import render

    records = _service(ctx).bg(session, channel)
    text = render.backgrounded(records, explicit=session is not None)
    data = {"sessions": [{"id": r.id, "name": r.name} for r in records], "count": len(records), "message": text}
    _emit(as_json, data, text)


@cli.command()
@click.pass_context
def notifier(ctx: click.Context) -> None:
    """Run the notifier (the clawunits-notifier.service user unit): session events to OpenClaw channels."""
    import asyncio
    import logging
    import signal

    from clawunits.notifier.notifier import Notifier

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Notifier(_service(ctx)).run(stop)

    asyncio.run(main())


@cli.command()
@json_option
@click.pass_context
def gc(ctx: click.Context, as_json: bool) -> None:
    """Archive sessions finished over an hour ago, reset their units, delete beyond maxPersistedSessions."""
    from clawunits.service.gc import collect

    report = collect(_service(ctx))
    text = (
        f"archived {len(report.archived)} session(s), reset {len(report.units_reset)} unit(s), "
        f"deleted {len(report.deleted)} session(s), removed {len(report.worktrees_removed)} worktree(s)"
    )
    text += "".join(f"\nkept the worktree of {sid}: {why}" for sid, why in report.worktrees_kept.items())
    _emit(as_json, report.to_json(), text)


@cli.command()
@json_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Usage metrics: sessions by status, cost, durations."""
    from clawunits import render

    data = _service(ctx).stats()
    text = render.stats(data)
    _emit(as_json, data, text)


@cli.command()
@click.argument("session")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 4).")
@click.option("--ended", is_flag=True, help="Wait until the session has ended, not just for its turn to finish.")
@json_option
@click.pass_context
def wait(ctx: click.Context, session: str, timeout: float | None, ended: bool, as_json: bool) -> None:
    """Wait until a session waits for input or has ended; prints its state."""
    from clawunits import render

    record = _service(ctx).wait(session, timeout=timeout, until="end" if ended else "idle")
    _emit(as_json, record.to_json(), render.session_entry(record))


@cli.command()
@json_option
def doctor(as_json: bool) -> None:
    """Check the user manager, journald, linger, the Claude CLI and credentials, OpenClaw, the notifier, the
    config; say how to fix what is wrong. Exits 1 when something fails."""
    from clawunits.service.doctor import FAIL, render, run_checks

    checks = run_checks()
    _emit(
        as_json, {"checks": [c.to_json() for c in checks], "ok": all(c.status != FAIL for c in checks)}, render(checks)
    )
    if any(c.status == FAIL for c in checks):
        sys.exit(1)


@cli.group()
def config() -> None:
    """Show clawunits' configuration, or sync it from the OpenClaw plugin's config."""


@config.command("show")
@json_option
def config_show(as_json: bool) -> None:
    """Print the effective settings and where they come from."""
    import json
    from dataclasses import asdict

    from clawunits.state.config import config_path, load_settings

    settings = asdict(load_settings())
    text = "\n".join([f"# {config_path()}", *(f"{k} = {json.dumps(v)}" for k, v in settings.items())])
    _emit(as_json, {"path": str(config_path()), "settings": settings}, text)


@config.command("sync")
@json_option
def config_sync(as_json: bool) -> None:
    """Replace the config file with the plugin config given as a JSON object on stdin (validated first)."""
    import json

    from clawunits.state.config import config_path, write_settings

    try:
        raw = json.loads(sys.stdin.read() or "{}")
    except ValueError as e:
        raise click.UsageError(f"stdin is not JSON: {e}") from e
    if not isinstance(raw, dict):
        raise click.UsageError("stdin must be a JSON object")
    written = write_settings(raw)
    _emit(as_json, {"path": str(config_path()), "settings": written}, f"wrote {config_path()}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn library errors into one line on stderr and an exit code."""
    from clawunits.errors import ClawunitsError

    args = sys.argv[1:] if argv is None else argv
    try:
        code = cli.main(args=args, prog_name="clawunits", standalone_mode=False)
    except ClawunitsError as e:
        _fail(e.message + (f" (hint: {e.hint})" if e.hint else ""), e.exit_code, "--json" in args, e.to_json())
    except click.ClickException as e:
        _fail(e.format_message(), e.exit_code, "--json" in args, {"error": e.format_message(), "code": "usage"})
    except click.Abort:
        _fail("aborted", 130, False, {})
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        if os.environ.get("CLAWUNITS_DEBUG"):
            raise
        _fail(
            f"internal error: {type(e).__name__}: {e} (set CLAWUNITS_DEBUG=1 for a traceback)",
            INTERNAL_ERROR,
            "--json" in args,
            {"error": str(e), "code": "internal"},
        )
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int, as_json: bool, data: dict[str, Any]) -> None:
    import json

    if as_json and data:
        click.echo(json.dumps(data, ensure_ascii=False))
    click.echo(f"clawunits: error: {message}", err=True)
    sys.exit(code)
