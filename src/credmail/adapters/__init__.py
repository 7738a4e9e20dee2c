"""Adapters: thin I/O behind the service ports (IMAP, Maildir, SMTP, database)."""
