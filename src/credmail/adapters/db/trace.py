"""The MessageTraces port: ledger rows by Message-ID, with the reply queued for each."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from credmail.adapters.db.models import LedgerRow, OutboxRow
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.service.ports import Trace


class SqlMessageTraces:
    def __init__(self, uow: SqlUnitOfWorkFactory) -> None:
        self.uow = uow

    def of(self, message_ids: Sequence[str]) -> dict[str, Trace]:
        with self.uow(read_only=True) as uow:
            rows = list(
                uow.session.scalars(
                    select(LedgerRow)
                    .where(LedgerRow.message_id.in_(message_ids))
                    .order_by(LedgerRow.id)
                )
            )
            replies = {
                ledger_id: template
                for ledger_id, template in uow.session.execute(
                    select(OutboxRow.ledger_id, OutboxRow.template)
                    .where(OutboxRow.ledger_id.in_([row.id for row in rows]))
                    .order_by(OutboxRow.id)
                )
            }
            return {
                row.message_id: Trace(
                    message_id=row.message_id,
                    outcome=row.outcome,
                    reply=replies.get(row.id),
                    reasons=tuple(row.reasons),
                )
                for row in rows
                if row.message_id is not None
            }
