"""SQLAlchemy repository: the circuit breaker that stops sending when limits are hit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from credmail.adapters.db.models import BreakerRow
from credmail.adapters.db.repositories._common import core

_STATE = select(BreakerRow.tripped_at, BreakerRow.reset_at).where(BreakerRow.id == 1)


class SqlBreaker:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._state: tuple[datetime | None, datetime | None] | None = None

    def _read(self) -> tuple[datetime | None, datetime | None]:
        """(tripped_at, reset_at), read once per transaction (every request of a batch asks
        both) and again after this transaction trips or resets it."""
        if self._state is None:
            row = core(self.session).execute(_STATE).first()
            self._state = (row[0], row[1]) if row is not None else (None, None)
        return self._state

    def _row(self) -> BreakerRow:
        row = self.session.get(BreakerRow, 1)
        if row is None:
            row = BreakerRow(id=1)
            self.session.add(row)
        return row

    def tripped(self) -> bool:
        return self._read()[0] is not None

    def trip(self, now: datetime, reason: str) -> None:
        self._state = None
        row = self._row()
        if row.tripped_at is None:
            row.tripped_at, row.reason = now, reason

    def reset(self, now: datetime) -> bool:
        self._state = None
        row = self._row()
        was_tripped = row.tripped_at is not None
        row.tripped_at, row.reset_at, row.reason = None, now, None
        return was_tripped

    def counting_since(self) -> datetime | None:
        return self._read()[1]
