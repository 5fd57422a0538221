"""Booting a user manager and journald where none runs (containers, CI)."""
