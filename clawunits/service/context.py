"""What every operation works on: the settings, the state directory's store and the systemd connection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from clawunits.service.authority import Action, Caller, require
from clawunits.state.config import Settings, load_settings, state_dir
from clawunits.state.store import Store

if TYPE_CHECKING:
    from clawunits.state.models import SessionRecord
    from clawunits.systemd.units import UserManager


class Context:
    """One state directory, one settings object, who calls (and their environment), and a lazily connected
    manager."""

    def __init__(
        self,
        settings: Settings | None = None,
        store: Store | None = None,
        manager: UserManager | None = None,
        environ: Mapping[str, str] | None = None,
        caller: Caller | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.store = store or Store(state_dir())
        self._manager = manager
        self.environ = dict(os.environ if environ is None else environ)
        self.caller = caller or Caller()

    def authorize(self, action: Action, session: SessionRecord | None = None) -> None:
        """Refuse (NotAuthorized) unless the caller may do ``action`` (to ``session``): the one rule, in
        :mod:`clawunits.service.authority`. Called before anything changes."""
        require(self.settings, self.caller, action, session)

    @property
    def manager(self) -> UserManager:
        # Connect lazily, and import pystemd only then: listing finished sessions or printing stats needs no
        # bus at all.
        from clawunits.systemd.units import UserManager

        if self._manager is None:
            self._manager = UserManager()
        return self._manager

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
