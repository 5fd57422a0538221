"""The runner's part in the launch queue: when its session stops holding a slot, queued sessions may start."""

from __future__ import annotations

import sys

from clawunits.state.store import Store
from clawunits.systemd import queuekick


def free_slot(store: Store) -> None:
    """This session no longer holds a slot (it ended, or its task is done): wake the launch queue's starter.

    Never fails the session: a starter that cannot be started is said on stderr (the journal), and the next
    slot freed, a launch, or the boot drains the queue.
    """
    try:
        queuekick.kick(store)
    except Exception as e:  # noqa: BLE001 - best effort, see above
        print(f"clawunits: cannot wake the launch queue: {e}", file=sys.stderr, flush=True)
