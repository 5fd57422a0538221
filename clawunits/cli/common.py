"""What every command shares: the service, text or JSON output, and the common options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from clawunits.render import Surface
    from clawunits.service.api import Service

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
agent_option = click.option("--agent", help="Act as this OpenClaw agent: only its own sessions.")
surface_option = click.option(
    "--surface",
    type=click.Choice(["shell", "tool", "chat"]),
    help="Who reads the answer: a shell (default), an agent's tool (claude_*), or a chat command (/claude_*).",
)


def emit(as_json: bool, data: Any, text: str) -> None:
    """Print ``text``, or with ``--json`` the data plus the same text as ``display``, so that front-ends (the
    OpenClaw plugin) show what the CLI shows and format nothing themselves."""
    if as_json:
        import json  # not at start-up: `--help` and text output do without it

        if isinstance(data, dict):
            data = {**data, "display": text}
        click.echo(json.dumps(data, ensure_ascii=False, indent=None))
    else:
        click.echo(text)


def skipped(ctx: click.Context) -> list[dict[str, str]]:
    """The damaged session files the command skipped (``skipped`` in its JSON; each also warned about on
    stderr, one line naming the file)."""
    return get_service(ctx).store.skipped_json()


# Where the root command leaves who calls (``--via``, ``--sender``, ``--sender-is-owner``, ``--gateway-owner``,
# ``--agent-id``, ``--session-key``).
CALLER = "clawunits.caller"


def get_service(ctx: click.Context) -> Service:
    from clawunits.senders import check_sender, check_session_key
    from clawunits.service.api import Caller, Service, Via
    from clawunits.service.checks import check_agent

    if ctx.obj is None:
        via, sender, owner, owners, agent_id, key = ctx.meta.get(CALLER, ("shell", None, False, (), None, None))
        caller = Caller(
            Via(via),
            check_sender(sender) if sender else None,
            owner,
            tuple(owners),
            check_agent(agent_id),
            check_session_key(key) if key else None,
        )
        ctx.obj = Service(caller=caller)
        ctx.call_on_close(ctx.obj.close)
    return ctx.obj


def reader(name: str | None, default: str = "shell") -> Surface:
    """The reader ``--surface`` names (render is imported by the command that renders anyway)."""
    from clawunits.render import Surface

    return Surface(name or default)
