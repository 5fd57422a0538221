"""The ``clawunits`` command line: the command group, and library errors turned into one line and an exit code.

Only click is imported at start-up; the library (and never claude-agent-sdk) is imported by the command
that needs it, so ``clawunits --help`` stays fast. The commands live in sessions.py (what changes sessions),
viewing.py (what reads them) and admin.py (the notifier, gc, doctor, config).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from clawunits.cli import admin, merging, sessions, viewing
from clawunits.cli.common import CALLER

if TYPE_CHECKING:
    from clawunits.errors import StoreError

INTERNAL_ERROR = 70


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clawunits")
@click.option(
    "--via",
    type=click.Choice(["shell", "rpc", "command", "tool"]),
    default="shell",
    help="How the call reaches clawunits: a shell (the host's user), a gateway RPC client, a chat command, or "
    "an agent's tool. The OpenClaw plugin passes it; see docs/SAFETY.md.",
)
@click.option("--sender", metavar="CHANNEL|ACCOUNT|ID", help="The chat sender the call acts for (--via command/tool).")
@click.option("--sender-is-owner", is_flag=True, help="OpenClaw says the sender owns the gateway.")
@click.option(
    "--gateway-owner",
    "owners",
    multiple=True,
    metavar="ENTRY",
    help="An entry of the gateway's commands.ownerAllowFrom (channel:id or id): a sender it names is an owner.",
)
@click.option("--agent-id", metavar="ID", help="The OpenClaw agent the call comes from (--via command/tool).")
@click.option(
    "--session-key",
    metavar="KEY",
    help="The OpenClaw session the call comes from (--via command/tool): the one a launched session wakes.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    via: str,
    sender: str | None,
    sender_is_owner: bool,
    owners: tuple[str, ...],
    agent_id: str | None,
    session_key: str | None,
) -> None:
    """Claude Code sessions as transient systemd user units."""
    if via == "shell" and (sender or sender_is_owner or owners or agent_id or session_key):
        raise click.UsageError(
            "--sender, --sender-is-owner, --gateway-owner, --agent-id and --session-key need --via command or tool"
        )
    ctx.meta[CALLER] = (via, sender, sender_is_owner, owners, agent_id, session_key)


for command in (
    sessions.launch,
    viewing.sessions,
    viewing.output,
    sessions.kill,
    sessions.notify,
    viewing.worktree,
    merging.merge,
    merging.pr,
    sessions.respond,
    sessions.recover,
    sessions.unpark,
    sessions.resume,
    sessions.queue,
    viewing.fg,
    viewing.bg,
    admin.notifier,
    admin.gc,
    viewing.stats,
    viewing.wait,
    admin.doctor,
    admin.config,
):
    cli.add_command(command)


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
        host = _host_error(e) if isinstance(e, OSError) else None
        if host is not None:
            _fail(f"{host.message} (hint: {host.hint})", host.exit_code, "--json" in args, host.to_json())
        if os.environ.get("CLAWUNITS_DEBUG"):
            raise
        _fail(
            f"internal error: {type(e).__name__}: {e} (set CLAWUNITS_DEBUG=1 for a traceback)",
            INTERNAL_ERROR,
            "--json" in args,
            {"error": str(e), "code": "internal"},
        )
    sys.exit(code if isinstance(code, int) else 0)


def _host_error(e: OSError) -> StoreError | None:
    """A write that no operation turned into a clawunits error, on a full or read-only file system: still one
    line with the fix (exit 7, ``store``), not an internal error."""
    from pathlib import Path

    from clawunits.state.config import state_dir
    from clawunits.state.store import NO_SPACE, READ_ONLY, write_error

    if e.errno not in NO_SPACE | READ_ONLY:
        return None
    return write_error("to", Path(e.filename) if e.filename else state_dir(), e, state_dir())


def _fail(message: str, code: int, as_json: bool, data: dict[str, Any]) -> None:
    import json

    if as_json and data:
        click.echo(json.dumps(data, ensure_ascii=False))
    click.echo(f"clawunits: error: {message}", err=True)
    sys.exit(code)
