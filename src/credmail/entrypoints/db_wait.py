"""`credmail db wait [--timeout S]`: exit 0 once the database is at the newest revision.

What a process that needs the schema but must not migrate it runs first: the web pods'
init container, while the daemon's runs `credmail db upgrade`. It changes nothing and
creates nothing (not even a missing SQLite file); an unreachable database is waited for
too. On timeout: one line saying what it last found, exit 1."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from credmail.bootstrap import App
    from credmail.entrypoints.cli_base import Context

POLL_SECONDS = 2.0
EXIT_NOT_READY = 1
CURRENT = "database at the newest revision"


def add_parser(db_commands: Any) -> None:
    wait = db_commands.add_parser(
        "wait", help="wait until the database is at the newest revision (changes nothing)"
    )
    wait.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="give up after S seconds"
    )
    wait.set_defaults(handler=cmd_db_wait)


def cmd_db_wait(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app(migrate=False)
    deadline = time.monotonic() + max(0.0, args.timeout)
    while True:
        found = _not_ready(app)
        if found is None:
            print(CURRENT)
            return 0
        left = deadline - time.monotonic()
        if left <= 0:
            shown = app.engine.url.render_as_string(hide_password=True)
            print(
                f"credmail: database {shown}: {found} after {args.timeout:g} s;"
                " `credmail db upgrade` migrates it (the daemon runs it before it starts)",
                file=sys.stderr,
            )
            return EXIT_NOT_READY
        time.sleep(min(POLL_SECONDS, left))


def _not_ready(app: App) -> str | None:
    """None when the schema is current, else what stands in the way (one phrase)."""
    from credmail.bootstrap import explain

    url = app.engine.url
    path = url.database if url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        return "the file does not exist yet"
    try:
        current = app.schema_current()
    except Exception as exc:  # unreachable, refused, no such schema yet: wait for it
        reason = explain(exc)
        if reason is None:
            raise
        return f"not reachable ({reason.partition(': ')[2]})"
    finally:
        app.engine.dispose()  # hold no connection between polls
    return None if current else "not at the newest revision"
