"""The pacing store: send times from the outbox, the outbox pause in its own row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from credmail.adapters.db.models import OutboxPauseRow, OutboxRow


class SqlPacingStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def last_sent(self) -> datetime | None:
        with Session(self.engine) as session:
            return session.scalar(select(func.max(OutboxRow.sent_at)))

    def nth_latest_sent(self, n: int) -> datetime | None:
        query = (
            select(OutboxRow.sent_at)
            .where(OutboxRow.sent_at.is_not(None))
            .order_by(OutboxRow.sent_at.desc())
            .offset(n - 1)
            .limit(1)
        )
        with Session(self.engine) as session:
            return session.scalar(query)

    def paused(self) -> tuple[datetime, str] | None:
        with Session(self.engine) as session:
            row = session.get(OutboxPauseRow, 1)
            if row is None or row.paused_until is None:
                return None
            return row.paused_until, row.reason or ""

    def pause(self, until: datetime, reason: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(OutboxPauseRow, 1)
            if row is None:
                session.add(OutboxPauseRow(id=1, paused_until=until, reason=reason))
            elif row.paused_until is None or row.paused_until < until:
                row.paused_until, row.reason = until, reason
