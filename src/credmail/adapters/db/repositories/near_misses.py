"""SQLAlchemy repository: near misses (flagged in the mailbox, listed in the console)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from credmail.adapters.db.models import NearMissRow
from credmail.adapters.db.repositories._common import rowcount
from credmail.adapters.db.repositories.review import shrink_raw
from credmail.core.addresses import address_key
from credmail.service.ports import NearMissRecord, NearMissStatus


def _record(row: NearMissRow) -> NearMissRecord:
    return NearMissRecord(
        id=row.id,
        folder=row.folder,
        validity=row.validity,
        source_key=row.source_key,
        created_at=row.created_at,
        sender=row.sender,
        message_id=row.message_id,
        subject=row.subject,
        excerpt=row.excerpt,
        rule=row.rule,
        language=row.language,
        guided=row.guided,
        status=row.status,
        ledger_id=row.ledger_id,
        raw=row.raw,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision=row.decision,
        outcome=row.outcome,
    )


KEPT_RAW_BYTES = 1_000_000  # above this a near miss keeps its headers and the start of its body


def _kept(raw: bytes | None) -> bytes | None:
    """A near miss is read for its first lines: a large attachment is not worth storing
    (a flood of large mails would otherwise fill the database)."""
    return shrink_raw(raw) if raw is not None and len(raw) > KEPT_RAW_BYTES else raw


class SqlNearMisses:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: NearMissRecord, flag: bool) -> int:
        row = NearMissRow(
            ledger_id=record.ledger_id,
            folder=record.folder,
            validity=record.validity,
            source_key=record.source_key,
            created_at=record.created_at,
            sender=record.sender,
            sender_key=address_key(record.sender) if record.sender else None,
            message_id=record.message_id,
            subject=record.subject,
            excerpt=record.excerpt,
            rule=record.rule,
            language=record.language,
            guided=record.guided,
            status=NearMissStatus.OPEN,
            keyword_wanted=flag,
            keyword_set=False,
            raw=_kept(record.raw),
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def get(self, near_miss_id: int) -> NearMissRecord | None:
        row = self.session.get(NearMissRow, near_miss_id)
        return _record(row) if row else None

    def listing(self, status: str | None = NearMissStatus.OPEN) -> list[NearMissRecord]:
        query = select(NearMissRow).order_by(NearMissRow.id)
        if status is not None:
            query = query.where(NearMissRow.status == status)
        return [_record(row) for row in self.session.scalars(query)]

    def count_open(self) -> int:
        query = select(func.count()).where(NearMissRow.status == NearMissStatus.OPEN)
        return int(self.session.scalar(query.select_from(NearMissRow)) or 0)

    def decide(
        self,
        near_miss_id: int,
        status: str,
        by: str,
        decision: str,
        outcome: str | None,
        now: datetime,
    ) -> bool:
        result = self.session.execute(
            update(NearMissRow)
            .where(NearMissRow.id == near_miss_id, NearMissRow.status == NearMissStatus.OPEN)
            .values(
                status=status,
                decided_by=by,
                decided_at=now,
                decision=decision,
                outcome=outcome,
                keyword_wanted=False,
            )
        )
        return rowcount(result) == 1

    def keyword_pending(self, folder: str, validity: int) -> list[tuple[str, bool]]:
        query = select(NearMissRow.source_key, NearMissRow.keyword_wanted).where(
            NearMissRow.folder == folder,
            NearMissRow.validity == validity,
            NearMissRow.keyword_wanted != NearMissRow.keyword_set,
        )
        return [(key, bool(wanted)) for key, wanted in self.session.execute(query)]

    def keyword_done(self, folder: str, validity: int, keys: Sequence[str], on: bool) -> None:
        self.session.execute(
            update(NearMissRow)
            .where(
                NearMissRow.folder == folder,
                NearMissRow.validity == validity,
                NearMissRow.source_key.in_(list(keys)),
            )
            .values(keyword_set=on)
        )

    def guided_since(self, sender_key: str, since: datetime) -> bool:
        query = select(NearMissRow.id).where(
            NearMissRow.sender_key == sender_key,
            NearMissRow.guided.is_(True),
            NearMissRow.created_at >= since,
        )
        return self.session.scalar(query.limit(1)) is not None

    def for_sender(self, address_key: str) -> list[NearMissRecord]:
        query = select(NearMissRow).where(NearMissRow.sender_key == address_key)
        return [_record(row) for row in self.session.scalars(query.order_by(NearMissRow.id))]

    def forget_sender(self, address_key: str) -> list[int]:
        query = select(NearMissRow).where(NearMissRow.sender_key == address_key)
        rows = list(self.session.scalars(query))
        for row in rows:
            self.session.delete(row)
        return [row.ledger_id for row in rows if row.ledger_id is not None]

    def purge_decided(self, before: datetime) -> int:
        query = delete(NearMissRow).where(
            NearMissRow.status != NearMissStatus.OPEN, NearMissRow.decided_at < before
        )
        return rowcount(self.session.execute(query))
