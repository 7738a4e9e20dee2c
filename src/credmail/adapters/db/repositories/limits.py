"""SQLAlchemy repository: the circuit breaker that stops sending when limits are hit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from credmail.adapters.db.models import BreakerRow
from credmail.adapters.db.repositories._common import core

_TRIPPED_AT = select(BreakerRow.tripped_at).where(BreakerRow.id == 1)
_RESET_AT = select(BreakerRow.reset_at).where(BreakerRow.id == 1)


class SqlBreaker:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _row(self) -> BreakerRow:
        row = self.session.get(BreakerRow, 1)
        if row is None:
            row = BreakerRow(id=1)
            self.session.add(row)
        return row

    def tripped(self) -> bool:
        return core(self.session).execute(_TRIPPED_AT).scalar() is not None

    def trip(self, now: datetime, reason: str) -> None:
        row = self._row()
        if row.tripped_at is None:
            row.tripped_at, row.reason = now, reason

    def reset(self, now: datetime) -> bool:
        row = self._row()
        was_tripped = row.tripped_at is not None
        row.tripped_at, row.reset_at, row.reason = None, now, None
        return was_tripped

    def counting_since(self) -> datetime | None:
        reset_at: datetime | None = core(self.session).execute(_RESET_AT).scalar()
        return reset_at
