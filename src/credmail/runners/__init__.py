"""Long-running loops: the inbox watcher, the outbox worker, the scheduled jobs."""
