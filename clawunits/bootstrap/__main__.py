"""``python -m clawunits.bootstrap up|down|status``: boot a user manager and journald where none run."""

from clawunits.bootstrap.boot import main

main()
