"""Everything systemd and journald: units over D-Bus, the journal, cgroups, resource limits, unit environment."""
