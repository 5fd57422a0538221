"""What every operation works on: the settings, the state directory's store and the systemd connection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from clawunits.state.config import Settings, load_settings, state_dir
from clawunits.state.store import Store

if TYPE_CHECKING:
    from clawunits.systemd.units import UserManager


class Context:
    """One state directory, one settings object, the caller's environment and a lazily connected manager."""

    def __init__(
        self,
        settings: Settings | None = None,
        store: Store | None = None,
        manager: UserManager | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.store = store or Store(state_dir())
        self._manager = manager
        self.environ = dict(os.environ if environ is None else environ)

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
