"""clawunits: Claude Code sessions as transient systemd user units."""

__version__ = "0.1.0"
