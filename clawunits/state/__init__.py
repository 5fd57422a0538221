"""What clawunits keeps on disk: session records, inboxes, settings, names."""
