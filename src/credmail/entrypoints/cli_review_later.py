"""`credmail review defer` and `review deferred`: a request out of the queue until a date
(Italian or ISO), and the list of those still waiting for theirs. Italian, like the other
review commands; the handlers print through cli's helpers (control characters removed)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register(review: Any, sub: Callable[[Any, str, str], argparse.ArgumentParser]) -> None:
    """Add the commands to `review`'s subparsers (`sub` builds an Italian subparser)."""
    defer = sub(review, "defer", "toglie la richiesta dalla coda fino a una data")
    defer.add_argument("id", type=int, help="numero della richiesta")
    defer.add_argument(
        "--until", required=True, metavar="DATA", help="gg/mm/aaaa (o aaaa-mm-gg), dopo oggi"
    )
    defer.add_argument("--nota", help="nota interna (registrata, mai inviata)")
    defer.set_defaults(handler=cmd_review_defer)
    listing = sub(review, "deferred", "le richieste rinviate, con la data in cui tornano")
    listing.add_argument("--json", action="store_true", help="in formato JSON")
    listing.set_defaults(handler=cmd_review_deferred)


def cmd_review_defer(args: argparse.Namespace, ctx: Any) -> int:
    from credmail.entrypoints.cli_base import actor as _actor
    from credmail.entrypoints.cli_base import review_action as _review_action
    from credmail.entrypoints.cli_base import say as _say
    from credmail.service.desks.deferrals import Deferral
    from credmail.service.presentation import italian_date

    desk = ctx.app().desks.deferrals
    done = _review_action(lambda: desk.defer(args.id, args.until, _actor(), args.nota))
    assert isinstance(done, Deferral)
    _say(f"Richiesta #{done.item_id} rinviata: torna nella coda il {italian_date(done.day)}.")
    return 0


def cmd_review_deferred(args: argparse.Namespace, ctx: Any) -> int:
    import json

    from credmail.entrypoints.cli_base import line as _line
    from credmail.entrypoints.cli_base import review_json as _review_json
    from credmail.entrypoints.cli_base import say as _say
    from credmail.service.presentation import italian_date, italian_time, kind_label, plural

    app = ctx.app()
    items = app.desks.deferrals.deferred()
    if args.json:
        shown = [
            {**_review_json(item), "deferred_until": item.deferred_until.isoformat()}
            for item in items
            if item.deferred_until is not None
        ]
        _say(json.dumps(shown, ensure_ascii=False, indent=2))
        return 0
    if not items:
        _say("Nessuna richiesta rinviata.")
        return 0
    _say(f"{plural(len(items), 'richiesta rinviata', 'richieste rinviate')}:\n")
    for item in items:
        back = item.deferred_until.astimezone(app.timezone).date() if item.deferred_until else None
        _say(
            f"#{item.id}  torna il {italian_date(back)}  "
            f"(ricevuta il {italian_time(item.created_at, app.timezone)})  "
            f"{_line(item.sender or '?')}  [{kind_label(str(item.kind))}]"
        )
    return 0


def deferred_line(item: Any, zone: Any) -> str:
    """`review show`'s line for a deferred request: the day it comes back (or came)."""
    from credmail.service.presentation import italian_date

    back = italian_date(item.deferred_until.astimezone(zone).date())
    return f"Rinviata: torna (o è tornata) nella coda il {back}"
