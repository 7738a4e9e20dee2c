"""SQLAlchemy repositories: register tasks (the worklist backend) and the link audit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from credmail.adapters.db.models import LinkAuditRow, RegisterTaskRow
from credmail.adapters.db.repositories._common import core, rowcount
from credmail.core.addresses import normalize_address
from credmail.service.ports import LinkEvent, RegisterTask

_TASKS: Any = RegisterTaskRow.__table__
_MARK_MANY = (
    update(_TASKS)
    .where(_TASKS.c.id.in_(bindparam("ids", expanding=True)), _TASKS.c.status == "open")
    .values(
        status="done", done_at=bindparam("now"), done_by=bindparam("by"), note=bindparam("note")
    )
    .returning(_TASKS.c.id)
)


def _task(row: RegisterTaskRow) -> RegisterTask:
    return RegisterTask(
        id=row.id,
        username=row.username,
        purpose=row.purpose,
        role=row.role,
        first_name=row.first_name,
        last_name=row.last_name,
        address=row.address,
        requested_at=row.requested_at,
        confirmed_at=row.confirmed_at,
        status=row.status,
        done_at=row.done_at,
        done_by=row.done_by,
        note=row.note,
    )


class SqlTasks:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, task: RegisterTask, selector: str) -> int:
        row = RegisterTaskRow(
            selector=selector,
            username=task.username,
            purpose=task.purpose,
            role=task.role,
            first_name=task.first_name,
            last_name=task.last_name,
            address=task.address,
            address_key=normalize_address(task.address) if task.address else None,
            requested_at=task.requested_at,
            confirmed_at=task.confirmed_at,
            status=task.status,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def listing(self, status: str | None = None) -> list[RegisterTask]:
        query = select(RegisterTaskRow).order_by(RegisterTaskRow.id)
        if status is not None:
            query = query.where(RegisterTaskRow.status == status)
        return [_task(row) for row in self.session.scalars(query)]

    def get(self, task_id: int) -> RegisterTask | None:
        row = self.session.get(RegisterTaskRow, task_id)
        return _task(row) if row else None

    def mark_done(self, task_id: int, now: datetime, by: str, note: str | None) -> bool:
        result = self.session.execute(
            update(RegisterTaskRow)
            .where(RegisterTaskRow.id == task_id, RegisterTaskRow.status == "open")
            .values(status="done", done_at=now, done_by=by, note=note)
        )
        return rowcount(result) == 1

    def mark_many_done(
        self, task_ids: Sequence[int], now: datetime, by: str, note: str | None
    ) -> set[int]:
        if not task_ids:
            return set()
        values = {"ids": list(task_ids), "now": now, "by": by, "note": note}
        return set(core(self.session).execute(_MARK_MANY, values).scalars())

    def for_address(self, address_key: str) -> list[RegisterTask]:
        query = select(RegisterTaskRow).where(RegisterTaskRow.address_key == address_key)
        return [_task(row) for row in self.session.scalars(query.order_by(RegisterTaskRow.id))]

    def forget_address(self, address_key: str) -> int:
        query = delete(RegisterTaskRow).where(RegisterTaskRow.address_key == address_key)
        return rowcount(self.session.execute(query))

    def purge_done(self, before: datetime) -> int:
        query = delete(RegisterTaskRow).where(
            RegisterTaskRow.status == "done", RegisterTaskRow.done_at < before
        )
        return rowcount(self.session.execute(query))


class SqlLinkAudit:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, event: LinkEvent) -> None:
        self.session.add(
            LinkAuditRow(
                at=event.at,
                selector=event.selector,
                username=event.username,
                event=event.event,
                backend=event.backend,
                result=event.result,
                detail=(event.detail or "")[:500] or None,
                client=event.client,
            )
        )

    def for_selector(self, selector: str) -> list[LinkEvent]:
        query = select(LinkAuditRow).where(LinkAuditRow.selector == selector)
        return [
            LinkEvent(
                at=row.at,
                selector=row.selector,
                username=row.username,
                event=row.event,
                backend=row.backend,
                result=row.result,
                detail=row.detail,
                client=row.client,
            )
            for row in self.session.scalars(query.order_by(LinkAuditRow.id))
        ]

    def purge_before(self, before: datetime) -> int:
        return rowcount(self.session.execute(delete(LinkAuditRow).where(LinkAuditRow.at < before)))
