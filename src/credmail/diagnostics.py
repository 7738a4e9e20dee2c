"""`check_connections`: what `credmail check-config --connect` does: sign in to IMAP and
SMTP, step by step, with the mail source and sender bootstrap builds.

The failures are worded by `explain` (credmail.adapters.explain, through bootstrap).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from credmail.bootstrap import connection_probes
from credmail.config import Settings


def check_connections(settings: Settings, report: Callable[[str], None]) -> None:
    """Sign in to the mailbox and the SMTP server, reporting each step; raises on the
    first failure (worded by `explain`). Changes nothing on either server."""
    with connection_probes(settings) as (source, make_sender):
        check = getattr(source, "check", None)
        if check is None:
            report(f"mailbox: {settings.mailbox.kind} at {settings.mailbox.maildir_path}")
        else:
            check(report)
        if settings.smtp.outbox_dir is not None:
            report(f"SMTP: not used, replies are written to {settings.smtp.outbox_dir}")
            return
        asyncio.run(_smtp_sign_in(make_sender()))
    signed = f" as {settings.smtp.username}" if settings.smtp.username else ""
    report(f"SMTP {settings.smtp.host}:{settings.smtp.effective_port}: connected{signed}")


async def _smtp_sign_in(sender: object) -> None:
    async with sender.connect():  # type: ignore[attr-defined]
        return
