"""Statistiche (administrators): the figures of the last weeks, each chart an SVG drawn
on the server with its data as a table and a CSV file of the same table."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from credmail.service.desks.staff import StaffSession
from credmail.web.console.base import Pages, query
from credmail.web.console.charts import draw

PERIODS = (4, 13, 26, 52)
DEFAULT_WEEKS = 13


def weeks_asked(request: Request) -> int:
    raw = query(request, "settimane", 3)
    return int(raw) if raw.isdigit() and int(raw) in PERIODS else DEFAULT_WEEKS


class StatsPages(Pages):
    async def page(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        weeks = weeks_asked(request)
        stats = await run_in_threadpool(self.desks.stats.report, weeks, staff.actor())
        charts = self.desks.stats.charts(stats)
        return self.c.render(
            "console_stats.html",
            staff,
            title="Statistiche",
            stats=stats,
            weeks=weeks,
            periods=PERIODS,
            charts=[(chart, draw(chart)) for chart in charts],
        )

    async def csv(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        weeks = weeks_asked(request)
        stats = await run_in_threadpool(self.desks.stats.report, weeks, staff.actor())
        chart = self.desks.stats.chart(stats, str(request.path_params["slug"]))
        first = stats.weeks[0].monday.isoformat()
        return Response(
            self.desks.stats.csv(chart),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": (
                    f'attachment; filename="statistiche-{chart.slug}-dal-{first}.csv"'
                )
            },
        )
