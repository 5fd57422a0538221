"""The operations behind every front-end (CLI, plugin, tests), one module per concern."""
