"""The statistics desk (administrators: the head teacher, the DPO): the figures of the last
weeks, as tables with Italian labels that the console draws as charts, lists as HTML
tables and exports as CSV, and that `credmail stats` prints."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo

from credmail.service.csv_export import spreadsheet_writer
from credmail.service.desks.base import DeskError
from credmail.service.ports import Clock
from credmail.service.presentation import (
    CAMPAIGN_STATUS_LABELS,
    PAIR_STATE_LABELS,
    italian_time,
)
from credmail.service.review import Actor
from credmail.service.stats import (
    AGE_LABELS,
    AGE_LIMITS,
    CAMPAIGN_STATES,
    DURATION_LABELS,
    DURATION_LIMITS,
    LINK_KIND_LABELS,
    LINK_KINDS,
    OUTCOME_LABELS,
    OUTCOMES,
    WAITING_KINDS,
    WAITING_LABELS,
    Statistics,
    StatisticsSource,
    half_within,
    weeks_until,
)

MAX_WEEKS = 104
PERMISSION = "stats.view"


@dataclass(frozen=True)
class Chart:
    """One chart's data: a row per category, a stacked value per series; `extra`: more
    columns for the table and the CSV (text), not drawn."""

    slug: str
    title: str
    corner: str
    categories: tuple[str, ...]
    axis: tuple[str, ...]  # the categories as the chart's axis shows them (short)
    series: tuple[str, ...]
    values: tuple[tuple[int, ...], ...]
    shape: Literal["columns", "bars"] = "bars"
    extra: tuple[str, ...] = ()
    extra_values: tuple[tuple[str, ...], ...] = ()
    note: str = ""

    def header(self) -> tuple[str, ...]:
        return (self.corner, *self.series, "totale", *self.extra)

    def rows(self) -> list[tuple[object, ...]]:
        extras = self.extra_values or tuple(() for _ in self.categories)
        return [
            (category, *values, sum(values), *more)
            for category, values, more in zip(self.categories, self.values, extras, strict=True)
        ]

    @property
    def empty(self) -> bool:
        return not any(any(values) for values in self.values)


class StatsDesk:
    def __init__(
        self, source: StatisticsSource, clock: Clock, timezone: ZoneInfo, retention_days: int
    ) -> None:
        self.source, self.clock, self.timezone = source, clock, timezone
        self.retention_days = retention_days

    def report(self, weeks: int, actor: Actor) -> Statistics:
        """The last `weeks` weeks (the current one included), counted by the database."""
        actor.require(PERMISSION)
        if not 1 <= weeks <= MAX_WEEKS:
            raise DeskError(f"weeks must be between 1 and {MAX_WEEKS}")
        now = self.clock()
        period = weeks_until(now, self.timezone, weeks)
        bounds = [week.begins for week in period] + [period[-1].ends]
        since, until = bounds[0], now
        return Statistics(
            weeks=period,
            generated_at=now,
            requests=self.source.requests_by_week(bounds),
            link_times=self.source.link_times(since, until, DURATION_LIMITS),
            task_times=self.source.task_times(since, until, DURATION_LIMITS),
            waiting=self.source.waiting(now, AGE_LIMITS),
            campaigns=self.source.campaigns(since),
            retention_days=self.retention_days,
        )

    def charts(self, stats: Statistics) -> list[Chart]:
        return [
            requests_chart(stats),
            link_times_chart(stats),
            waiting_chart(stats, self.timezone),
            task_times_chart(stats),
            campaigns_chart(stats, self.timezone),
        ]

    def chart(self, stats: Statistics, slug: str) -> Chart:
        for chart in self.charts(stats):
            if chart.slug == slug:
                return chart
        raise DeskError(f"no statistics table named {slug!r}")

    def csv(self, chart: Chart) -> str:
        """The chart's table as the secretariat's spreadsheets are written (`;`, a BOM)."""
        out = io.StringIO()
        out.write("\ufeff")
        writer = spreadsheet_writer(out)
        writer.writerow(chart.header())
        writer.writerows(chart.rows())
        return out.getvalue()


def _day(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def requests_chart(stats: Statistics) -> Chart:
    weeks = stats.weeks
    return Chart(
        slug="richieste",
        title="Richieste per settimana, per esito",
        corner="settimana",
        categories=tuple(f"dal {_day(w.monday)} al {_day(w.sunday)}" for w in weeks),
        axis=tuple(w.monday.strftime("%d/%m") for w in weeks),
        series=tuple(OUTCOME_LABELS[o] for o in OUTCOMES),
        values=tuple(
            tuple(stats.requests.get((i, o), 0) for o in OUTCOMES) for i in range(len(weeks))
        ),
        shape="columns",
        note="L'ultima settimana è quella in corso.",
    )


def _durations(counts: dict[int, int]) -> tuple[int, ...]:
    return tuple(counts.get(i, 0) for i in range(len(DURATION_LABELS)))


def link_times_chart(stats: Statistics) -> Chart:
    values = tuple(
        _durations({b: n for (k, b), n in stats.link_times.items() if k == kind})
        for kind in LINK_KINDS
    )
    return Chart(
        slug="tempi",
        title="Tempo dalla richiesta al collegamento",
        corner="come",
        categories=tuple(LINK_KIND_LABELS[k] for k in LINK_KINDS),
        axis=("automatico", "dopo revisione", "nel registro"),
        series=DURATION_LABELS,
        values=values,
        extra=("metà entro",),
        extra_values=tuple((half_within(v),) for v in values),
        note=(
            "Collegamenti accettati dal server di posta nel periodo, dall'arrivo della "
            "richiesta; per le attività nel registro, dal collegamento inviato "
            f"all'attività eseguita. Le richieste riviste e le attività eseguite sono "
            f"cancellate dopo {stats.retention_days} giorni: i loro tempi coprono al "
            "massimo quel periodo."
        ),
    )


def waiting_chart(stats: Statistics, zone: ZoneInfo) -> Chart:
    waiting = [stats.waiting[kind] for kind in WAITING_KINDS]
    return Chart(
        slug="attese",
        title="Da quanto tempo attende ciò che è ancora da fare",
        corner="che cosa",
        categories=tuple(WAITING_LABELS[k] for k in WAITING_KINDS),
        axis=("da rivedere", "nel registro"),
        series=AGE_LABELS,
        values=tuple(w.counts for w in waiting),
        extra=("la più vecchia",),
        extra_values=tuple((italian_time(w.oldest, zone) if w.oldest else "",) for w in waiting),
        note="Situazione al momento della pagina, qualunque sia il periodo scelto.",
    )


def task_times_chart(stats: Statistics) -> Chart:
    values = _durations(stats.task_times)
    return Chart(
        slug="registro",
        title="Attività nel registro: tempo fino all'esecuzione",
        corner="attività",
        categories=("eseguite nel periodo",),
        axis=("eseguite",),
        series=DURATION_LABELS,
        values=(values,),
        extra=("metà entro",),
        extra_values=((half_within(values),),),
        note="Dalla conferma della famiglia sulla pagina del collegamento all'attività eseguita.",
    )


def campaigns_chart(stats: Statistics, zone: ZoneInfo) -> Chart:
    campaigns = stats.campaigns
    return Chart(
        slug="campagne",
        title="Invii di settembre: avanzamento e indirizzi non validi",
        corner="invio",
        categories=tuple(c.name for c in campaigns),
        axis=tuple(c.name for c in campaigns),
        series=tuple(PAIR_STATE_LABELS[s] for s in CAMPAIGN_STATES),
        values=tuple(tuple(c.counts.get(s, 0) for s in CAMPAIGN_STATES) for c in campaigns),
        extra=("stato", "inizio", "completato"),
        extra_values=tuple(
            (
                CAMPAIGN_STATUS_LABELS.get(c.status, c.status),
                italian_time(c.start_at, zone),
                f"{100 * c.finished // c.total if c.total else 100}%",
            )
            for c in campaigns
        ),
        note=(
            "Un collegamento per ogni coppia indirizzo-studente; «respinta dal server»: "
            "l'indirizzo non è valido e la richiesta è tra quelle da rivedere."
        ),
    )
