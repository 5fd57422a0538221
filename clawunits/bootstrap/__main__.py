"""``python -m clawunits.bootstrap up|down|status``: boot a user manager and journald where none run."""

from clawunits.bootstrap.cli import main

main()
