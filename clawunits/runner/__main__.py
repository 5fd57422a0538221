"""``python -m clawunits.runner <session-id>``: the ExecStart of every session unit."""

from clawunits.runner.runner import main

main()
