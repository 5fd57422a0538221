"""The runner: what runs inside each session unit and drives one Claude Code session."""
