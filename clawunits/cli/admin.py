"""Commands that run or look after clawunits itself: the notifier, gc, doctor, config."""

from __future__ import annotations

import sys

import click

from clawunits.cli.common import emit, get_service, json_option, skipped


@click.command()
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
        await Notifier(get_service(ctx)).run(stop)

    asyncio.run(main())


@click.command()
@json_option
@click.pass_context
def gc(ctx: click.Context, as_json: bool) -> None:
    """Archive sessions finished over an hour ago, reset their units, delete beyond maxPersistedSessions."""
    from clawunits.service.gc import collect

    report = collect(get_service(ctx))
    text = (
        f"archived {len(report.archived)} session(s), reset {len(report.units_reset)} unit(s), "
        f"deleted {len(report.deleted)} session(s), removed {len(report.worktrees_removed)} worktree(s)"
    )
    text += "".join(f"\nkept the worktree of {sid}: {why}" for sid, why in report.worktrees_kept.items())
    emit(as_json, {**report.to_json(), "skipped": skipped(ctx)}, text)


@click.command()
@json_option
def doctor(as_json: bool) -> None:
    """Check the user manager, journald, linger, the Claude CLI and credentials, OpenClaw, the notifier, the
    config; say how to fix what is wrong. Exits 1 when something fails."""
    from clawunits.service.doctor import FAIL, render, run_checks

    checks = run_checks()
    emit(
        as_json, {"checks": [c.to_json() for c in checks], "ok": all(c.status != FAIL for c in checks)}, render(checks)
    )
    if any(c.status == FAIL for c in checks):
        sys.exit(1)


@click.group()
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
    emit(as_json, {"path": str(config_path()), "settings": settings}, text)


@config.command("sync")
@json_option
def config_sync(as_json: bool) -> None:
    """Merge the plugin config given as a JSON object on stdin into the config file (validated first): what it
    sets replaces the file's; what it leaves unset keeps the value written in the file by hand."""
    import json

    from clawunits.notifier.gateway import handover_dir
    from clawunits.state.config import config_path, state_dir, write_settings

    try:
        raw = json.loads(sys.stdin.read() or "{}")
    except ValueError as e:
        raise click.UsageError(f"stdin is not JSON: {e}") from e
    if not isinstance(raw, dict):
        raise click.UsageError("stdin must be a JSON object")
    written = write_settings(raw)
    # The plugin's delivery service learns here where the notifier hands it messages.
    delivery = str(handover_dir(state_dir()))
    emit(as_json, {"path": str(config_path()), "settings": written, "deliveryDir": delivery}, f"wrote {config_path()}")
