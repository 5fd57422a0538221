"""Commands that read: sessions, output, worktree, fg and bg, stats, wait."""

from __future__ import annotations

import sys

import click

from clawunits.cli.common import agent_option, emit, get_service, json_option, reader, skipped, surface_option


@click.command()
@click.option(
    "--status",
    default="all",
    type=click.Choice(
        ["all", "running", "waiting", "completed", "failed", "killed", "interrupted", "queued", "limited"]
    ),
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

    service = get_service(ctx)
    records = service.sessions(status, include_archived=include_archived, agent=agent, channel=channel)
    places = service.queue_positions()
    emit(
        as_json,
        {
            "sessions": [{**r.to_json(), **_place(places, r.id)} for r in records],
            "count": len(records),
            "skipped": skipped(ctx),
        },
        render.session_list(records, places),
    )


def _place(places: dict[str, int], session_id: str) -> dict[str, int]:
    """A queued session's ``queuePosition`` (1: starts next)."""
    return {"queuePosition": places[session_id]} if session_id in places else {}


@click.command()
@click.argument("session")
@click.option("--lines", "-n", default=50, show_default=True, type=int, help="How many recent entries to show.")
@click.option("--full", is_flag=True, help="Show all output of the session.")
@json_option
@click.pass_context
def output(ctx: click.Context, session: str, lines: int, full: bool, as_json: bool) -> None:
    """Show a session's recent output (read-only)."""
    from clawunits import render

    view = get_service(ctx).output(session, lines=lines, full=full)
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
    emit(as_json, data, render.output(r, view.lines))


@click.command()
@click.argument("session")
@json_option
@click.pass_context
def worktree(ctx: click.Context, session: str, as_json: bool) -> None:
    """Show a session's worktree: branch, base, status, and the diff stat against the base."""
    from clawunits import render

    record, view = get_service(ctx).worktree(session)
    text = render.worktree(record, view)
    emit(as_json, {"id": record.id, "name": record.name, **view.to_json()}, text)


@click.command()
@click.argument("session")
@click.option("--lines", "-n", default=30, show_default=True, type=int, help="Recent entries shown without catch-up.")
@click.option("--channel", help="The chat channel (channel|target) to stream to; without it, follow here.")
@surface_option
@json_option
@click.pass_context
def fg(ctx: click.Context, session: str, lines: int, channel: str | None, surface: str | None, as_json: bool) -> None:
    """Bring a session to the foreground: show what was missed, then stream its new output.

    With --channel the notifier streams to that chat. In a terminal, without --channel, follow live until
    Ctrl-C.
    """
    from clawunits import render

    live = channel is None
    if live and not as_json and not sys.stdout.isatty():
        raise click.UsageError("give --channel channel|target, or run in a terminal to follow live")
    view = get_service(ctx).fg(session, channel, lines=lines)
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
    text = render.foreground(r, view.catchup, view.lines, mode=mode, surface=reader(surface, default="tool"))
    data["message"] = text
    emit(as_json, data, text)
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


@click.command()
@click.argument("session", required=False)
@click.option("--channel", required=True, help="The chat channel (channel|target) to stop streaming to.")
@json_option
@click.pass_context
def bg(ctx: click.Context, session: str | None, channel: str, as_json: bool) -> None:
    """Send a session (or every session in the foreground of --channel) to the background."""
    from clawunits import render

    records = get_service(ctx).bg(session, channel)
    text = render.backgrounded(records, explicit=session is not None)
    data = {"sessions": [{"id": r.id, "name": r.name} for r in records], "count": len(records), "message": text}
    emit(as_json, data, text)


@click.command()
@json_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Usage metrics: sessions by status, cost, durations."""
    from clawunits import render

    data = get_service(ctx).stats()
    text = render.stats(data)
    emit(as_json, {**data, "skipped": skipped(ctx)}, text)


@click.command()
@click.argument("session")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 4).")
@click.option("--ended", is_flag=True, help="Wait until the session has ended, not just for its turn to finish.")
@json_option
@click.pass_context
def wait(ctx: click.Context, session: str, timeout: float | None, ended: bool, as_json: bool) -> None:
    """Wait until a session waits for input or has ended; prints its state."""
    from clawunits import render

    record = get_service(ctx).wait(session, timeout=timeout, until="end" if ended else "idle")
    emit(as_json, record.to_json(), render.session_entry(record))
