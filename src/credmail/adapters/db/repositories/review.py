"""SQLAlchemy repository: the review queue: items a person decides."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from credmail.adapters.db import writes
from credmail.adapters.db.models import ReviewRow
from credmail.adapters.db.repositories._common import core, rowcount
from credmail.service.ports import ReviewFilter, ReviewItem, ReviewStatus

_TABLE: Any = ReviewRow.__table__
_ADD = insert(_TABLE)


def _review_item(row: ReviewRow) -> ReviewItem:
    return ReviewItem(
        id=row.id,
        created_at=row.created_at,
        status=row.status,
        kind=row.kind,
        sender=row.sender,
        message_id=row.message_id,
        subject=row.subject,
        reasons=tuple(row.reasons),
        raw=row.raw,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision=row.decision,
        note=row.note,
        sent_summary=row.sent_summary,
        deferred_until=row.deferred_until,
    )


KEPT_HEADER_BYTES = 64 * 1024
KEPT_BODY_BYTES = 64 * 1024
TRUNCATED = "raw_truncated"  # the review reason of an item kept only in part


def shrink_raw(raw: bytes) -> bytes:
    """Headers and the start of the body: enough to decide, a bounded size."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(separator)
        if found:
            return head[:KEPT_HEADER_BYTES] + separator + body[:KEPT_BODY_BYTES]
    return raw[: KEPT_HEADER_BYTES + KEPT_BODY_BYTES]


_PENDING = ReviewRow.status == ReviewStatus.PENDING


def in_queue(now: datetime | None) -> ColumnElement[bool]:
    """Pending and in the queue at `now`: never deferred, or deferred until `now` or before
    (a deferred item comes back when due). `now` None: every pending item."""
    if now is None:
        return _PENDING
    return and_(_PENDING, or_(ReviewRow.deferred_until.is_(None), ReviewRow.deferred_until <= now))


def _deferred(now: datetime) -> ColumnElement[bool]:
    """Pending, and out of the queue until a moment after `now`."""
    return and_(_PENDING, ReviewRow.deferred_until > now)


def _count(where: ColumnElement[bool]) -> Select[int]:
    return select(func.count()).select_from(ReviewRow).where(where)


_PENDING_RAW_BYTES = select(func.sum(func.length(ReviewRow.raw))).where(
    ReviewRow.status == ReviewStatus.PENDING
)


