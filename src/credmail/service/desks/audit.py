"""The audit desk: the append-only log of every decision and administrative action."""

from __future__ import annotations

import io
from collections.abc import Iterator

from credmail.service.csv_export import CsvWriter
from credmail.service.ports import AuditEntry, AuditFilter, Clock, UnitOfWorkFactory
from credmail.service.review import Actor, audit_entry

CSV_COLUMNS = ("id", "quando", "chi", "da", "azione", "oggetto", "dettagli")
EXPORT_BATCH = 1000


class AuditDesk:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def record(
        self, actor: Actor, action: str, item: str | None = None, detail: str | None = None
    ) -> None:
        """An entry in a transaction of its own (decisions record theirs with the change)."""
        with self.uow() as uow:
            uow.audit.add(audit_entry(actor, self.clock(), action, item, detail))
            uow.commit()

    def listing(
        self, where: AuditFilter, limit: int = 100, offset: int = 0
    ) -> tuple[list[AuditEntry], int]:
        """Newest first, and how many match in all."""
        with self.uow(read_only=True) as uow:
            return uow.audit.listing(where, limit, offset), uow.audit.count(where)

    def export_csv(self, where: AuditFilter) -> Iterator[str]:
        """Every matching entry as CSV text (a header line, then newest first)."""
        out = io.StringIO()
        writer = CsvWriter(out)
        writer.writerow(CSV_COLUMNS)
        offset = 0
        while True:
            with self.uow(read_only=True) as uow:
                batch = uow.audit.listing(where, EXPORT_BATCH, offset)
            for e in batch:
                cells = (e.id, e.at.isoformat(), e.actor, e.source, e.action, e.item, e.detail)
                writer.writerow(cells)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if len(batch) < EXPORT_BATCH:
                return
            offset += EXPORT_BATCH
