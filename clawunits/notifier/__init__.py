"""The notifier unit: follows every session's journal and delivers notifications to chat (exactly once)."""
