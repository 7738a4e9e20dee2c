"""`credmail notify digest|test`: the secretariat's digest now (or printed), a test alert
for the sysadmin. Both queue through the outbox, then deliver it at once."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from credmail.core.terminal import printable

if TYPE_CHECKING:
    from credmail.bootstrap import App
    from credmail.entrypoints.cli_base import Context


def add_notify_commands(sub: Any) -> None:
    notify = sub.add_parser(
        "notify", help="the secretariat's digest and the sysadmin's alerts"
    ).add_subparsers(dest="notify_command", required=True)
    digest = notify.add_parser("digest", help="send the digest of what waits now")
    digest.add_argument("--dry-run", action="store_true", help="print it; send nothing")
    digest.set_defaults(handler=cmd_notify_digest)
    test = notify.add_parser("test", help="send a test alert to notify.admin")
    test.set_defaults(handler=cmd_notify_test)


def cmd_notify_digest(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.cli_base import CommandError

    app = ctx.app()
    if args.dry_run:
        digest = app.digest.preview()
        if digest is None:
            print("nothing waits: no digest would be sent")
            return 0
        print(f"To: {', '.join(digest.to) or '(notify.staff is empty)'}")
        print(f"Subject: {printable(digest.subject)}\n")
        print(printable(digest.text).rstrip("\n"))
        return 0
    if not app.settings.notify.staff:
        raise CommandError("notify.staff is empty: nobody to send the digest to")
    queued = app.digest.send_now()
    if not queued:
        print("nothing waits: no digest sent")
        return 0
    print(f"digest queued for {queued} address(es); {_deliver(app)}")
    return 0


def cmd_notify_test(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.cli_base import CommandError

    app = ctx.app()
    if not app.settings.notify.admin:
        raise CommandError("notify.admin is empty: nobody to send the test alert to")
    queued = app.alerts.send_test()
    print(f"test alert queued for {queued} address(es); {_deliver(app)}")
    return 0


def _deliver(app: App) -> str:
    """Deliver the outbox now; say what happened (the daemon retries what did not go)."""
    stats = asyncio.run(app.delivery.drain())
    if stats.sent:
        return f"sent now ({stats.sent} mail(s) left the outbox)"
    return "not sent yet: the daemon retries it; see `credmail status` and `credmail outbox list`"
