"""``notify``: change what a session tells its chat (its notify policy), from then on."""

from __future__ import annotations

from clawunits.errors import InvalidInput
from clawunits.notify_policy import NOTIFY_POLICIES
from clawunits.service import sessions
from clawunits.service.authority import Action
from clawunits.service.context import Context
from clawunits.state.models import SessionRecord


def set_policy(ctx: Context, ref: str, policy: str, agent: str | None = None) -> SessionRecord:
    """Set ``ref``'s notify policy (all, status, quiet); ``default`` goes back to the configured one."""
    if policy not in (*NOTIFY_POLICIES, "default"):
        raise InvalidInput(f"unknown notify policy {policy!r}", hint=f"one of {', '.join(NOTIFY_POLICIES)}, or default")
    record = sessions.get(ctx, ref, agent)
    ctx.authorize(Action.NOTIFY, record)
    value = None if policy == "default" else policy
    return ctx.store.update(record.id, lambda r: r.with_changes(notify=value))
