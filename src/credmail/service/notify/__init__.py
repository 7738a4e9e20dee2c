"""Mail for the school's own people: the secretariat's digest of what waits
(`digest`, `waiting`) and the sysadmin's alerts (`alerts`), both through the outbox."""
