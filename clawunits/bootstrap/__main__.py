"""``python -m clawunits.bootstrap up|down|status``: boot a user manager and journald where none run."""

import sys

from clawunits.bootstrap.cli import main

sys.exit(main())
