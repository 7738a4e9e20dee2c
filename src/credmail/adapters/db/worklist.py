"""The WorklistQueries port on SQL: register tasks by family (the tasks at one address),
filtered by class and date, with each person's class read from the directory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, func, select

from credmail.adapters.db.models import PersonRow, RegisterTaskRow
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.service.ports import RegisterTask, TaskFilter

EXPORT_BATCH = 500
_T = RegisterTaskRow
_COLUMNS = (*(c for c in _T.__table__.columns if c.name != "selector"),)


def _matching(where: TaskFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if where.status is not None:
        found.append(_T.status == where.status)
    if where.class_name:
        found.append(PersonRow.class_name == where.class_name)
    if where.since is not None:
        found.append(_T.confirmed_at >= where.since)
    if where.until is not None:
        found.append(_T.confirmed_at < where.until)
    return found


def _with_class(where: TaskFilter) -> Select[Any]:
    """The tasks matching `where`, each with its person's class (none when gone)."""
    query = select(*_COLUMNS, PersonRow.class_name).outerjoin(
        PersonRow, PersonRow.username == _T.username
    )
    return query.where(*_matching(where))


def _task(row: Any) -> RegisterTask:
    values = row._asdict()
    values.pop("address_key", None)
    return RegisterTask(**values)


def _family(row: Any) -> str:
    """A family: the tasks at one address; a task with no address is a family of its own."""
    return str(row.address_key) if row.address_key else f"#{row.id}"


class SqlWorklist:
    def __init__(self, uow: SqlUnitOfWorkFactory) -> None:
        self.uow = uow

    def families(
        self, where: TaskFilter, limit: int, offset: int
    ) -> tuple[list[RegisterTask], int, int]:
        matching = _with_class(where).subquery()
        family = func.coalesce(matching.c.address_key, "#" + cast(matching.c.id, String))
        keyed = select(family.label("family"), matching.c.confirmed_at).subquery()
        page = (
            select(keyed.c.family)
            .group_by(keyed.c.family)
            .order_by(func.min(keyed.c.confirmed_at), keyed.c.family)
            .limit(limit)
            .offset(offset)
        )
        counted = select(func.count(func.distinct(keyed.c.family)), func.count())
        with self.uow(read_only=True) as uow:
            families, tasks = uow.session.execute(counted).one()
            shown = list(uow.session.scalars(page))
            rows = list(uow.session.execute(select(matching).where(family.in_(shown))))
        order = {key: n for n, key in enumerate(shown)}
        rows.sort(key=lambda r: (order[_family(r)], r.last_name, r.first_name, r.id))
        return [_task(row) for row in rows], int(families or 0), int(tasks or 0)

    def classes(self, status: str | None = "open") -> list[str]:
        query = (
            select(PersonRow.class_name)
            .join(_T, _T.username == PersonRow.username)
            .where(PersonRow.class_name.is_not(None))
            .distinct()
        )
        if status is not None:
            query = query.where(_T.status == status)
        with self.uow(read_only=True) as uow:
            return sorted(str(name) for name in uow.session.scalars(query) if name)

    def open_among(self, task_ids: Sequence[int]) -> list[RegisterTask]:
        query = _with_class(TaskFilter()).where(_T.id.in_(list(task_ids))).order_by(_T.id)
        with self.uow(read_only=True) as uow:
            return [_task(row) for row in uow.session.execute(query)]

    def rows(self, where: TaskFilter) -> Iterator[RegisterTask]:
        order = (PersonRow.class_name.nulls_last(), _T.last_name, _T.first_name, _T.username, _T.id)
        query = _with_class(where).order_by(*order)
        offset = 0
        while True:
            with self.uow(read_only=True) as uow:
                batch = list(uow.session.execute(query.limit(EXPORT_BATCH).offset(offset)))
            yield from (_task(row) for row in batch)
            if len(batch) < EXPORT_BATCH:
                return
            offset += EXPORT_BATCH
