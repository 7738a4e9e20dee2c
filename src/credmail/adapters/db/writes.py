"""Inserts a transaction queues and runs together, just before it next executes anything.

On PostgreSQL every statement is a round trip, and a batch of requests inserts a ledger
entry for each and a token, a reply or a review item for most. Queued instead, the rows
of each insert statement go in one executemany (a multi-row INSERT) the moment the
transaction executes any other statement through SQLAlchemy (a read, an update, an ORM
flush, a savepoint or its release) or commits, so every statement still sees every
earlier write. Between two such moments only queued inserts happen, so running them
table by table, parents before children, gives the same rows as running them one by
one; within a table they keep their order. A rollback (of the transaction or of a
savepoint) drops what was queued after the last statement, which is exactly what it
would have undone. (`exec_driver_sql` and raw DBAPI cursors do not run the queue: the
engine's session settings at BEGIN are the only such statements, and read no table.)

The queue lives in the DBAPI connection's `info`, which one transaction holds at a time.
A queued insert that fails raises from the statement (or commit) that ran it: the unit of
work flushes explicitly where a failure must be pinned on one message (the end of a
savepoint, the end of a batch).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Executable, event

from credmail.adapters.db.models import Base

_QUEUE = "credmail.queued_writes"
MOST_QUEUED = 1000  # SQLAlchemy's rows per multi-row INSERT on PostgreSQL
_PARENTS_FIRST = {table.name: rank for rank, table in enumerate(Base.metadata.sorted_tables)}


def install(engine: Engine) -> None:
    """Run queued writes before each statement and at commit; drop them at rollback (and
    at a transaction's start: nothing queued before belongs to it)."""
    if event.contains(engine, "before_execute", _before_execute):
        return
    event.listen(engine, "begin", _drop)
    event.listen(engine, "before_execute", _before_execute)
    event.listen(engine, "commit", flush)
    event.listen(engine, "rollback", _drop)
    event.listen(engine, "rollback_savepoint", _drop_from_savepoint)


def queue(connection: Connection, statement: Executable, row: dict[str, Any]) -> None:
    """Insert `row` with `statement` (an INSERT) before the transaction's next statement
    (or now, when MOST_QUEUED rows wait for it: a long run of inserts holds no more)."""
    queued: dict[Executable, list[dict[str, Any]]] = connection.info.setdefault(_QUEUE, {})
    rows = queued.setdefault(statement, [])
    rows.append(row)
    if len(rows) >= MOST_QUEUED:
        flush(connection)


def flush(connection: Connection) -> None:
    """Run what is queued now: one executemany per statement, parent tables first."""
    queued: dict[Executable, list[dict[str, Any]]] | None = connection.info.pop(_QUEUE, None)
    if not queued:
        return
    for statement, rows in sorted(queued.items(), key=_parents_first):
        connection.execute(statement, rows)


def _parents_first(item: tuple[Executable, list[dict[str, Any]]]) -> int:
    table = getattr(item[0], "table", None)
    return _PARENTS_FIRST.get(getattr(table, "name", ""), len(_PARENTS_FIRST))


def _before_execute(connection: Connection, *_args: Any) -> None:
    if _QUEUE in connection.info:
        flush(connection)


def _drop(connection: Connection) -> None:
    if not connection.invalidated:  # a lost connection's info goes with it
        connection.info.pop(_QUEUE, None)


def _drop_from_savepoint(connection: Connection, _name: str, _context: Any) -> None:
    _drop(connection)
