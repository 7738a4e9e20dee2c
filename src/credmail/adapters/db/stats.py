"""The statistics' grouped queries, on SQLite and PostgreSQL alike: the database counts,
Python only names the buckets. A bucket is a CASE over bounds computed in Python (week
starts in the school's time zone, halved like a binary search; age limits as moments),
or over the seconds between two columns (julianday() on SQLite, extract(epoch) on
PostgreSQL). Each CASE is grouped in an outer query: PostgreSQL does not see two copies of
a CASE with parameters as one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, extract, func, literal, or_, select
from sqlalchemy.orm import Session

from credmail.adapters.db.models import (
    CampaignRow,
    LedgerRow,
    OutboxRow,
    RegisterTaskRow,
    ReviewRow,
)
from credmail.adapters.db.repositories.campaigns import SqlCampaigns
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.service.ports import CampaignState, ReviewStatus
from credmail.service.stats import OUTCOMES, CampaignTally, Waiting


def _seconds(session: Session, start: Any, end: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86_400.0
    return extract("epoch", end - start)


def _by_limits(value: ColumnElement[Any], limits: Sequence[Any]) -> ColumnElement[int]:
    """0 below limits[0], 1 below limits[1], ..., len(limits) above them all."""
    return case(*((value < limit, i) for i, limit in enumerate(limits)), else_=len(limits))


def _bisected(value: Any, bounds: Sequence[Any], low: int, high: int) -> Any:
    """The i with bounds[i] <= value < bounds[i + 1], for low <= i < high, as nested CASEs
    halving the range: about log2(weeks) comparisons a row instead of up to weeks."""
    if high - low == 1:
        return literal(low)
    middle = (low + high) // 2
    return case(
        (value < bounds[middle], _bisected(value, bounds, low, middle)),
        else_=_bisected(value, bounds, middle, high),
    )


def _counted(session: Session, query: Select[Any]) -> list[tuple[Any, ...]]:
    """`query` selects its grouping columns then nothing else: counted per distinct row."""
    inner = query.subquery()
    columns = list(inner.c)
    grouped = select(*columns, func.count()).group_by(*columns)
    return [tuple(row) for row in session.execute(grouped)]


class SqlStatistics:
    def __init__(self, uow: SqlUnitOfWorkFactory) -> None:
        self.uow = uow

    def requests_by_week(self, bounds: Sequence[datetime]) -> dict[tuple[int, str], int]:
        handled = LedgerRow.handled_at
        week = _bisected(handled, bounds, 0, len(bounds) - 1)
        query = select(week.label("week"), LedgerRow.outcome).where(
            handled >= bounds[0], handled < bounds[-1], LedgerRow.outcome.in_(OUTCOMES)
        )
        with self.uow(read_only=True) as uow:
            rows = _counted(uow.session, query)
        return {(int(w), str(o)): int(n) for w, o, n in rows}

    def link_times(
        self, since: datetime, until: datetime, limits: Sequence[int]
    ) -> dict[tuple[str, int], int]:
        sent = OutboxRow.sent_at
        window = (OutboxRow.purpose.is_not(None), sent >= since, sent < until)
        found: dict[tuple[str, int], int] = {}
        with self.uow(read_only=True) as uow:
            s = uow.session
            automatic = (
                select(_by_limits(_seconds(s, LedgerRow.handled_at, sent), limits).label("b"))
                .join(LedgerRow, LedgerRow.id == OutboxRow.ledger_id)
                .where(*window, OutboxRow.review_id.is_(None), LedgerRow.outcome == "answered")
            )
            reviewed = (
                select(_by_limits(_seconds(s, ReviewRow.created_at, sent), limits).label("b"))
                .join(ReviewRow, ReviewRow.id == OutboxRow.review_id)
                .where(*window)
            )
            done = RegisterTaskRow.done_at
            tasks = select(
                _by_limits(_seconds(s, RegisterTaskRow.requested_at, done), limits).label("b")
            ).where(RegisterTaskRow.status == "done", done >= since, done < until)
            for kind, query in (("automatic", automatic), ("reviewed", reviewed), ("task", tasks)):
                for bucket, count in _counted(s, query):
                    found[(kind, int(bucket))] = int(count)
        return found

    def task_times(self, since: datetime, until: datetime, limits: Sequence[int]) -> dict[int, int]:
        done = RegisterTaskRow.done_at
        with self.uow(read_only=True) as uow:
            seconds = _seconds(uow.session, RegisterTaskRow.confirmed_at, done)
            query = select(_by_limits(seconds, limits).label("b")).where(
                RegisterTaskRow.status == "done", done >= since, done < until
            )
            return {int(b): int(n) for b, n in _counted(uow.session, query)}

    def waiting(self, now: datetime, limits: Sequence[int]) -> dict[str, Waiting]:
        moments = [now - timedelta(seconds=limit) for limit in limits]

        def older(column: Any) -> ColumnElement[int]:  # 0: newest bucket
            return case(*((column > m, i) for i, m in enumerate(moments)), else_=len(moments))

        review = ReviewRow.created_at
        task = RegisterTaskRow.confirmed_at
        queries = {
            "review": (
                select(older(review).label("b")).where(ReviewRow.status == ReviewStatus.PENDING),
                select(func.min(review)).where(ReviewRow.status == ReviewStatus.PENDING),
            ),
            "task": (
                select(older(task).label("b")).where(RegisterTaskRow.status == "open"),
                select(func.min(task)).where(RegisterTaskRow.status == "open"),
            ),
        }
        found: dict[str, Waiting] = {}
        with self.uow(read_only=True) as uow:
            for kind, (buckets, oldest) in queries.items():
                counts = dict(_counted(uow.session, buckets))
                values = tuple(int(counts.get(i, 0)) for i in range(len(limits) + 1))
                found[kind] = Waiting(values, uow.session.scalar(oldest))
        return found

    def campaigns(self, since: datetime) -> list[CampaignTally]:
        active = (CampaignState.RUNNING, CampaignState.PAUSED)
        query = (
            select(CampaignRow)
            .where(or_(CampaignRow.created_at >= since, CampaignRow.status.in_(active)))
            .order_by(CampaignRow.id)
        )
        with self.uow(read_only=True) as uow:
            repo = SqlCampaigns(uow.session)
            return [
                CampaignTally(row.name, row.status, row.start_at, repo.counts(row.id))
                for row in uow.session.scalars(query)
            ]
