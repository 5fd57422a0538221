"""Claude Code's permission modes, stated once: the CLI's choices, config validation and the checks of a launch
use this tuple, and the plugin's tests hold its manifest against it. No imports: the CLI reads it at start-up."""

PERMISSION_MODES = ("default", "plan", "acceptEdits", "bypassPermissions")