class SqlReview:
    def __init__(self, session: Session, raw_cap: int | None = None) -> None:
        self.session = session
        self.raw_cap = raw_cap  # total bytes of raw messages kept for pending items
        self._pending_bytes: int | None = None  # read once per transaction, then counted up

    def _pending_raw_bytes(self) -> int:
        if self._pending_bytes is None:
            self._pending_bytes = int(core(self.session).execute(_PENDING_RAW_BYTES).scalar() or 0)
        return self._pending_bytes

    def _fit(self, raw: bytes | None, reasons: list[str]) -> tuple[bytes | None, list[str]]:
        """Above the cap a new item keeps a shrunk copy, and says so in its reasons."""
        if raw is None or self.raw_cap is None:
            return raw, reasons
        if self._pending_raw_bytes() + len(raw) <= self.raw_cap:
            return raw, reasons
        shrunk = shrink_raw(raw)
        return (shrunk, [*reasons, TRUNCATED]) if len(shrunk) < len(raw) else (raw, reasons)

    def add(self, item: ReviewItem, ledger_id: int | None) -> None:
        """Queued: inserted with the transaction's next statement (see `writes`)."""
        raw, reasons = self._fit(item.raw, list(item.reasons))
        row = {
            "ledger_id": ledger_id,
            "created_at": item.created_at,
            "status": ReviewStatus.PENDING,
            "kind": item.kind,
            "sender": item.sender,
            "message_id": item.message_id,
            "subject": item.subject,
            "reasons": reasons,
            "raw": raw,
        }
        writes.queue(core(self.session), _ADD, row)
        if self._pending_bytes is not None and raw is not None:
            self._pending_bytes += len(raw)

    def count_pending(self, now: datetime | None = None) -> int:
        return int(self.session.scalar(_count(in_queue(now))) or 0)

    def count_deferred(self, now: datetime) -> int:
        return int(self.session.scalar(_count(_deferred(now))) or 0)

    def pending(self, now: datetime | None = None) -> list[ReviewItem]:
        query = select(ReviewRow).where(in_queue(now)).order_by(ReviewRow.id)
        return [_review_item(row) for row in self.session.scalars(query)]

    def deferred(self, now: datetime) -> list[ReviewItem]:
        query = select(ReviewRow).where(_deferred(now))
        rows = self.session.scalars(query.order_by(ReviewRow.deferred_until, ReviewRow.id))
        return [_review_item(row) for row in rows]

    def due(self, now: datetime) -> list[ReviewItem]:
        query = select(ReviewRow).where(_PENDING, ReviewRow.deferred_until <= now)
        rows = self.session.scalars(query.order_by(ReviewRow.deferred_until, ReviewRow.id))
        return [_review_item(row) for row in rows]

    def defer(self, item_id: int, until: datetime) -> bool:
        query = update(ReviewRow).where(ReviewRow.id == item_id, _PENDING)
        return rowcount(self.session.execute(query.values(deferred_until=until))) == 1

    def get(self, item_id: int) -> ReviewItem | None:
        row = self.session.get(ReviewRow, item_id)
        return _review_item(row) if row else None

    def record_decision(
        self, item_id: int, decision: str, by: str, now: datetime, note: str | None, sent: str
    ) -> bool:
        done = self.session.execute(
            update(ReviewRow)
            .where(ReviewRow.id == item_id, ReviewRow.status == ReviewStatus.PENDING)
            .values(
                status=decision,
                decision=decision,
                decided_by=by,
                decided_at=now,
                note=note,
                sent_summary=sent,
            )
        )
        return rowcount(done) == 1

    def queue(
        self, where: ReviewFilter, limit: int, offset: int = 0
    ) -> tuple[list[ReviewItem], int]:
        columns = [c for c in ReviewRow.__table__.columns if c.name not in ("raw", "ledger_id")]
        query = select(*columns).where(_PENDING)
        if where.deferred and where.at is not None:
            query = query.where(ReviewRow.deferred_until > where.at)
        elif where.at is not None:
            query = query.where(in_queue(where.at))
        if where.kind:
            query = query.where(ReviewRow.kind == where.kind)
        if where.reason:
            query = query.where(cast(ReviewRow.reasons, String).like(f'%"{where.reason}"%'))
        if where.older_than:
            query = query.where(ReviewRow.created_at < where.older_than)
        if where.newer_than:
            query = query.where(ReviewRow.created_at >= where.newer_than)
        counted = query.with_only_columns(func.count()).select_from(ReviewRow)
        total = int(self.session.scalar(counted) or 0)
        rows = self.session.execute(query.order_by(ReviewRow.id).limit(limit).offset(offset))
        items = [
            ReviewItem(**{**row._asdict(), "reasons": tuple(row.reasons), "raw": None})
            for row in rows
        ]
        return items, total

    def for_sender(self, address_key: str) -> list[ReviewItem]:
        query = select(ReviewRow).where(ReviewRow.sender == address_key).order_by(ReviewRow.id)
        return [_review_item(row) for row in self.session.scalars(query)]

    def forget_sender(self, address_key: str) -> list[int]:
        rows = list(self.session.scalars(select(ReviewRow).where(ReviewRow.sender == address_key)))
        for row in rows:
            self.session.delete(row)
        return [row.ledger_id for row in rows if row.ledger_id is not None]

    def purge_decided(self, before: datetime) -> int:
        query = delete(ReviewRow).where(
            ReviewRow.status != ReviewStatus.PENDING, ReviewRow.decided_at < before
        )
        return rowcount(self.session.execute(query))
