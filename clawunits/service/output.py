"""``output``: a session's recent entries (assistant text, tool calls, errors) from its journal."""

from __future__ import annotations

from clawunits.errors import InvalidInput
from clawunits.records import GAP, TURN_END
from clawunits.render import render_entry
from clawunits.service import sessions
from clawunits.service.context import Context
from clawunits.service.results import OutputView
from clawunits.systemd import journal


def output(ctx: Context, ref: str, lines: int = 50, full: bool = False) -> OutputView:
    """The session's recent output entries (assistant text, tool calls, errors), newest last."""
    if lines < 1 and not full:
        raise InvalidInput("--lines must be at least 1")
    record = sessions.get(ctx, ref)
    records = (journal.read_after(record.unit) if full else tail(record.unit, lines)).records
    entries = [e for e in (render_entry(r) for r in records) if e is not None]
    last_turn = next((r for r in reversed(records) if r.type == TURN_END), None)
    return OutputView(
        record=record,
        lines=entries if full else entries[-lines:],
        result=last_turn.to_json() if last_turn else None,
        lost_records=sum(r.get("missing", 0) for r in records if r.type == GAP),
    )


def tail(unit: str, entries_wanted: int) -> journal.Batch:
    """Read backwards in growing steps until enough displayable entries are found or the journal is done."""
    lines = 4 * entries_wanted + 16
    while True:
        batch = journal.read_tail(unit, lines)
        shown = sum(1 for r in batch.records if render_entry(r) is not None)
        if shown >= entries_wanted or len(batch.records) < lines // 2 or lines > 1_000_000:
            return batch
        lines *= 4
