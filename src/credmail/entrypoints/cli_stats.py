"""`credmail stats [--weeks N] [--json]`: the console's statistics at the terminal, the
same tables (Italian labels, as the head teacher reads them) or, with --json, the same
figures by their codes for a script."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from credmail.core.terminal import printable
from credmail.service.desks.stats import MAX_WEEKS, Chart
from credmail.service.stats import (
    AGE_LIMITS,
    CAMPAIGN_STATES,
    DURATION_LIMITS,
    LINK_KINDS,
    OUTCOMES,
    WAITING_KINDS,
    Statistics,
)

if TYPE_CHECKING:
    from credmail.entrypoints.cli_base import Context


def register(sub: Any) -> None:
    stats = sub.add_parser("stats", help="requests, times to link, waiting work, campaigns")
    stats.add_argument(
        "--weeks",
        type=int,
        default=13,
        help=f"how many weeks back, the current one included (1-{MAX_WEEKS}; default 13)",
    )
    stats.add_argument("--json", action="store_true", help="the figures by their codes")
    stats.set_defaults(handler=cmd_stats)


def cmd_stats(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.cli_base import actor as _actor

    desk = ctx.app().desks.stats
    stats = desk.report(args.weeks, _actor())
    if args.json:
        print(json.dumps(as_json(stats), ensure_ascii=False, indent=2))
        return 0
    first = stats.weeks[0].monday.strftime("%d/%m/%Y")
    print(f"Statistiche dal {first} ({args.weeks} settimane)")
    for chart in desk.charts(stats):
        print()
        for line in table_lines(chart):
            print(printable(line))
    return 0


def table_lines(chart: Chart) -> list[str]:
    """The chart's table, columns aligned."""
    rows = [chart.header(), *chart.rows()]
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [chart.title, "-" * len(chart.title)]
    if len(rows) == 1:
        return [*lines, "(nessun dato)"]
    for row in cells:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return [line.rstrip() for line in lines]


def _bucketed(counts: dict[int, int], limits: tuple[int, ...]) -> list[dict[str, Any]]:
    bounds: list[int | None] = [*limits, None]
    return [{"under_seconds": b, "count": counts.get(i, 0)} for i, b in enumerate(bounds)]


def as_json(stats: Statistics) -> dict[str, Any]:
    return {
        "generated_at": stats.generated_at.isoformat(),
        "retention_days": stats.retention_days,
        "weeks": [
            {"monday": w.monday.isoformat()} | {o: stats.requests.get((i, o), 0) for o in OUTCOMES}
            for i, w in enumerate(stats.weeks)
        ],
        "time_to_link": {
            kind: _bucketed(
                {b: n for (k, b), n in stats.link_times.items() if k == kind}, DURATION_LIMITS
            )
            for kind in LINK_KINDS
        },
        "task_time_to_done": _bucketed(stats.task_times, DURATION_LIMITS),
        "waiting": {
            kind: {
                "by_age": _bucketed(dict(enumerate(stats.waiting[kind].counts)), AGE_LIMITS),
                "oldest": _iso(stats.waiting[kind].oldest),
            }
            for kind in WAITING_KINDS
        },
        "campaigns": [
            {
                "name": c.name,
                "status": c.status,
                "start_at": c.start_at.isoformat(),
                "counts": {s: c.counts.get(s, 0) for s in CAMPAIGN_STATES},
                "total": c.total,
                "finished": c.finished,
            }
            for c in stats.campaigns
        ],
    }


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None
