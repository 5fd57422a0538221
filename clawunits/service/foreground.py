"""Which channels have which session in the foreground, and what each channel has already seen.

Durable (``<state>/foreground.json``, 0600) and shared: ``clawunits fg``/``bg`` switch a channel, the notifier
streams to foreground channels and advances their ``seen`` journal cursor as it goes. Catch-up on the next
``fg`` is exactly the records after ``seen``: nothing shown twice, nothing skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clawunits.records import utc_now_iso
from clawunits.state.store import Store, write_atomically


@dataclass(frozen=True)
class View:
    """One channel's view of one session."""

    foreground: bool
    seen: str | None = None
    since: str = ""


State = dict[str, dict[str, View]]


class Foreground:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.root / "foreground.json"

    def load(self) -> State:
        return _parse(self.path)

    def _change(self, change: Callable[[State], object]) -> State:
        with self.store.lock("foreground"):
            state = _parse(self.path)
            change(state)
            state = {sid: views for sid, views in state.items() if views}
            write_atomically(self.path, json.dumps(_dump(state), indent=1).encode())
            return state

    def view(self, session_id: str, channel: str) -> View | None:
        return self.load().get(session_id, {}).get(channel)

    def set_foreground(self, session_id: str, channel: str, seen: str | None) -> None:
        def change(state: State) -> None:
            state.setdefault(session_id, {})[channel] = View(foreground=True, seen=seen, since=utc_now_iso())

        self._change(change)

    def set_background(self, session_ids: list[str], channel: str) -> None:
        def change(state: State) -> None:
            for sid in session_ids:
                view = state.get(sid, {}).get(channel)
                if view is not None:
                    state[sid][channel] = View(foreground=False, seen=view.seen, since=view.since)

        self._change(change)

    def mark_seen(self, session_id: str, channel: str, cursor: str) -> None:
        def change(state: State) -> None:
            view = state.get(session_id, {}).get(channel)
            if view is not None:
                state[session_id][channel] = View(foreground=view.foreground, seen=cursor, since=view.since)

        self._change(change)

    def forget(self, session_id: str) -> None:
        self._change(lambda state: state.pop(session_id, None) and None)

    def channels_of(self, session_id: str, state: State | None = None) -> dict[str, View]:
        """Channels that have the session in the foreground."""
        views = (state if state is not None else self.load()).get(session_id, {})
        return {ch: v for ch, v in views.items() if v.foreground}

    def sessions_on(self, channel: str) -> list[str]:
        return [sid for sid, views in self.load().items() if views.get(channel, View(False)).foreground]


def _parse(path: Path) -> State:
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # A damaged file loses only foreground switches, never sessions: start clean.
        return {}
    return {
        sid: {ch: View(**v) for ch, v in views.items() if isinstance(v, dict)}
        for sid, views in raw.items()
        if isinstance(views, dict)
    }


def _dump(state: State) -> dict[str, dict[str, dict[str, Any]]]:
    return {sid: {ch: asdict(v) for ch, v in views.items()} for sid, views in state.items()}


def cursor_seqnum(cursor: str | None) -> int:
    """The journal sequence number in a cursor (``i=<hex>``), which orders entries; -1 without one."""
    for part in (cursor or "").split(";"):
        if part.startswith("i="):
            return int(part[2:], 16)
    return -1
