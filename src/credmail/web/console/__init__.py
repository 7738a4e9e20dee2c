"""The secretariat's console: Italian, server-rendered pages over the same desks as the
CLI (review queue, register tasks, directory, outbox, audit log), for signed-in staff."""
