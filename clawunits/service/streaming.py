"""``fg``/``bg``: bring a session to the foreground of a channel (catch-up, then streaming), or stop it."""

from __future__ import annotations

import contextlib

from clawunits.errors import InvalidInput, NotFound
from clawunits.notifier.channels import check_channel
from clawunits.render import render_entry
from clawunits.service import sessions
from clawunits.service.authority import Action
from clawunits.service.context import Context
from clawunits.service.foreground import Foreground
from clawunits.service.output import tail
from clawunits.service.results import ForegroundView
from clawunits.state.models import SessionRecord
from clawunits.systemd import journal


def fg(ctx: Context, ref: str, channel: str | None, lines: int = 30) -> ForegroundView:
    """Bring a session to the foreground of ``channel``: catch-up first, then the notifier streams to it.

    Catch-up is exactly the records after the last one this channel saw (a journal cursor); a channel
    that never saw the session gets the last ``lines`` entries instead.
    """
    if lines < 1:
        raise InvalidInput("--lines must be at least 1")
    record = sessions.get(ctx, ref)
    ch = check_channel(channel) if channel is not None else None
    ctx.authorize(Action.FOREGROUND if ch else Action.READ, record)
    state = Foreground(ctx.store)
    view = state.view(record.id, ch) if ch else None
    catchup: list[str] | None = None
    if view is not None and view.seen:
        batch = journal.read_after(record.unit, view.seen)
        missed = [e for e in (render_entry(r) for r in batch.records) if e is not None]
        catchup = missed or None
    if catchup is None:
        batch = tail(record.unit, lines)
    entries = [e for e in (render_entry(r) for r in batch.records) if e is not None]
    cursor = batch.cursor or (view.seen if view else None)
    if ch:
        state.set_foreground(record.id, ch, cursor)
    return ForegroundView(record, ch, catchup, [] if catchup else entries[-lines:], cursor)


def bg(ctx: Context, ref: str | None, channel: str) -> list[SessionRecord]:
    """Stop streaming a session (or every session in the foreground of ``channel``) to the channel."""
    ch = check_channel(channel)
    ctx.authorize(Action.FOREGROUND)
    state = Foreground(ctx.store)
    if ref is not None:
        record = sessions.get(ctx, ref)
        state.set_background([record.id], ch)
        return [record]
    ids = state.sessions_on(ch)
    state.set_background(ids, ch)
    out = []
    for sid in ids:
        with contextlib.suppress(NotFound):
            out.append(ctx.store.load(sid))
    return out
